"""Evaluation results of prompts and of the stored baselines, as the project records them (one
row per seed, written by the evaluation job), and the table that shows them per seed."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt
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

from nasstudio.jobs import JobState
from nasstudio.predict.evaluate import METRICS, coverage_text, undefined_text
from nasstudio.store import Project

LOWER_IS_BETTER = {"mae"}
PREDICTOR, SEED, MAE, TAU, RHO, COUNT, PROMPT, ABLATION = range(8)
_HEADERS = ("Predictor", "Seed", "MAE", "Kendall τ", "Spearman ρ", "n", "Prompt", "Ablation")
_HEADER_TIPS = (
    "Stored baselines (from the llmas files) and LLM profiles",
    "Mean (population std) over seeds, then each seed",
    "Mean absolute error of the predicted BLEU (lower is better)",
    "Kendall's tau-b between predicted and measured BLEU (higher is better)",
    "Spearman's rho between predicted and measured BLEU (higher is better)",
    "Test architectures predicted, of those asked (an LLM may answer no number)",
    "Prompt name and version (a hash of the rendered sections)",
    "Which kind of ablation: one of llmas's cumulative templates, or a leave-one-out variant "
    "of the project's prompt",
)
PREDICTOR_WIDTH = 110  # elided: the tooltip has the whole name
_METRIC_COLUMNS = dict(zip(METRICS, (MAE, TAU, RHO), strict=True))
_BEST = QColor("#1b7a1b")
_RUNNING = QColor("#777777")
# Rows of a job in these states are an evaluation that is, or will be, complete.
_SHOWN_STATES = {None, JobState.DONE, JobState.QUEUED, JobState.RUNNING}


@dataclass
class EvaluationRecord:
    """A predictor's scores on one task of one seedarchs folder, from one job. ``version`` is
    the prompt's version for an LLM prompt and None for a stored predictor (a baseline)."""

    task: str
    folder: str
    predictor: str
    label: str
    version: str | None = None
    ablation: str = ""  # llmas cumulative, leave-one-out, or '' (not an ablation)
    seeds: list[dict[str, Any]] = field(default_factory=list)
    finished: bool = False
    first_row: int = 0  # where it starts in the project's evaluations: their order

    @property
    def key(self) -> tuple[str, str, str, str | None, str]:
        # The label is part of a prompt's key: an ablation variant may render exactly like the
        # full prompt (same version) and still deserves its own row.
        return (self.task, self.folder, self.predictor, self.version, self.label)

    def values(self, metric: str) -> list[float]:
        return [s[metric] for s in self.seeds if s[metric] is not None]

    def mean(self, metric: str) -> float | None:
        values = self.values(metric)
        return float(np.mean(values)) if values else None

    def std(self, metric: str) -> float | None:
        values = self.values(metric)
        return float(np.std(values)) if values else None

    def coverage(self, metric: str | None = None) -> tuple[int, int]:
        """(test architectures ``metric`` rests on, or all predicted ones; those asked)."""
        seeds = [s for s in self.seeds if metric is None or s[metric] is not None]
        return sum(s["n"] for s in seeds), sum(s["asked"] for s in self.seeds)

    def figure(self, metric: str) -> str:
        """Mean (std) over seeds, with ``n=40/60`` when it rests on fewer architectures than
        were predicted, or why it is undefined (``undefined (constant predictions)``)."""
        mean = self.mean(metric)
        if mean is None:
            why = sorted({s["undefined"] for s in self.seeds if s["undefined"]})
            return undefined_text(", ".join(why) or None)
        rests_on, asked = self.coverage(metric)
        shown = _cell(mean, self.std(metric))
        if rests_on < self.coverage()[0]:  # undefined on some seed
            shown += f" {coverage_text(rests_on, asked)}"
        return shown

    def summary(self) -> str:
        """``MAE 0.91 τ 0.62`` (means over seeds), for lists."""
        mae, tau = self.mean("mae"), self.mean("kendall_tau")
        return " ".join(
            f"{name} {value:.2f}" for name, value in (("MAE", mae), ("τ", tau)) if value is not None
        )


def evaluation_records(
    project: Project, task: str | None = None, folder: str | None = None
) -> list[EvaluationRecord]:
    """The evaluations the project holds (of ``task`` on ``folder`` when given): for each
    predictor and prompt the latest, finished or still running; one whose job was cancelled or
    failed is left out. Baselines first, then prompts in the order they were evaluated."""
    benchmark = normalise_folder(folder) if folder is not None else None
    runs: dict[tuple, EvaluationRecord] = {}
    for row in project.evaluations(task, benchmark):
        state = row["job_state"]
        if state not in _SHOWN_STATES:
            continue
        record = EvaluationRecord(
            row["task"],
            row["benchmark"],
            row["predictor"],
            row["label"],
            row["prompt_version"],
            row["details"].get("ablation", ""),
            finished=state in (None, JobState.DONE),
            first_row=row["id"],
        )
        record = runs.setdefault((row["job_id"], record.key), record)
        record.seeds.append(
            {
                "seed": row["seed"],
                "n": row["n"],
                "missing": len(row["details"].get("missing", ())),
                "asked": row["n"] + len(row["details"].get("missing", ())),
                "undefined": row["details"].get("undefined"),
                **{m: _finite(row[m]) for m in METRICS},
            }
        )
    latest = {record.key: record for record in runs.values()}  # runs come oldest first
    return sorted(latest.values(), key=lambda r: (r.version is not None, r.first_row))


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def normalise_folder(folder: str | Path) -> str:
    return str(Path(folder).expanduser().resolve())


def _cell(mean: float, std: float | None = None) -> str:
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
        self.tree.setIndentation(12)  # seed rows need little indent; the metrics need the width
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
        layout.setContentsMargins(0, 4, 0, 0)  # the tab's frame is margin enough
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
        item.setText(ABLATION, record.ablation)
        for metric, column in _METRIC_COLUMNS.items():
            mean = record.mean(metric)
            item.setText(column, record.figure(metric))
            if record.finished and mean is not None and mean == best.get(metric):
                item.setForeground(column, QBrush(_BEST))
                font = QFont(item.font(column))
                font.setBold(True)
                item.setFont(column, font)
        item.setText(COUNT, "{}/{}".format(*record.coverage()))
        if not record.finished:
            item.setForeground(SEED, QBrush(_RUNNING))
        for seed in record.seeds:
            child = QTreeWidgetItem([""] * len(_HEADERS))
            child.setText(SEED, str(seed["seed"]))
            for metric, column in _METRIC_COLUMNS.items():
                value = seed[metric]
                child.setText(
                    column, undefined_text(seed["undefined"]) if value is None else _cell(value)
                )
            child.setText(COUNT, f"{seed['n']}/{seed['asked']}")
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
