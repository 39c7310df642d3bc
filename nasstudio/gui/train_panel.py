"""The Train panel: train the selected architectures on a corpus and watch their loss and BLEU
live, measure their latency, train the task's weight-sharing supernet.

Every run is a job, submitted at once to the window's runner with its device (or the Ray
cluster) as the resource: a run waiting for its device is a queued job, in the store, the Jobs
panel and the CLI alike. The run list shows the project's training, supernet and latency jobs,
read from the store and followed through job events; a run's curves are its stored curve
points (``Project.curve``) and those that arrive while it runs, so a reopened project still
shows its past runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QAction, QColor, QIcon, QKeySequence, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDockWidget,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from nasstudio.data.spec import task_name
from nasstudio.gui.dialogs import show_error
from nasstudio.gui.session import ProjectSession
from nasstudio.gui.settings import remembered_splitter
from nasstudio.gui.train_curves import RunCurves
from nasstudio.gui.train_form import TrainDialog, TrainForm
from nasstudio.gui.view_state import ViewState
from nasstudio.jobs import JobEvent, JobState
from nasstudio.jobs.latency import latency_job
from nasstudio.jobs.model import JobFunction
from nasstudio.jobs.records import CurvePoint, NewArchitectures
from nasstudio.metrics.latency import device_name
from nasstudio.store import BLEU_VALID, LATENCY_MS, JobRecord
from nasstudio.train.job import TRAINED_SOURCE, train_job
from nasstudio.train.supernet import supernet_train_job

SPLITTER_KEY = "train/splitter"
RUN_KINDS = ("train", "supernet", "latency")
CURVE_KINDS = ("train", "supernet")
SHOWN_ON_OPEN = 4  # past runs whose curves are drawn when a project opens
RUN, STATE, STEP, TRAIN_LOSS, VALID_LOSS, BLEU = range(6)
_HEADERS = ("Run", "State", "Step", "Loss", "Valid loss", "BLEU")
_FIGURES = {TRAIN_LOSS: "train_loss", VALID_LOSS: "valid_loss", BLEU: "valid_bleu"}
_STATE_COLORS = {
    JobState.QUEUED.value: QColor("#1f5fa8"),
    JobState.FAILED.value: QColor("#b00020"),
    JobState.CANCELLED.value: QColor("#777777"),
    JobState.INTERRUPTED.value: QColor("#b35c00"),
    JobState.DONE.value: QColor("#1b7a1b"),
}
_RERUNNABLE = (JobState.INTERRUPTED.value, JobState.FAILED.value, JobState.CANCELLED.value)


@dataclass
class Run:
    """A training, supernet or latency job as the run list shows it."""

    job_id: int
    kind: str
    title: str
    label: str  # in the run list and the legend
    device: str
    task: str  # the task it was started from
    result_task: str  # where its results are recorded
    arch_ids: list[str]
    state: str
    progress: float = 0.0
    message: str = ""
    can_rerun: bool = False  # its function and parameters are in the store
    figures: dict[str, float] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return JobState(self.state).finished

    @classmethod
    def of(cls, record: JobRecord, label: str) -> Run:
        params = record.params
        task = params.get("task", "")
        corpus = params.get("corpus")
        return cls(
            job_id=record.id,
            kind=record.kind,
            title=record.title,
            label=label,
            device=params.get("device", "cpu"),
            task=task,
            result_task=task_name(corpus) if record.kind == "train" and corpus else task,
            arch_ids=[params["arch_id"]] if "arch_id" in params else params.get("arch_ids", []),
            state=record.state,
            progress=record.progress,
            message=record.message or "",
            can_rerun=bool(record.function),
        )


def run_label(record: JobRecord) -> str:
    params = record.params
    if record.kind == "train":
        return params.get("arch_id", record.title)
    if record.kind == "supernet":
        return f"supernet · {params.get('task', '')}"
    return f"latency · {len(params.get('arch_ids', []))} arch · {params.get('device', 'cpu')}"


class TrainPanel(QWidget):
    """Settings, the run list and the curves. It binds to the view state (task, selection,
    axes) and submits to the session's runner; the window puts its actions in a menu."""

    status = Signal(str)  # a message for the status bar
    pick_requested = Signal(int)  # select this many of the table's rows at random

    def __init__(
        self, qsettings: QSettings, view: ViewState, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._settings = qsettings
        self._view = view
        self._session: ProjectSession | None = None
        self._runs: dict[int, Run] = {}  # by job id
        self._items: dict[int, QTreeWidgetItem] = {}
        self._loaded: set[int] = set()  # runs whose stored curve points are drawn
        self._started: set[int] = set()  # queued from this window: results followed, errors shown
        self._errors_shown: set[str] = set()
        self.form = TrainForm(qsettings)
        self.curves = RunCurves()
        self.runs = self._make_run_list()
        self._build_actions()
        self._build_layout()
        view.events.selection.connect(self._show_selection)
        view.events.task.connect(self._show_selection)
        view.events.task.connect(self._show_source)
        self._show_selection()

    # --- construction -------------------------------------------------------------------------

    def _action(self, text: str, slot: Callable[[], object], shortcut: str, tip: str) -> QAction:
        action = QAction(text, self, shortcut=QKeySequence(shortcut), statusTip=tip)
        action.setToolTip(f"{tip} ({action.shortcut().toString()})")
        action.triggered.connect(slot)
        return action

    def _build_actions(self) -> None:
        self.train_action = self._action(
            "&Train selected…",
            self.open_train_dialog,
            "Ctrl+T",
            "Choose the corpus, device and budget, then train each selected architecture; "
            "runs wait in their device's queue",
        )
        self.latency_action = self._action(
            "Measure &latency",
            self.measure_latency,
            "Ctrl+Shift+L",
            "Measure the selected architectures' latency on the device (HAT's protocol, "
            "random weights, no training)",
        )
        self.supernet_action = self._action(
            "Train &supernet",
            self.train_supernet,
            "Ctrl+Shift+T",
            "Train the weight-sharing SuperTransformer of the task's search space on the corpus",
        )
        self.cancel_action = self._action(
            "&Cancel runs",
            self.cancel_selected_runs,
            "Ctrl+Shift+K",
            "Cancel the runs selected in the run list; a training keeps its checkpoint",
        )

    def _make_run_list(self) -> QTreeWidget:
        tree = QTreeWidget()
        tree.setHeaderLabels(_HEADERS)
        tree.setRootIsDecorated(False)
        tree.setUniformRowHeights(True)
        tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        tree.setToolTip(
            "Training, supernet and latency runs of the project: tick a run to draw its "
            "curves; double-click to select its architectures in the table"
        )
        header = tree.header()
        header.setStretchLastSection(False)
        header.setMinimumSectionSize(40)
        for column in range(len(_HEADERS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        tree.itemChanged.connect(self._on_item_changed)
        tree.itemDoubleClicked.connect(self._select_architectures)
        tree.itemSelectionChanged.connect(self._update_buttons)
        return tree

    def _build_layout(self) -> None:
        self.selection_label = QLabel(wordWrap=True)
        self.pick_spin = QSpinBox(minimum=1, maximum=10_000, value=5)
        self.pick_spin.setToolTip("How many architectures to pick at random")
        pick = QPushButton("Pick at random")
        pick.setToolTip(
            "Select this many architectures at random among the rows the table shows "
            "(filter the table first to narrow the pool)"
        )
        pick.clicked.connect(lambda: self.pick_requested.emit(self.pick_spin.value()))
        pick_row = QHBoxLayout()
        pick_row.addWidget(self.pick_spin)
        pick_row.addWidget(pick, 1)
        settings = QWidget()
        column = QVBoxLayout(settings)
        column.addWidget(self.selection_label)
        column.addLayout(pick_row)
        column.addWidget(self.form, 1)
        scroll = QScrollArea(widgetResizable=True)
        scroll.setWidget(settings)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(settings.sizeHint().width() + 20)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(scroll, 1)
        left_layout.addLayout(self._buttons(self.train_action, self.latency_action))
        left_layout.addLayout(self._buttons(self.supernet_action))
        self.cancel_button = QPushButton("Cancel", toolTip=self.cancel_action.toolTip())
        self.cancel_button.clicked.connect(self.cancel_selected_runs)
        self.rerun_button = QPushButton("Run again")
        self.rerun_button.setToolTip(
            "Start the selected interrupted, failed or cancelled runs again with their "
            "settings; a training resumes from its checkpoint"
        )
        self.rerun_button.clicked.connect(self.rerun_selected_runs)
        self.clear_button = QPushButton("Clear finished")
        self.clear_button.setToolTip("Remove the finished runs from the list and the plots")
        self.clear_button.clicked.connect(self.clear_finished)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.runs, 1)
        row = QHBoxLayout()
        row.addWidget(self.cancel_button)
        row.addWidget(self.rerun_button)
        row.addWidget(self.clear_button)
        right_layout.addLayout(row)
        self.splitter = remembered_splitter(
            self._settings, SPLITTER_KEY, ((left, 0), (self.curves, 1), (right, 0)), [340, 600, 420]
        )
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.splitter)
        self._update_buttons()

    @staticmethod
    def _buttons(*actions: QAction) -> QHBoxLayout:
        row = QHBoxLayout()
        for action in actions:
            button = QToolButton()
            button.setDefaultAction(action)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            row.addWidget(button)
        return row

    # --- the project --------------------------------------------------------------------------

    def set_session(self, session: ProjectSession | None) -> None:
        """Show the runs of another project (the old one's jobs ended with its session)."""
        for job_id in list(self._runs):
            self._forget(job_id)
        self._session = session
        self._started.clear()
        self._show_source()
        if session is None:
            return
        session.bridge.job_event.connect(self._on_job_event)
        session.bridge.submitted.connect(self._on_submitted)
        records = [r for r in session.project.jobs() if r.kind in RUN_KINDS]
        drawn = {r.id for r in records if r.kind in CURVE_KINDS}
        drawn = set(sorted(drawn)[-SHOWN_ON_OPEN:])
        for record in records:
            self._add_run(record, shown=record.id in drawn)

    def show_records(self, records: list[JobRecord]) -> None:
        """Job rows that changed in the store without an event here (another process's runs):
        new runs join the list, known ones take the stored state and curves."""
        for record in records:
            if record.kind not in RUN_KINDS:
                continue
            run = self._runs.get(record.id)
            if run is None:
                self._add_run(record, shown=not JobState(record.state).finished)
                continue
            run.state, run.progress = record.state, record.progress
            run.message = record.message or run.message
            if record.id in self._loaded:
                self._load_curve(run)
            self._update_item(run)

    # --- actions ------------------------------------------------------------------------------

    def open_train_dialog(self) -> TrainDialog:
        """Train selected: the form before the runs, with the panel's settings; Train queues
        them with the settings chosen there, which the panel then shows too."""
        project = self._session.project if self._session else None
        dialog = TrainDialog(
            self._settings, project, self._view.task, list(self._view.selection), self
        )
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self._train_from(dialog))
        dialog.open()
        return dialog

    def _train_from(self, dialog: TrainDialog) -> None:
        self.form.set_values(dialog.form.values())
        self.train_selected()

    def train_selected(self) -> list[Run]:
        """Queue one training per selected architecture with the panel's settings; returns
        the runs."""
        ids = list(self._view.selection)
        if not ids:
            self._tell("Select architectures in the table first (or Pick at random)")
            return []
        settings = self._checked_settings()
        if settings is None:
            return []
        corpus, config = settings
        runs = []
        for arch_id in ids:
            run = self._submit(
                "train",
                f"Train {arch_id} on {_corpus_text(corpus)}",
                train_job,
                arch_id=arch_id,
                corpus=corpus,
                config=config,
                vocab_size=self.form.vocab_size(),
                vocab_type=self.form.vocab_type(),
            )
            if run is None:
                break
            runs.append(run)
        if runs:
            self._tell(f"Queued {len(runs)} training run(s) on {self.form.device()}")
        return runs

    def measure_latency(self) -> Run | None:
        """Measure the latency of the selected architectures, as one run."""
        ids = list(self._view.selection)
        if not ids or self._session is None:
            self._tell("Select architectures in the table first (or Pick at random)")
            return None
        device = self.form.device()
        return self._submit(
            "latency",
            f"Latency of {len(ids)} architecture(s) on {device}",
            latency_job,
            arch_ids=ids,
            beam=self.form.latency_beam.value(),
            repeats=self.form.latency_repeats.value(),
        )

    def train_supernet(self) -> Run | None:
        """Train the current task's supernet on the corpus, with the recipe's SuperTransformer
        values where the form holds its SubTransformers' (``TrainForm.supernet_config``)."""
        settings = self._checked_settings()
        if settings is None:
            return None
        corpus, _ = settings
        return self._submit(
            "supernet",
            f"Train the supernet of {self._view.task} on {_corpus_text(corpus)}",
            supernet_train_job,
            corpus=corpus,
            config=self.form.supernet_config(),
            vocab_size=self.form.vocab_size(),
            vocab_type=self.form.vocab_type(),
        )

    def cancel_selected_runs(self) -> None:
        for item in self.runs.selectedItems():
            self.cancel(self._run_of(item).job_id)

    def cancel(self, job_id: int) -> None:
        """Cancel a run: a queued one never starts, a running one is asked to stop."""
        run = self._runs[job_id]
        if self._session is not None and not run.finished and job_id in self._started:
            self._session.cancel(job_id)
            run.message = "cancelling…"
            self._update_item(run)

    def rerun_selected_runs(self) -> list[int]:
        """Queue the selected interrupted, failed or cancelled runs again; their new job ids."""
        selected = [self._run_of(item) for item in self.runs.selectedItems()]
        if self._session is None:
            return []
        return [
            self._session.rerun(run.job_id)
            for run in selected
            if run.state in _RERUNNABLE and run.can_rerun
        ]

    def clear_finished(self) -> None:
        for run in [r for r in self._runs.values() if r.finished]:
            self._forget(run.job_id)

    # --- queries (for tests and tools) --------------------------------------------------------

    def run_list(self) -> list[Run]:
        return list(self._runs.values())

    # --- running ------------------------------------------------------------------------------

    def _checked_settings(self) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The corpus spec and training config, or None after showing why they are unusable."""
        if self._session is None or self._view.task is None:
            self._tell("Open a project with a task first")
            return None
        problem = self.form.problem()
        if problem is not None:
            self._error(*problem)
            return None
        return self.form.corpus_spec(), self.form.config()

    def _submit(self, kind: str, title: str, fn: JobFunction, **params: Any) -> Run | None:
        """Queue the job in the runner, in its device's queue (or the Ray cluster's)."""
        device, executor = self.form.device(), self.form.executor()
        resource = device
        if executor == "ray":
            try:
                self._session.use_ray(self.form.ray_address(), self.form.ray_storage())
            except ImportError as exc:
                self._error("Ray is not available", f"{exc}\nInstall nasstudio[ray].")
                return None
            resource = "ray"
        self._errors_shown.clear()  # a new attempt may fail again: say so again
        job_id = self._session.submit(
            kind,
            title,
            fn,
            executor=executor,
            resource=resource,
            task=self._view.task,
            device=device,
            **params,
        )
        return self._runs[job_id]

    def _on_submitted(self, job_id: int) -> None:
        """A job queued from this window (here, or Run again in the jobs panel)."""
        record = self._session.project.job(job_id)
        if record.kind in RUN_KINDS:
            self._started.add(job_id)
            self._add_run(record, shown=True)
            self._show_dock()

    def _on_job_event(self, event: JobEvent) -> None:
        run = self._runs.get(event.job_id)
        if run is None or event.kind == "log":
            return
        point = event.payload
        if event.kind == "partial" and isinstance(point, list):
            # The task the run's results go to, as the run decided it.
            tasks = [r.task for r in point if isinstance(r, NewArchitectures)]
            run.result_task = tasks[0] if tasks else run.result_task
        if event.kind == "partial" and isinstance(point, CurvePoint) and run.job_id in self._loaded:
            report = {**point.values, "step": point.step}
            self.curves.append(run.job_id, [report])
            _note_figures(run, report)
        run.state, run.progress = event.state.value, event.progress
        run.message = event.message or run.message
        self._update_item(run)
        if event.kind == "state" and event.state.finished:
            self._report(run, event)

    def _load_curve(self, run: Run) -> None:
        points = self._session.project.curve(run.job_id)
        self.curves.set_points(run.job_id, points)
        run.figures.clear()
        for point in points:
            _note_figures(run, point)
        self._loaded.add(run.job_id)

    # --- results ------------------------------------------------------------------------------

    def _report(self, run: Run, event: JobEvent) -> None:
        if run.job_id not in self._started:
            return
        if event.state == JobState.FAILED:
            self._show_failure(run, str(event.payload or event.message))
        elif event.state == JobState.CANCELLED and run.kind != "latency":
            self._tell(f"{run.title}: cancelled; its checkpoint is kept and Run again resumes it")
        elif event.state == JobState.DONE and run.kind == "train":
            self._show_trained(run)
        elif event.state == JobState.DONE and run.kind == "latency":
            self._show_latency(run)
        else:
            self._tell(f"{run.title}: {event.state.value} · {event.message}")

    def _show_failure(self, run: Run, error: str) -> None:
        # Queued runs of one setting often fail alike (a bad corpus line): one box says it.
        if error not in self._errors_shown:
            self._errors_shown.add(error)
            self._error(f"{run.title} failed", error)

    def _show_trained(self, run: Run) -> None:
        """Bring the run's BLEU into view: its task, and its BLEU column on the y axis."""
        # Follow the results to their task, unless the user went elsewhere meanwhile.
        if self._view.task == run.task:
            self._view.task = run.result_task
        if self._view.task == run.result_task:
            self._view.y_axis = self._bleu_column(run)
        self._tell(f"{run.label} trained: {run.message} (task {run.result_task})")

    def _bleu_column(self, run: Run) -> str:
        """The column of the run's validation BLEU: a task whose BLEU was first scored on other
        sentences (imported from a paper, say) shows it in a column of its own test set."""
        project = self._session.project
        scored = [
            m
            for m in project.measurements(run.arch_ids[0], run.result_task)
            if m.metric == BLEU_VALID and m.source == TRAINED_SOURCE
        ]
        return project.column_of(scored[-1]) if scored else BLEU_VALID

    def _show_latency(self, run: Run) -> None:
        if self._view.task == run.task:
            self._view.x_axis = f"{LATENCY_MS}@{device_name(run.device)}"
        self._tell(f"{run.title}: {run.message}")

    # --- the run list -------------------------------------------------------------------------

    def _add_run(self, record: JobRecord, shown: bool) -> None:
        label = run_label(record)
        if label in {r.label for r in self._runs.values()}:
            label = f"{label} (#{record.id})"
        run = self._runs[record.id] = Run.of(record, label)
        item = QTreeWidgetItem([run.label])
        item.setData(RUN, Qt.ItemDataRole.UserRole, run.job_id)
        self._items[run.job_id] = item
        if run.kind in CURVE_KINDS:
            color = self.curves.add_run(run.job_id, run.label)
            swatch = QPixmap(12, 12)
            swatch.fill(color)
            item.setIcon(RUN, QIcon(swatch))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(RUN, Qt.CheckState.Checked if shown else Qt.CheckState.Unchecked)
            if shown:
                self._load_curve(run)
            else:
                self.curves.set_shown(run.job_id, False)
        self.runs.addTopLevelItem(item)
        self._update_item(run)

    def _update_item(self, run: Run) -> None:
        item = self._items.get(run.job_id)
        if item is None:
            return
        self.runs.blockSignals(True)  # itemChanged means a tick by the user
        running = run.state == JobState.RUNNING.value
        item.setText(STATE, f"{run.state} {run.progress:.0%}" if running else run.state)
        item.setForeground(STATE, _STATE_COLORS.get(run.state, QColor("#000000")))
        if "step" in run.figures:
            item.setText(STEP, f"{run.figures['step']:,}")
        for column, key in _FIGURES.items():
            if key in run.figures:
                digits = 2 if key == "valid_bleu" else 3
                item.setText(column, f"{run.figures[key]:.{digits}f}")
        tip = f"{run.title}\njob {run.job_id} · device {run.device}\n{run.message}"
        for column in range(len(_HEADERS)):
            item.setToolTip(column, tip)
        self.runs.blockSignals(False)
        self._update_buttons()

    def _on_item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if column != RUN:
            return
        run = self._run_of(item)
        shown = item.checkState(RUN) == Qt.CheckState.Checked
        if shown and run.job_id not in self._loaded:
            self._load_curve(run)
        self.curves.set_shown(run.job_id, shown)

    def _run_of(self, item: QTreeWidgetItem) -> Run:
        return self._runs[item.data(RUN, Qt.ItemDataRole.UserRole)]

    def _select_architectures(self, item: QTreeWidgetItem) -> None:
        run = self._run_of(item)
        if not run.arch_ids:
            return
        self._view.selection = run.arch_ids
        if not set(run.arch_ids) & set(self._view.selection):
            self._tell("Its architectures are not in the table (another task, or filtered out)")

    def _update_buttons(self) -> None:
        selected = [self._run_of(item) for item in self.runs.selectedItems()]
        self.cancel_button.setEnabled(
            any(not r.finished and r.job_id in self._started for r in selected)
        )
        self.cancel_action.setEnabled(self.cancel_button.isEnabled())
        self.rerun_button.setEnabled(any(r.state in _RERUNNABLE and r.can_rerun for r in selected))
        self.clear_button.setEnabled(any(run.finished for run in self._runs.values()))

    def _forget(self, job_id: int) -> None:
        item = self._items.pop(job_id)
        self.runs.takeTopLevelItem(self.runs.indexOfTopLevelItem(item))
        if self.curves.has_run(job_id):
            self.curves.remove(job_id)
        del self._runs[job_id]
        self._loaded.discard(job_id)
        self._update_buttons()

    # --- around -------------------------------------------------------------------------------

    def _show_selection(self, _: object = None) -> None:
        task = self._view.task or "no task"
        count = len(self._view.selection)
        self.selection_label.setText(f"<b>{count:,}</b> architecture(s) selected in {task}")

    def _show_source(self, _: object = None) -> None:
        """The form names the task results go to, which the shown task decides."""
        project = self._session.project if self._session else None
        self.form.set_source(project, self._view.task)

    def _show_dock(self) -> None:
        dock = self.parentWidget()
        if isinstance(dock, QDockWidget):
            dock.show()
            dock.raise_()

    def _error(self, title: str, message: str) -> None:
        show_error(self, title, message)

    def _tell(self, message: str) -> None:
        self.status.emit(message)


def _note_figures(run: Run, report: Mapping[str, Any]) -> None:
    """Keep a run's latest step, loss and BLEU for its row."""
    run.figures["step"] = report["step"]
    run.figures.update(
        {k: v for k, v in report.items() if k in _FIGURES.values() and v is not None}
    )


def _corpus_text(spec: Mapping[str, Any]) -> str:
    if spec["kind"] == "demo":
        return "the synthetic demo pair"
    return f"{spec['path']} ({spec['src']}→{spec['tgt']})"
