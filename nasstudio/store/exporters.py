"""Exporters for chosen architectures: HAT YAML (one file each), JSON, CSV."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from nasstudio.space import to_yaml
from nasstudio.space.hat import to_hat_config
from nasstudio.store.project import BLEU_VALID, LATENCY_MS, Project

EXPORT_FORMATS = ("yaml", "json", "csv")


def _write_atomically(path: Path, text: str) -> None:
    """Write via a temporary file in the same folder so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _rows(project: Project, task: str, arch_ids: Sequence[str]) -> pd.DataFrame:
    table = project.table(task)
    missing = [a for a in arch_ids if a not in table.index]
    if missing:
        raise KeyError(f"architecture {missing[0]} is not in task '{task}'")
    return table.loc[list(arch_ids)]


def _latency_column(table: pd.DataFrame) -> str | None:
    columns = [c for c in table.columns if c.startswith(f"{LATENCY_MS}@")]
    return columns[0] if columns else None


def _metrics(row: pd.Series) -> dict[str, Any]:
    return {
        name: (None if isinstance(v, float) and math.isnan(v) else v)
        for name, v in row.items()
        if not name.startswith("source:") and name not in ("origin", "added_at")
    }


def yaml_file_name(task: str, arch_id: str, latency_ms: float | None, bleu: float | None) -> str:
    """HAT's naming, ``<task>@<latency>ms_bleu@<bleu>.yml``, where both are known."""
    if latency_ms is None or bleu is None or math.isnan(latency_ms) or math.isnan(bleu):
        return f"{task}_{arch_id}.yml"
    return f"{task}@{latency_ms:.1f}ms_bleu@{bleu:.2f}.yml"


def export_yaml(
    project: Project, task: str, arch_ids: Sequence[str], folder: str | Path
) -> list[Path]:
    """One HAT SubTransformer YAML per architecture; returns the files written."""
    folder = Path(folder)
    table = _rows(project, task, arch_ids)
    latency = _latency_column(table)
    written: list[Path] = []
    for arch_id, row in table.iterrows():
        name = yaml_file_name(
            task,
            arch_id,
            row[latency] if latency else None,
            row.get(BLEU_VALID),
        )
        path = folder / name
        if path in written:  # two architectures with the same latency and BLEU
            path = path.with_name(f"{path.stem}_{arch_id}.yml")
        _write_atomically(path, to_yaml(project.architecture(arch_id)))
        written.append(path)
    return written


def export_json(project: Project, task: str, arch_ids: Sequence[str], path: str | Path) -> Path:
    table = _rows(project, task, arch_ids)
    records = [
        {
            "id": arch_id,
            "task": task,
            "hat": to_hat_config(project.architecture(arch_id)),
            "metrics": _metrics(row),
        }
        for arch_id, row in table.iterrows()
    ]
    path = Path(path)
    _write_atomically(path, json.dumps(records, indent=2) + "\n")
    return path


def export_csv(project: Project, task: str, arch_ids: Sequence[str], path: str | Path) -> Path:
    table = _rows(project, task, arch_ids)
    table = table[[c for c in table.columns if not c.startswith("source:") and c != "added_at"]]
    configs = [json.dumps(to_hat_config(project.architecture(a))) for a in table.index]
    out = table.assign(hat_config=configs)
    path = Path(path)
    _write_atomically(path, out.to_csv(index_label="id"))
    return path


def export(
    project: Project, task: str, arch_ids: Sequence[str], fmt: str, target: str | Path
) -> list[Path]:
    """Export in ``fmt`` (yaml: ``target`` is a folder; json/csv: a file)."""
    if fmt == "yaml":
        return export_yaml(project, task, arch_ids, target)
    if fmt == "json":
        return [export_json(project, task, arch_ids, target)]
    if fmt == "csv":
        return [export_csv(project, task, arch_ids, target)]
    raise ValueError(f"unknown export format '{fmt}', expected one of {EXPORT_FORMATS}")
