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
import sys
import zlib
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
# Plausible latencies: a forward pass of a translation model takes more than a microsecond and
# less than a quarter of an hour.
_LATENCY_MS_RANGE = (1e-3, 1e6)
# Architecture features (averaged dimensions, layer and head counts) above this are not HAT's.
_MAX_FEATURE = 1e6


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
            parts.append(counted(self.latency_rows, "latency row"))
        else:
            parts.append(
                f"{counted(self.architectures_read, 'architecture')} "
                f"({self.architectures_added} new), {counted(self.measurements, 'measurement')}, "
                f"{counted(self.predictions, 'prediction')}"
            )
        return " ".join(parts + [f"({note})" for note in self.notes])


def counted(count: int, noun: str) -> str:
    """``1 architecture``, ``2 architectures``."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def task_for(name: str, vocab_size: int | None = None) -> Task:
    """A known task, or a new HAT-WMT-space task of the given vocabulary."""
    if not name.strip():
        raise ValueError("the task name is empty")
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


def read_text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """The file's lines (gzip-compressed if named .gz), numbered from 1, decoded as UTF-8."""
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb") as handle:
            for line, raw in enumerate(handle, start=1):
                try:
                    yield line, raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise ImportFormatError(path, line, f"not UTF-8 text ({exc.reason})") from None
    except FileNotFoundError:
        raise ImportFormatError(path, None, "no such file") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise ImportFormatError(path, None, f"cannot read the file: {exc}") from None


# --- llmas ------------------------------------------------------------------------------------


def _number(record: dict, key: str, path: Path, line: int, low: float, high: float) -> float:
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ImportFormatError(path, line, f"'{key}' must be a number, got {_shown(value)}")
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits
        number = math.inf
    if not low <= number <= high:
        raise ImportFormatError(
            path, line, f"'{key}' is {_shown(value)}, expected {low:g} to {high:g}"
        )
    return number


def _unreadable(exc: ValueError | RecursionError) -> str:
    """What made a parser give up, in the user's terms rather than Python's."""
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if "integer string conversion" in str(exc):
        return f"a number of more than {sys.get_int_max_str_digits()} digits"
    return str(exc)


def _shown(value: Any, limit: int = 40) -> str:
    """``repr(value)``, cut short: a bad value may be megabytes long."""
    if isinstance(value, int) and value.bit_length() > 128:
        return "a huge integer"  # its repr could exceed Python's limit on digits
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}..."


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
    except (ValueError, RecursionError) as exc:
        raise ImportFormatError(path, line, f"not usable JSON ({_unreadable(exc)})") from None
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
    except (ValueError, RecursionError) as exc:
        raise ImportFormatError(path, line, f"arch_info: {_unreadable(exc)}") from None
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
                _number(scratch, "overall_latency", path, line, *_LATENCY_MS_RANGE),
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
    if isinstance(scratch.get("sockeye_dir"), str):
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
        for line, text in read_text_lines(path)
        if text.strip()
    ]
    if not records:
        raise ImportFormatError(path, None, "the file holds no architectures")
    report = ImportReport(str(path), spec.name)
    check_consistent([LlmasFile(spec, records, report)])
    first_of: dict[str, _LlmasRecord] = {}
    for record in records:
        first_of.setdefault(record.arch.id, record)
    unique = list(first_of.values())
    report.architectures_read = len(unique)
    if len(unique) < len(records):
        repeats = len(records) - len(unique)
        report.notes.append(f"{counted(repeats, 'line')} repeating an earlier one skipped")
    return LlmasFile(spec, unique, report)


def check_consistent(files: Sequence[ParsedFile]) -> None:
    """Refuse files that, read together, say two things about one value: one architecture with
    two BLEU scores, or two latency tables of one name. Repeats that agree are fine."""
    tables: dict[str, str] = {}
    for file in files:
        if isinstance(file, LatencyFile) and tables.setdefault(file.name, file.path) != file.path:
            other = tables[file.name]
            raise ImportFormatError(
                file.path, None, f"latency table '{file.name}' comes from {other} too"
            )
    seen: dict[tuple, tuple[float, str, int]] = {}
    for file in files:
        for record in file.records if isinstance(file, LlmasFile) else ():
            where = (record.provenance["file"], record.provenance["line"])
            for name, key, value in _values(record):
                first = seen.setdefault((file.spec.name, record.arch.id, key), (value, *where))
                if first[0] != value:
                    raise ImportFormatError(
                        *where,
                        f"architecture {record.arch.id} has {name} {value:g} here but "
                        f"{first[0]:g} at {first[1]}:{first[2]}",
                    )


def _values(record: _LlmasRecord) -> Iterator[tuple[str, tuple, float]]:
    """Each value of a record: how it is called, a key naming it, the value."""
    for metric, value, device in record.measurements:
        yield (f"{metric}@{device}" if device else metric), ("measured", metric, device), value
    for predictor, metric, value in record.predictions:
        yield f"{predictor}'s {metric}", ("predicted", predictor, metric), value


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
    if not task:
        raise ImportFormatError(
            path,
            None,
            "the file name does not say which task it belongs to"
            " (HAT names it <task>_<device>.csv)",
        )
    reader = csv.reader(text for _, text in read_text_lines(path))
    try:
        rows = _latency_rows(reader, path)
    except csv.Error as exc:
        raise ImportFormatError(path, reader.line_num, f"not valid CSV ({exc})") from None
    if not rows:
        raise ImportFormatError(path, None, "the file holds no latency rows")
    name = f"{task}_{device}"
    report = ImportReport(str(path), task, latency_rows=len(rows))
    return LatencyFile(name, task, device, str(path), np.asarray(rows), report)


def _latency_rows(reader, path: Path) -> list[list[float]]:
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header) != HAT_LATENCY_COLUMNS:
        raise ImportFormatError(
            path, 1, f"expected the header {','.join(HAT_LATENCY_COLUMNS)}, got {_shown(header)}"
        )
    rows = []
    for row in reader:
        if not row:
            continue
        if len(row) != len(HAT_LATENCY_COLUMNS):
            raise ImportFormatError(
                path, reader.line_num, f"expected {len(HAT_LATENCY_COLUMNS)} fields, got {len(row)}"
            )
        rows.append(
            [
                _latency_value(column, text, path, reader.line_num)
                for column, text in zip(HAT_LATENCY_COLUMNS, row, strict=True)
            ]
        )
    return rows


def _latency_value(column: str, text: str, path: Path, line: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ImportFormatError(path, line, f"'{column}' must be a number") from None
    if column.startswith("latency_mean"):
        low, high = _LATENCY_MS_RANGE
    else:  # features and standard deviations
        low, high = 0.0, _MAX_FEATURE if column in FEATURE_NAMES else _LATENCY_MS_RANGE[1]
    if not low <= value <= high:
        raise ImportFormatError(
            path, line, f"'{column}' is {_shown(value)}, expected {low:g} to {high:g}"
        )
    return value


# --- HAT YAML ---------------------------------------------------------------------------------

# A HAT SubTransformer config is a few hundred bytes of lists one level deep.
_MAX_YAML_BYTES = 1 << 20
_MAX_YAML_NESTING = 8


def read_hat_yaml(path: Path, space_name: str) -> Architecture:
    try:
        if path.stat().st_size > _MAX_YAML_BYTES:
            raise ImportFormatError(path, None, "too big for a HAT SubTransformer config")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportFormatError(path, None, f"cannot read the file: {exc}") from None
    _refuse_deep_nesting(text, path)
    try:
        arch = from_yaml(text)
        get_space(space_name).validate(arch)
    except HatConfigError as exc:
        raise ImportFormatError(path, _line_of(text, exc.key), str(exc)) from None
    except OutOfSpaceError as exc:
        raise ImportFormatError(path, None, str(exc)) from None
    except (ValueError, RecursionError) as exc:
        raise ImportFormatError(path, None, _unreadable(exc)) from None
    return arch


def _refuse_deep_nesting(text: str, path: Path) -> None:
    """HAT configs nest one list deep. The YAML parser takes minutes over thousands of nested
    brackets: refuse them before it starts."""
    depth = 0
    for bracket in re.findall(r"[][{}]", text):
        depth += 1 if bracket in "[{" else -1
        if depth > _MAX_YAML_NESTING:
            raise ImportFormatError(path, None, "not a HAT config (lists nested too deeply)")


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
    if not path.exists() or path.is_dir():
        raise ImportFormatError(
            path, None, "a folder, not a file" if path.is_dir() else "no such file"
        )
    if task is not None and not task.strip():
        raise ValueError("the task name is empty")
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
    check_consistent(parsed)
    with project.transaction():
        for file in parsed:
            file.write(project)
    return [file.report for file in parsed]
