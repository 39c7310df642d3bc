"""Exporters for chosen architectures: HAT YAML (one file each), JSON, JSON lines, CSV.

Each streams the architectures from the project a few hundred at a time, so exporting 100,000
takes no more memory than exporting 1,000, and writes each file atomically: a crash or an error
half-way never leaves half a file.
"""

from __future__ import annotations

import csv
import json
import math
import os
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from nasstudio.space import FEATURE_NAMES, Architecture, to_yaml
from nasstudio.space.hat import to_hat_config
from nasstudio.store.project import BLEU_VALID, GFLOPS, LATENCY_MS, PARAMS, PARAMS_NO_EMB, Project

EXPORT_FORMATS = ("yaml", "json", "jsonl", "csv")


@contextmanager
def _atomic_file(path: Path) -> Iterator[IO[str]]:
    """A text file that appears at ``path`` only once it is written whole. The temporary file
    beside it is created with the usual permissions (the umask applies), unlike mkstemp's."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _cost_label(x: str, value: float) -> str:
    """How HAT-style file names show a cost: ``12.3ms``, ``2.85gflops``, ``49.5Mparams``."""
    if x.startswith(f"{LATENCY_MS}@"):
        return f"{value:.1f}ms"
    if x == GFLOPS:
        return f"{value:.2f}gflops"
    if x in (PARAMS, PARAMS_NO_EMB):
        return f"{value / 1e6:.1f}M{x}"
    return f"{value:.4g}{x.replace('@', '-').replace(':', '-')}"


def yaml_file_name(task: str, arch_id: str, x: str | None, cost: Any, bleu: Any) -> str:
    """HAT's naming, ``<task>@<latency>ms_bleu@<bleu>.yml``, with the cost ``x`` the
    architectures were chosen by; ``<task>_<id>.yml`` where a number is missing."""
    known = [v for v in (cost, bleu) if isinstance(v, float | int) and math.isfinite(v)]
    if x is None or len(known) < 2:
        return f"{task}_{arch_id}.yml"
    return f"{task}@{_cost_label(x, cost)}_bleu@{bleu:.2f}.yml"


def export_yaml(
    project: Project,
    task: str,
    arch_ids: Sequence[str] | None,
    folder: str | Path,
    x: str | None = None,
) -> list[Path]:
    """One HAT SubTransformer YAML per architecture, named by cost ``x`` (default: the task's
    first latency column, as HAT does) and BLEU; returns the files written."""
    folder = Path(folder)
    if x is None:
        measured = project.value_columns(task)["measured"]
        x = next((c for c in measured if c.startswith(f"{LATENCY_MS}@")), None)
    written: list[Path] = []
    names: set[str] = set()
    for arch, row in project.rows(task, arch_ids):
        name = yaml_file_name(task, arch.id, x, row.get(x), row.get(BLEU_VALID))
        if name in names:  # two architectures with the same cost and BLEU
            name = f"{Path(name).stem}_{arch.id}.yml"
        names.add(name)
        path = folder / name
        with _atomic_file(path) as handle:
            handle.write(to_yaml(arch))
        written.append(path)
    return written


def export_json(
    project: Project, task: str, arch_ids: Sequence[str] | None, path: str | Path
) -> Path:
    """A JSON list of ``{id, task, hat, metrics}``, one architecture a line, written one at a
    time."""
    path = Path(path)
    rows = project.rows(task, arch_ids)
    with _atomic_file(path) as handle:
        separator = "[\n"
        for arch, row in rows:
            handle.write(separator + json.dumps(_record(task, arch, row)))
            separator = ",\n"
        handle.write("[]\n" if separator == "[\n" else "\n]\n")
    return path


def export_jsonl(
    project: Project, task: str, arch_ids: Sequence[str] | None, path: str | Path
) -> Path:
    """One ``{id, task, hat, metrics}`` object per line."""
    path = Path(path)
    rows = project.rows(task, arch_ids)
    with _atomic_file(path) as handle:
        for arch, row in rows:
            handle.write(json.dumps(_record(task, arch, row)) + "\n")
    return path


def _record(task: str, arch: Architecture, row: dict[str, Any]) -> dict[str, Any]:
    metrics = {name: value for name, value in row.items() if name != "origin"}
    return {"id": arch.id, "task": task, "hat": to_hat_config(arch), "metrics": metrics}


def export_csv(
    project: Project, task: str, arch_ids: Sequence[str] | None, path: str | Path
) -> Path:
    """One row per architecture: id, origin, features, every value column, the HAT config."""
    path = Path(path)
    rows = project.rows(task, arch_ids)
    columns = project.value_columns(task)
    header = ["id", "origin", *FEATURE_NAMES, *sorted(columns["measured"] + columns["predicted"])]
    with _atomic_file(path) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([*header, "hat_config"])
        for arch, row in rows:
            values = [row[c] for c in header[1:]]
            writer.writerow([arch.id, *values, json.dumps(to_hat_config(arch))])
    return path


def export(
    project: Project,
    task: str,
    arch_ids: Sequence[str] | None,
    fmt: str,
    target: str | Path,
    x: str | None = None,
) -> list[Path]:
    """Export ``arch_ids`` of ``task`` (None: all of them) in ``fmt``; ``target`` is a folder
    for yaml (files named by the cost ``x``), a file otherwise."""
    if fmt == "yaml":
        return export_yaml(project, task, arch_ids, target, x)
    writers = {"json": export_json, "jsonl": export_jsonl, "csv": export_csv}
    if fmt not in writers:
        raise ValueError(f"unknown export format '{fmt}', expected one of {EXPORT_FORMATS}")
    return [writers[fmt](project, task, arch_ids, target)]
