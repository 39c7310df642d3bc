"""Evaluation results of prompts and of the stored baselines: records kept between runs (in
QSettings, without anything secret) and the table that shows them per seed."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)
from superqt import QElidingLabel
from superqt.utils import signals_blocked

from nasstudio.predict.evaluate import METRICS, EvaluationResult, SplitResult

SETTINGS_KEY = "llm/evaluations"
MAX_RECORDS = 300
LOWER_IS_BETTER = {"mae"}
PREDICTOR, SEED, MAE, TAU, RHO, COUNT, PROMPT = range(7)
_HEADERS = ("Predictor", "Seed", "MAE", "Kendall τ", "Spearman ρ", "n", "Prompt")
_HEADER_TIPS = (
    "Stored baselines (from the llmas files) and LLM profiles",
    "Mean (population std) over seeds, then each seed",
    "Mean absolute error of the predicted BLEU (lower is better)",
    "Kendall's tau-b between predicted and measured BLEU (higher is better)",
    "Spearman's rho between predicted and measured BLEU (higher is better)",
    "Test architectures predicted (of 20 per seed)",
    "Prompt name and version (a hash of the rendered sections)",
)
PREDICTOR_WIDTH = 190
_METRIC_COLUMNS = dict(zip(METRICS, (MAE, TAU, RHO), strict=True))
_BEST = QColor("#1b7a1b")
_RUNNING = QColor("#777777")


def _finite(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def seed_row(split: SplitResult) -> dict[str, Any]:
    """One seed's scores as plain JSON (NaN as None)."""
    return {
        "seed": split.seed,
        "n": split.scores.n,
        "missing": len(split.missing),
        **{m: _finite(getattr(split.scores, m)) for m in METRICS},
    }


@dataclass
class EvaluationRecord:
    """A predictor's scores on one task of one seedarchs folder. ``version`` is the prompt's
    version for an LLM prompt and None for a stored predictor (a baseline)."""

    task: str
    folder: str
    predictor: str
    label: str
    version: str | None = None
    seeds: list[dict[str, Any]] = field(default_factory=list)
    finished: bool = False
    time: float = field(default_factory=time.time)

    @classmethod
    def from_result(cls, result: EvaluationResult, folder: str, label: str) -> EvaluationRecord:
        return cls(
            result.task,
            folder,
            result.predictor,
            label,
            result.prompt_version,
            [seed_row(s) for s in result.splits],
            finished=True,
        )

    @property
    def key(self) -> tuple[str, str, str, str]:
        # The label is part of a prompt's key: an ablation variant may render exactly like the
        # full prompt (same version) and still deserves its own row.
        which = self.label if self.version is None else f"{self.version} {self.label}"
        return (self.task, self.folder, self.predictor, which)

    def add_split(self, split: SplitResult) -> None:
        self.seeds = sorted(
            [s for s in self.seeds if s["seed"] != split.seed] + [seed_row(split)],
            key=lambda s: s["seed"],
        )

    def values(self, metric: str) -> list[float]:
        return [s[metric] for s in self.seeds if s[metric] is not None]

    def mean(self, metric: str) -> float | None:
        values = self.values(metric)
        return float(np.mean(values)) if values else None

    def std(self, metric: str) -> float | None:
        values = self.values(metric)
        return float(np.std(values)) if values else None

    def summary(self) -> str:
        """``MAE 0.91 τ 0.62`` (means over seeds), for lists."""
        mae, tau = self.mean("mae"), self.mean("kendall_tau")
        return " ".join(
            f"{name} {value:.2f}" for name, value in (("MAE", mae), ("τ", tau)) if value is not None
        )


class EvaluationBook:
    """All records of this session; the finished ones are also kept in QSettings (newest
    last, at most MAX_RECORDS) so that earlier versions' scores survive a restart."""

    def __init__(self, settings: QSettings) -> None:
        self._settings = settings
        self._records: dict[tuple[str, str, str, str], EvaluationRecord] = {}
        for record in self._load():
            self._records[record.key] = record

    def _load(self) -> list[EvaluationRecord]:
        try:
            items = json.loads(str(self._settings.value(SETTINGS_KEY, "[]")))
            return [EvaluationRecord(**item) for item in items]
        except (TypeError, ValueError):  # an older or hand-edited value: start afresh
            return []

    def put(self, record: EvaluationRecord) -> None:
        record.folder = normalise_folder(record.folder)
        self._records.pop(record.key, None)  # re-inserted: newest last
        self._records[record.key] = record
        if record.finished:
            self._save()

    def discard(self, key: tuple[str, str, str, str]) -> None:
        self._records.pop(key, None)

    def get(self, key: tuple[str, str, str, str]) -> EvaluationRecord | None:
        return self._records.get(key)

    def _save(self) -> None:
        finished = [asdict(r) for r in self._records.values() if r.finished][-MAX_RECORDS:]
        self._settings.setValue(SETTINGS_KEY, json.dumps(finished))

    def records(self, task: str, folder: str) -> list[EvaluationRecord]:
        """Baselines first, then prompts in the order they were evaluated."""
        folder = normalise_folder(folder)
        chosen = [r for r in self._records.values() if r.task == task and r.folder == folder]
        return sorted(chosen, key=lambda r: (r.version is not None, r.time))

    def tasks(self, folder: str) -> list[str]:
        folder = normalise_folder(folder)
        return sorted({r.task for r in self._records.values() if r.folder == folder})

    def of_version(self, version: str) -> list[EvaluationRecord]:
        return [r for r in self._records.values() if r.version == version and r.finished]


def normalise_folder(folder: str | Path) -> str:
    return str(Path(folder).expanduser().resolve())


def _cell(mean: float | None, std: float | None = None) -> str:
    if mean is None:
        return "—"
    return f"{mean:.2f}" if std is None else f"{mean:.2f} ({std:.2f})"


class EvaluationPanel(QWidget):
    """The evaluation table of one task with the folder it came from."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.folder_label = QElidingLabel(elideMode=Qt.TextElideMode.ElideMiddle)
        self.task_combo = QComboBox(toolTip="Task whose evaluations are shown")
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(_HEADERS)
        for column, tip in enumerate(_HEADER_TIPS):
            self.tree.headerItem().setToolTip(column, tip)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        header = self.tree.header()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(PREDICTOR, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(PROMPT, QHeaderView.ResizeMode.Interactive)
        self.tree.setColumnWidth(PREDICTOR, PREDICTOR_WIDTH)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.hint = QLabel(wordWrap=True)
        self.hint.setStyleSheet("color: #555")
        row = QHBoxLayout()
        row.addWidget(QLabel("Task"))
        row.addWidget(self.task_combo)
        row.addWidget(QLabel("Seedarchs"))
        row.addWidget(self.folder_label, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.hint)

    def set_tasks(self, tasks: list[str], current: str | None) -> None:
        with signals_blocked(self.task_combo):
            self.task_combo.clear()
            self.task_combo.addItems(tasks)
            if current in tasks:
                self.task_combo.setCurrentText(current)

    def task(self) -> str | None:
        return self.task_combo.currentText() or None

    def show_records(
        self, folder: str, records: list[EvaluationRecord], editor_version: str | None
    ) -> None:
        """One row per predictor (mean and std over seeds) with a child row per seed; the best
        mean of each metric in green, the editor's version in bold."""
        self.folder_label.setText(folder)
        self.folder_label.setToolTip(folder)
        self.tree.clear()
        best = _best_means(records)
        for record in records:
            item = self._record_item(record, best)
            if record.version is not None and record.version == editor_version:
                font = item.font(PROMPT)
                font.setBold(True)
                item.setFont(PROMPT, font)
                item.setToolTip(PROMPT, "The prompt now in the editor")
        self.tree.expandAll()
        self.hint.setText(
            ""
            if records
            else "No evaluation of this task yet: Evaluate (Ctrl+Shift+E) scores the prompt "
            "in the editor and the stored baselines on the seedarchs folder."
        )

    def _record_item(self, record: EvaluationRecord, best: dict[str, float]) -> QTreeWidgetItem:
        prompt = (
            "stored predictions"
            if record.version is None
            else (f"{record.label} · {record.version}")
        )
        seeds = "mean (std)" if record.finished else f"running: {len(record.seeds)} seed(s) done"
        item = QTreeWidgetItem([""] * len(_HEADERS))
        item.setText(PREDICTOR, record.predictor)
        item.setToolTip(PREDICTOR, record.predictor)
        item.setText(SEED, seeds)
        item.setText(PROMPT, prompt)
        item.setToolTip(PROMPT, prompt)
        for metric, column in _METRIC_COLUMNS.items():
            mean = record.mean(metric)
            item.setText(column, _cell(mean, record.std(metric)))
            if record.finished and mean is not None and mean == best.get(metric):
                item.setForeground(column, QBrush(_BEST))
                font = QFont(item.font(column))
                font.setBold(True)
                item.setFont(column, font)
        item.setText(COUNT, str(sum(s["n"] for s in record.seeds)))
        if not record.finished:
            item.setForeground(SEED, QBrush(_RUNNING))
        for seed in record.seeds:
            child = QTreeWidgetItem([""] * len(_HEADERS))
            child.setText(SEED, str(seed["seed"]))
            for metric, column in _METRIC_COLUMNS.items():
                child.setText(column, _cell(seed[metric]))
            child.setText(COUNT, str(seed["n"]))
            if seed.get("missing"):
                child.setToolTip(COUNT, f"{seed['missing']} test architectures not predicted")
            item.addChild(child)
        for column in (MAE, TAU, RHO, COUNT):
            item.setTextAlignment(column, Qt.AlignmentFlag.AlignRight)
        self.tree.addTopLevelItem(item)
        return item

    def rows(self) -> list[list[str]]:
        """The top-level rows' texts (what a test or a copy reads)."""
        return [
            [self.tree.topLevelItem(i).text(c) for c in range(len(_HEADERS))]
            for i in range(self.tree.topLevelItemCount())
        ]


def _best_means(records: list[EvaluationRecord]) -> dict[str, float]:
    best: dict[str, float] = {}
    for metric in METRICS:
        means = [m for r in records if r.finished and (m := r.mean(metric)) is not None]
        if means:
            best[metric] = min(means) if metric in LOWER_IS_BETTER else max(means)
    return best
