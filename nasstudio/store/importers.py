"""Importers for the files researchers bring: llmas jsonl(.gz), HAT latency CSV, HAT YAML.

Every importer reads and checks the whole input before it writes anything, then writes in one
transaction: a bad line raises ImportFormatError naming the file and line, and the project is
left exactly as it was.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nasstudio.space import (
    FEATURE_NAMES,
    Architecture,
    HatConfigError,
    OutOfSpaceError,
    from_yaml,
    get_space,
    parse_arch_info,
)
from nasstudio.store.project import (
    BLEU_TEST,
    BLEU_VALID,
    GFLOPS,
    KNOWN_TASKS,
    LATENCY_MS,
    PARAMS_NO_EMB,
    Measurement,
    Prediction,
    Project,
    Task,
)

LLMAS_SOURCE = "llmas"
# Latency in the llmas files was measured on hardware the files do not name.
LLMAS_LATENCY_DEVICE = "llmas"
LLMAS_BASELINES = ("HAT", "Supernet (Sandwich)", "Layer-wise MoS", "Neuron-wise MoS")
HAT_LATENCY_COLUMNS = (
    *FEATURE_NAMES,
    "latency_mean_encoder",
    "latency_mean_decoder",
    "latency_std_encoder",
    "latency_std_decoder",
)


class ImportFormatError(ValueError):
    """Bad input: names the file, the line (when there is one) and what was expected."""

    def __init__(self, path: str | Path, line: int | None, message: str) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")
        self.path, self.line = str(path), line


@dataclass
class ImportReport:
    path: str
    task: str
    architectures_read: int = 0
    architectures_added: int = 0
    measurements: int = 0
    predictions: int = 0
    latency_rows: int = 0
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        parts = [f"{self.path} -> {self.task}:"]
        if self.latency_rows:
            parts.append(f"{self.latency_rows} latency rows")
        else:
            parts.append(
                f"{self.architectures_read} architectures ({self.architectures_added} new), "
                f"{self.measurements} measurements, {self.predictions} predictions"
            )
        return " ".join(parts)


def task_for(name: str, vocab_size: int | None = None) -> Task:
    """A known task, or a new HAT-WMT-space task of the given vocabulary."""
    if name in KNOWN_TASKS and vocab_size in (None, KNOWN_TASKS[name].vocab_size):
        return KNOWN_TASKS[name]
    if vocab_size is None:
        raise ValueError(
            f"task '{name}' is not one of {sorted(KNOWN_TASKS)}: give its vocabulary size"
        )
    return Task(name, vocab_size, "hat-wmt")


def guess_task_name(path: Path) -> str:
    """llmas layout: seedarchs/<seed>/<task>/train.jsonl, or pool/<task>.jsonl.gz."""
    stem = path.name.split(".")[0]
    return path.parent.name if stem in ("train", "test", "valid") else stem


def _open_text(path: Path):
    return (
        gzip.open(path, "rt", encoding="utf-8")
        if path.suffix == ".gz"
        else path.open(encoding="utf-8")
    )


def _read_lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        with _open_text(path) as handle:
            yield from enumerate(handle, start=1)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise ImportFormatError(path, None, f"cannot read the file: {exc}") from None


# --- llmas ------------------------------------------------------------------------------------


def _number(record: dict, key: str, path: Path, line: int, low: float, high: float) -> float:
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ImportFormatError(path, line, f"'{key}' must be a number, got {value!r}")
    if not low <= value <= high:
        raise ImportFormatError(path, line, f"'{key}' is {value}, expected {low} to {high}")
    return float(value)


@dataclass
class _LlmasRecord:
    arch: Architecture
    measurements: list[tuple[str, float, str]]  # metric, value, device
    predictions: list[tuple[str, str, float]]  # predictor, metric, value
    provenance: dict[str, Any]


def _parse_llmas_line(text: str, path: Path, line: int, space_name: str) -> _LlmasRecord:
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportFormatError(path, line, f"not valid JSON ({exc.msg})") from None
    scratch = record.get("scratch") if isinstance(record, dict) else None
    if not isinstance(scratch, dict) or not isinstance(scratch.get("arch_info"), list):
        raise ImportFormatError(
            path, line, "expected an object with 'scratch': {'arch_info': [...]}"
        )
    try:
        arch = parse_arch_info(scratch["arch_info"])
        get_space(space_name).validate(arch)
    except (HatConfigError, OutOfSpaceError) as exc:
        raise ImportFormatError(path, line, f"arch_info: {exc}") from None
    measurements = []
    if "total_flops" in scratch:
        gflops = _number(scratch, "total_flops", path, line, 1, 1e15) / 1e9
        measurements.append((GFLOPS, gflops, ""))
    if "valid_BLEU" in scratch:
        measurements += [
            (BLEU_VALID, _number(scratch, "valid_BLEU", path, line, 0, 100), ""),
            (BLEU_TEST, _number(scratch, "test_BLEU", path, line, 0, 100), ""),
            (
                LATENCY_MS,
                _number(scratch, "overall_latency", path, line, 0, 1e7),
                LLMAS_LATENCY_DEVICE,
            ),
        ]
        if "num_parameters_without_embedding_weights" in scratch:
            params = _number(
                scratch, "num_parameters_without_embedding_weights", path, line, 1, 1e13
            )
            measurements.append((PARAMS_NO_EMB, params, ""))
    predictions = []
    for predictor in LLMAS_BASELINES:
        if predictor in record:
            scores = record[predictor]
            if not isinstance(scores, dict):
                raise ImportFormatError(
                    path, line, f"'{predictor}' must be an object of BLEU scores"
                )
            predictions += [
                (predictor, metric, _number(scores, key, path, line, 0, 100))
                for metric, key in ((BLEU_VALID, "valid_BLEU"), (BLEU_TEST, "test_BLEU"))
                if key in scores
            ]
    provenance = {"file": str(path), "line": line}
    if "sockeye_dir" in scratch:
        provenance["run"] = scratch["sockeye_dir"]
    return _LlmasRecord(arch, measurements, predictions, provenance)


@dataclass
class LlmasFile:
    """An llmas file read and checked; ``write`` records it in the caller's transaction."""

    spec: Task
    records: list[_LlmasRecord]
    report: ImportReport

    def write(self, project: Project, job_id: int = 0) -> tuple[str, ...]:
        spec = self.spec
        with project.transaction():
            project.ensure_task(spec)
            added = project.add_architectures(spec.name, [r.arch for r in self.records], "llmas")
            self.report.architectures_added = len(added)
            measurements = [
                Measurement(
                    r.arch.id,
                    spec.name,
                    metric,
                    value,
                    LLMAS_SOURCE,
                    device=device,
                    provenance=r.provenance,
                )
                for r in self.records
                for metric, value, device in r.measurements
            ]
            predictions = [
                Prediction(
                    r.arch.id,
                    spec.name,
                    metric,
                    value,
                    "supernet",
                    predictor,
                    provenance={**r.provenance, "source": LLMAS_SOURCE},
                )
                for r in self.records
                for predictor, metric, value in r.predictions
            ]
            project.add_measurements(measurements)
            _replace_llmas_predictions(project, spec.name, predictions)
        self.report.measurements, self.report.predictions = len(measurements), len(predictions)
        return (spec.name,)


def read_llmas(
    path: str | Path, task: str | None = None, vocab_size: int | None = None
) -> LlmasFile:
    """Read an llmas seed-architecture file or an unlabelled pool (.jsonl or .jsonl.gz)."""
    path = Path(path)
    spec = task_for(task or guess_task_name(path), vocab_size)
    records = [
        _parse_llmas_line(text, path, line, spec.space)
        for line, text in _read_lines(path)
        if text.strip()
    ]
    if not records:
        raise ImportFormatError(path, None, "the file holds no architectures")
    return LlmasFile(spec, records, ImportReport(str(path), spec.name, len(records)))


def _replace_llmas_predictions(project: Project, task: str, predictions: list[Prediction]) -> None:
    """The baselines are fixed numbers from the files: a re-import must not duplicate them."""
    with project.transaction() as conn:
        conn.executemany(
            "DELETE FROM predictions WHERE arch_id = ? AND task = ? AND metric = ?"
            " AND predictor = ? AND json_extract(provenance, '$.source') = ?",
            {(p.arch_id, task, p.metric, p.predictor, LLMAS_SOURCE) for p in predictions},
        )
        project.add_predictions(predictions)


# --- HAT latency tables -----------------------------------------------------------------------

_LATENCY_NAME = re.compile(r"^(?P<task>[a-z0-9]+)_(?P<device>.+?)(_all)?$")


@dataclass
class LatencyFile:
    """A HAT latency table read and checked; ``write`` records it."""

    name: str
    task: str
    device: str
    path: str
    rows: np.ndarray
    report: ImportReport

    def write(self, project: Project, job_id: int = 0) -> tuple[str, ...]:
        project.add_latency_table(self.name, self.task, self.device, self.path, self.rows)
        return ()


def read_hat_latency(
    path: str | Path, device: str | None = None, task: str | None = None
) -> LatencyFile:
    """Read a HAT latency CSV (10 averaged features, encoder/decoder mean and std in ms)."""
    path = Path(path)
    match = _LATENCY_NAME.match(path.stem)
    device = device or (match["device"] if match else path.stem)
    task = task or (match["task"] if match else "")
    rows: list[list[float]] = []
    reader = csv.reader(text for _, text in _read_lines(path))
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header) != HAT_LATENCY_COLUMNS:
        raise ImportFormatError(
            path, 1, f"expected the header {','.join(HAT_LATENCY_COLUMNS)}, got {header}"
        )
    for row in reader:
        line = reader.line_num
        if not row:
            continue
        if len(row) != len(HAT_LATENCY_COLUMNS):
            raise ImportFormatError(
                path, line, f"expected {len(HAT_LATENCY_COLUMNS)} fields, got {len(row)}"
            )
        try:
            values = [float(v) for v in row]
        except ValueError:
            bad = next(c for c, v in zip(HAT_LATENCY_COLUMNS, row, strict=True) if not _is_float(v))
            raise ImportFormatError(path, line, f"'{bad}' must be a number") from None
        if not all(math.isfinite(v) and v >= 0 for v in values):
            raise ImportFormatError(path, line, "values must be finite and not negative")
        rows.append(values)
    if not rows:
        raise ImportFormatError(path, None, "the file holds no latency rows")
    name = f"{task}_{device}" if task else device
    report = ImportReport(str(path), task, latency_rows=len(rows))
    return LatencyFile(name, task, device, str(path), np.asarray(rows), report)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# --- HAT YAML ---------------------------------------------------------------------------------


def read_hat_yaml(path: Path, space_name: str) -> Architecture:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportFormatError(path, None, f"cannot read the file: {exc}") from None
    try:
        arch = from_yaml(text)
        get_space(space_name).validate(arch)
    except HatConfigError as exc:
        raise ImportFormatError(path, _line_of(text, exc.key), str(exc)) from None
    except OutOfSpaceError as exc:
        raise ImportFormatError(path, None, str(exc)) from None
    return arch


def _line_of(text: str, key: str | None) -> int | None:
    if key is None:
        return None
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith(f"{key}:"):
            return number
    return None


@dataclass
class YamlFiles:
    """HAT SubTransformer YAML files read and checked; ``write`` records them."""

    spec: Task
    archs: list[Architecture]
    report: ImportReport

    def write(self, project: Project, job_id: int = 0) -> tuple[str, ...]:
        with project.transaction():
            project.ensure_task(self.spec)
            added = project.add_architectures(self.spec.name, self.archs, "hat-yaml")
        self.report.architectures_added = len(added)
        return (self.spec.name,)


def read_hat_yaml_files(
    project: Project, paths: Sequence[str | Path], task: str, vocab_size: int | None = None
) -> YamlFiles:
    """Read HAT SubTransformer YAML files (one architecture each) for ``task``."""
    spec = project.task(task) or task_for(task, vocab_size)
    archs = [read_hat_yaml(Path(p), spec.space) for p in paths]
    where = str(paths[0]) if len(paths) == 1 else f"{len(paths)} YAML files"
    return YamlFiles(spec, archs, ImportReport(where, spec.name, architectures_read=len(archs)))


ParsedFile = LlmasFile | LatencyFile | YamlFiles


def read_file(
    project: Project, path: str | Path, task: str | None = None, vocab_size: int | None = None
) -> ParsedFile:
    """Read and check a file, choosing the reader from its name; nothing is written."""
    path = Path(path)
    name = path.name.lower()
    if name.endswith((".jsonl", ".jsonl.gz")):
        return read_llmas(path, task, vocab_size)
    if name.endswith(".csv"):
        return read_hat_latency(path, task=task)
    if name.endswith((".yml", ".yaml")):
        if task is None:
            raise ValueError(f"{path}: say which task the HAT YAML architecture belongs to")
        return read_hat_yaml_files(project, [path], task, vocab_size)
    raise ImportFormatError(path, None, "expected .jsonl, .jsonl.gz, .csv, .yml or .yaml")


def import_file(
    project: Project, path: str | Path, task: str | None = None, vocab_size: int | None = None
) -> ImportReport:
    """Read ``path`` and record it in one transaction."""
    parsed = read_file(project, path, task, vocab_size)
    parsed.write(project)
    return parsed.report


def import_files(
    project: Project,
    paths: Sequence[str | Path],
    task: str | None = None,
    vocab_size: int | None = None,
) -> list[ImportReport]:
    """Import several files all together: all are read and checked before anything is
    written, so that if one is bad, none is imported."""
    parsed = [read_file(project, p, task, vocab_size) for p in paths]
    with project.transaction():
        for file in parsed:
            file.write(project)
    return [file.report for file in parsed]
