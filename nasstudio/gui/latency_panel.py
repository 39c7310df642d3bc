"""The Latency panel: the latency tables a project imported and the latency it measured, the
latency predictors stored beside it, fitting one as a job, and a stored predictor's held-out
rows as a predicted-vs-measured scatter with its MAPE and Kendall's tau."""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from nasstudio.gui.dialogs import show_error
from nasstudio.gui.session import ProjectSession
from nasstudio.jobs import JobEvent
from nasstudio.predict.latency import (
    HAT_LEARNING_RATE,
    HAT_STEPS,
    PREDICTOR_NAME,
    LatencyPredictor,
    latency_predictor_job,
    latency_predictors,
    measured_devices,
)

JOB_KIND = "latency-predictor"
_SOURCE = Qt.ItemDataRole.UserRole  # a source item's job parameters (table, or task and device)
_POINT = "#0072B2"


class LatencyPanel(QWidget):
    """Choose a source, name the predictor, Train; the stored predictors list below, and the
    chosen one's held-out rows on the scatter."""

    status = Signal(str)  # a message for the status bar

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._session: ProjectSession | None = None
        self._started: dict[int, str] = {}  # this panel's jobs: the predictor each fits
        self._predictors: dict[str, LatencyPredictor] = {}
        self.sources = self._tree(
            ("Source", "Task", "Device", "Rows"),
            "Imported latency tables and the project's measured latency: what to fit on",
        )
        self.predictors = self._tree(
            ("Predictor", "Task", "Device", "MAPE %", "τ", "Trained on"),
            "Latency predictors stored beside the project; choose one to see its held-out rows",
        )
        self.name_edit = QLineEdit(placeholderText="name", toolTip="Name to store it under")
        self.steps_spin = QSpinBox(
            minimum=1, maximum=1_000_000, value=HAT_STEPS, toolTip="Steps of 128 rows (HAT: 5000)"
        )
        self.rate_spin = QDoubleSpinBox(
            decimals=6,
            minimum=1e-6,
            maximum=1.0,
            singleStep=1e-5,
            value=HAT_LEARNING_RATE,
            toolTip="Adam's learning rate (HAT: 0.00001)",
        )
        self.seed_spin = QSpinBox(minimum=0, maximum=2**31 - 1, toolTip="Split and training seed")
        self.train_button = QPushButton("Train", toolTip="Fit a latency predictor as a job")
        self.state_label = QLabel(wordWrap=True)
        self.plot = pg.PlotWidget(background="w")
        self.scores_label = QLabel(wordWrap=True, textFormat=Qt.TextFormat.RichText)
        self._scatter = pg.ScatterPlotItem(size=6, pen=None, brush=pg.mkBrush(_POINT))
        self._diagonal = pg.PlotDataItem(pen=pg.mkPen("#888", width=1, style=Qt.PenStyle.DashLine))
        self._build_layout()
        self.sources.currentItemChanged.connect(self._suggest_name)
        self.predictors.currentItemChanged.connect(self._show_predictor)
        self.name_edit.textChanged.connect(self._update_button)
        self.train_button.clicked.connect(self.train)
        self._update_button()

    @staticmethod
    def _tree(headers: tuple[str, ...], tip: str) -> QTreeWidget:
        tree = QTreeWidget(rootIsDecorated=False, uniformRowHeights=True, toolTip=tip)
        tree.setHeaderLabels(list(headers))
        return tree

    def _build_layout(self) -> None:
        form = QGridLayout()
        for row, pairs in enumerate(
            (
                (("Name", self.name_edit), ("Seed", self.seed_spin)),
                (("Steps", self.steps_spin), ("Learning rate", self.rate_spin)),
            )
        ):
            for pair, (label, widget) in enumerate(pairs):
                form.addWidget(QLabel(label), row, 2 * pair)
                form.addWidget(widget, row, 2 * pair + 1)
        form.setColumnStretch(1, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.train_button)
        buttons.addWidget(self.state_label, 1)
        fit = _column(QLabel("Fit on"), self.sources)
        fit.layout().addLayout(form)
        fit.layout().addLayout(buttons)
        stored = _column(QLabel("Stored predictors"), self.predictors)
        plot = self.plot.getPlotItem()
        plot.setLabel("bottom", "measured latency (ms)")
        plot.setLabel("left", "predicted latency (ms)")
        plot.showGrid(x=True, y=True, alpha=0.2)
        plot.addItem(self._diagonal)
        plot.addItem(self._scatter)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        for part in (fit, stored, _column(self.plot, self.scores_label)):
            splitter.addWidget(part)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)

    # --- the project --------------------------------------------------------------------------

    def set_session(self, session: ProjectSession | None) -> None:
        self._session = session
        self._started.clear()
        if session is not None:
            session.bridge.job_event.connect(self._on_job_event)
        self.refresh()

    def refresh(self) -> None:
        """Read the sources and the stored predictors again, keeping the choices."""
        self._fill_sources()
        self._fill_predictors(self.chosen_predictor())
        self._update_button()

    def _fill_sources(self) -> None:
        chosen = self.sources.currentItem()
        chosen = chosen.data(0, _SOURCE) if chosen else None
        self.sources.clear()
        if self._session is None:
            return
        project = self._session.project
        for table in project.latency_tables().to_dict("records"):
            self._add_source(
                {"table": table["name"]},
                (table["name"], table["task"], table["device"], str(table["rows"])),
                f"imported from {table['source']}",
            )
        for task in project.tasks():
            for device in measured_devices(project, task.name):
                label = f"{task.name} measurements"
                tip = f"the latest latency of each of {task.name}'s architectures on {device}"
                self._add_source(
                    {"task": task.name, "device": device}, (label, task.name, device), tip
                )
        for index in range(self.sources.topLevelItemCount()):
            item = self.sources.topLevelItem(index)
            if item.data(0, _SOURCE) == chosen or (chosen is None and index == 0):
                self.sources.setCurrentItem(item)
        self.sources.resizeColumnToContents(0)

    def _add_source(self, params: dict[str, str], texts: tuple[str, ...], tip: str) -> None:
        item = QTreeWidgetItem(self.sources, list(texts))
        item.setData(0, _SOURCE, params)
        item.setToolTip(0, tip)

    def _fill_predictors(self, chosen: str | None) -> None:
        self.predictors.clear()
        self._predictors = {}
        if self._session is not None:
            self._predictors = {p.name: p for p in latency_predictors(self._session.project.path)}
        for predictor in self._predictors.values():
            scores = predictor.held_out
            item = QTreeWidgetItem(
                self.predictors,
                [
                    predictor.name,
                    predictor.task,
                    predictor.device,
                    f"{scores.mape:.2f}" if scores else "",
                    f"{scores.tau:.3f}" if scores else "",
                    predictor.trained_on,
                ],
            )
            item.setToolTip(5, predictor.trained_on)
            if predictor.name == chosen:
                self.predictors.setCurrentItem(item)
        self._show_predictor()

    # --- training -----------------------------------------------------------------------------

    def chosen_source(self) -> dict[str, str] | None:
        item = self.sources.currentItem()
        return item.data(0, _SOURCE) if item else None

    def chosen_predictor(self) -> str | None:
        item = self.predictors.currentItem()
        return item.text(0) if item else None

    def _suggest_name(self) -> None:
        """A name from the source (the table's, or task and device) unless one was typed."""
        source = self.chosen_source()
        if source is None or (self.name_edit.isModified() and self.name_edit.text()):
            return
        name = source.get("table") or f"{source['task']}-{source['device']}"
        self.name_edit.setText("".join(c if PREDICTOR_NAME.fullmatch(c) else "-" for c in name))

    def _problem(self) -> str | None:
        if self._session is None:
            return "no project open"
        if self.chosen_source() is None:
            return "import a HAT latency table or measure latency first"
        if not PREDICTOR_NAME.fullmatch(self.name_edit.text()):
            return "name: letters, digits, '.', '-', '_'"
        return None

    def _update_button(self) -> None:
        problem = self._problem()
        self.train_button.setEnabled(problem is None)
        self.train_button.setToolTip(problem or "Fit a latency predictor as a job")

    def train(self) -> int | None:
        """Queue the fit of a predictor on the chosen source; returns its job id."""
        if self._problem() is not None:
            return None
        name = self.name_edit.text()
        job_id = self._session.submit(
            JOB_KIND,
            f"fit latency predictor '{name}'",
            latency_predictor_job,
            name=name,
            seed=self.seed_spin.value(),
            steps=self.steps_spin.value(),
            learning_rate=self.rate_spin.value(),
            **self.chosen_source(),
        )
        self._started[job_id] = name
        self.state_label.setText(f"'{name}' queued")
        return job_id

    def _on_job_event(self, event: JobEvent) -> None:
        name = self._started.get(event.job_id)
        if event.kind == "state" and event.state.finished and name is None:
            self._fill_sources()  # an import or a measurement may have added one
            return
        if name is None or event.kind == "log":
            return
        if event.kind == "partial":  # the predictor is stored
            self._fill_predictors(name)
            self.status.emit(f"latency predictor '{name}' stored")
        elif event.kind == "state" and event.state.finished:
            del self._started[event.job_id]
            self.state_label.setText(f"'{name}': {event.state.value}")
            if event.payload:  # the error
                show_error(self, "Latency predictor not fitted", f"{name}: {event.payload}")
        else:
            self.state_label.setText(f"'{name}': {event.progress:.0%} {event.message}")

    # --- the scatter --------------------------------------------------------------------------

    def _show_predictor(self) -> None:
        predictor = self._predictors.get(self.chosen_predictor() or "")
        rows = predictor.held_out_rows if predictor else None
        if rows is None:
            self._scatter.setData([], [])
            self._diagonal.setData([], [])
            self.scores_label.setText("")
            return
        self._scatter.setData(rows.measured_ms, rows.predicted_ms)
        both = np.concatenate([rows.measured_ms, rows.predicted_ms])
        self._diagonal.setData([both.min(), both.max()], [both.min(), both.max()])
        self.scores_label.setText(_scores_text(predictor))

    def scatter_points(self) -> tuple[np.ndarray, np.ndarray]:
        """The points drawn: measured and predicted ms."""
        x, y = self._scatter.getData()
        return np.asarray(x), np.asarray(y)

    def diagonal(self) -> tuple[np.ndarray, np.ndarray]:
        x, y = self._diagonal.getData()
        return np.asarray(x), np.asarray(y)


def _column(*widgets: QWidget) -> QWidget:
    """Widgets one above the other, the second taking the height left."""
    column = QWidget()
    layout = QVBoxLayout(column)
    layout.setContentsMargins(0, 0, 0, 0)
    for index, widget in enumerate(widgets):
        layout.addWidget(widget, 1 if index == 1 else 0)
    return column


def _scores_text(predictor: LatencyPredictor) -> str:
    scores = predictor.held_out
    parts = [
        f"<b>{html.escape(predictor.name)}</b> on {html.escape(predictor.trained_on)}",
        f"held-out MAPE <b>{scores.mape:.2f} %</b>",
        f"Kendall τ <b>{scores.tau:.3f}</b>",
        f"{scores.rows} rows (y = x dashed)",
    ]
    return ", ".join(parts)
