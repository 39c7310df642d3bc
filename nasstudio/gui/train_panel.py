"""The Train panel: train the browser's selected architectures on a corpus and watch their loss
and BLEU live, measure their latency, train the task's weight-sharing supernet.

Runs on one device go one at a time (``DeviceQueue``): two trainings sharing a CPU each run at
half speed, and a latency measured beside a training measures the contention. The runs waiting
for their device are listed here only; the jobs panel shows them once they start.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QByteArray, Qt
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
    QSplitter,
    QToolBar,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from nasstudio.data.corpus import CorpusError
from nasstudio.data.spec import task_name
from nasstudio.gui.train_curves import RunCurves
from nasstudio.gui.train_form import TrainForm
from nasstudio.jobs import JobEvent, JobState
from nasstudio.jobs.latency import latency_job
from nasstudio.jobs.model import JobFunction
from nasstudio.metrics.latency import device_name
from nasstudio.store import BLEU_VALID, LATENCY_MS
from nasstudio.train.job import train_job
from nasstudio.train.supernet import supernet_train_job

if TYPE_CHECKING:
    from nasstudio.gui.main_window import MainWindow

SPLITTER_KEY = "train/splitter"
WAITING = "waiting"  # for its device, not submitted yet
RUN, STATE, STEP, TRAIN_LOSS, VALID_LOSS, BLEU = range(6)
_HEADERS = ("Run", "State", "Step", "Loss", "Valid loss", "BLEU")
_FIGURES = {TRAIN_LOSS: "train_loss", VALID_LOSS: "valid_loss", BLEU: "valid_bleu"}
_STATE_COLORS = {
    JobState.FAILED.value: QColor("#b00020"),
    JobState.CANCELLED.value: QColor("#777777"),
    JobState.DONE.value: QColor("#1b7a1b"),
}


@dataclass
class Run:
    """One job the panel started or will start: a training, a supernet or a latency batch."""

    key: int
    kind: str  # "train", "supernet" or "latency"
    title: str
    label: str  # in the run list and the legend
    device: str
    task: str  # the task it was started from
    result_task: str  # where its results are recorded
    arch_ids: list[str]
    fn: JobFunction
    params: dict[str, Any]
    job_id: int | None = None
    state: str = WAITING
    progress: float = 0.0
    message: str = ""
    figures: dict[str, float] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.state not in (WAITING, JobState.QUEUED.value, JobState.RUNNING.value)


class DeviceQueue:
    """Starts one run per device and the next one when it ends."""

    def __init__(self, start: Callable[[Run], None]) -> None:
        self._start = start
        self._waiting: dict[str, deque[Run]] = {}
        self._busy: dict[str, Run] = {}

    def add(self, run: Run) -> None:
        self._waiting.setdefault(run.device, deque()).append(run)
        self._next(run.device)

    def finished(self, run: Run) -> None:
        if self._busy.get(run.device) is run:
            del self._busy[run.device]
            self._next(run.device)

    def drop(self, run: Run) -> bool:
        """Remove a run that is still waiting; False when it already started."""
        waiting = self._waiting.get(run.device, deque())
        if run in waiting:
            waiting.remove(run)
            return True
        return False

    def clear(self) -> None:
        self._waiting.clear()
        self._busy.clear()

    def _next(self, device: str) -> None:
        waiting = self._waiting.get(device)
        if device not in self._busy and waiting:
            run = self._busy[device] = waiting.popleft()
            self._start(run)


class TrainPanel(QWidget):
    """Settings, the run list and the live curves; the actions live in the window's Train menu."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.main = window  # not self.window: that is QWidget.window()
        self._runs: dict[int, Run] = {}
        self._by_job: dict[int, Run] = {}
        self._items: dict[int, QTreeWidgetItem] = {}
        self._errors_shown: set[str] = set()
        self.queue = DeviceQueue(self._start)
        self.form = TrainForm(window.settings)
        self.curves = RunCurves()
        self.runs = self._make_run_list()
        self._build_actions()
        self._build_layout()
        window.browser.selection_changed.connect(self._show_selection)
        window.project_opened.connect(self._on_project_opened)
        self._show_selection(window.browser.selected_ids())

    # --- construction -------------------------------------------------------------------------

    def _action(self, text: str, slot: Callable[[], object], shortcut: str, tip: str) -> QAction:
        action = QAction(text, self.main, shortcut=QKeySequence(shortcut), statusTip=tip)
        action.setToolTip(f"{tip} ({action.shortcut().toString()})")
        action.triggered.connect(slot)
        return action

    def _build_actions(self) -> None:
        self.train_action = self._action(
            "&Train selected",
            self.train_selected,
            "Ctrl+T",
            "Train each selected architecture on the corpus, one after another per device",
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
            "Runs started here: tick a run to draw its curves; double-click to select its "
            "architectures in the table"
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
        pick.clicked.connect(self.pick_random)
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
        self.clear_button = QPushButton("Clear finished")
        self.clear_button.setToolTip("Remove the finished runs from the list and the plots")
        self.clear_button.clicked.connect(self.clear_finished)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.runs, 1)
        row = QHBoxLayout()
        row.addWidget(self.cancel_button)
        row.addWidget(self.clear_button)
        right_layout.addLayout(row)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        for widget, stretch in ((left, 0), (self.curves, 1), (right, 0)):
            self.splitter.addWidget(widget)
            self.splitter.setStretchFactor(self.splitter.count() - 1, stretch)
        self._restore_splitter()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.splitter)
        self._update_buttons()

    def _restore_splitter(self) -> None:
        state = self.main.settings.value(SPLITTER_KEY)
        if not (isinstance(state, QByteArray) and self.splitter.restoreState(state)):
            self.splitter.setSizes([340, 700, 480])
        self.splitter.splitterMoved.connect(
            lambda *_: self.main.settings.setValue(SPLITTER_KEY, self.splitter.saveState())
        )

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

    # --- actions ------------------------------------------------------------------------------

    def train_selected(self) -> list[Run]:
        """Queue one training per selected architecture; returns the runs."""
        ids = self.main.browser.selected_ids()
        if not ids:
            self._tell("Select architectures in the table first (or Pick at random)")
            return []
        settings = self._checked_settings()
        if settings is None:
            return []
        corpus, config = settings
        runs = [
            self._queue(
                "train",
                f"Train {arch_id} on {_corpus_text(corpus)}",
                self._unique_label(arch_id),
                [arch_id],
                train_job,
                arch_id=arch_id,
                corpus=corpus,
                config=config,
                vocab_size=self.form.vocab_size(),
                vocab_type=self.form.vocab_type(),
            )
            for arch_id in ids
        ]
        self._tell(f"Queued {len(runs)} training run(s) on {self.form.device()}")
        return runs

    def measure_latency(self) -> Run | None:
        """Measure the latency of the selected architectures, as one run."""
        ids = self.main.browser.selected_ids()
        if not ids or self.main.session is None:
            self._tell("Select architectures in the table first (or Pick at random)")
            return None
        device = self.form.device()
        return self._queue(
            "latency",
            f"Latency of {len(ids)} architecture(s) on {device}",
            f"latency · {len(ids)} arch · {device}",
            ids,
            latency_job,
            arch_ids=ids,
            beam=self.form.latency_beam.value(),
            repeats=self.form.latency_repeats.value(),
        )

    def train_supernet(self) -> Run | None:
        """Train the current task's supernet on the corpus."""
        settings = self._checked_settings()
        if settings is None:
            return None
        corpus, config = settings
        task = self.main.current_task()
        return self._queue(
            "supernet",
            f"Train the supernet of {task} on {_corpus_text(corpus)}",
            self._unique_label(f"supernet · {task}"),
            [],
            supernet_train_job,
            corpus=corpus,
            config=config,
            vocab_size=self.form.vocab_size(),
            vocab_type=self.form.vocab_type(),
        )

    def pick_random(self) -> None:
        """Select ``pick_spin`` random rows among those the table shows."""
        browser = self.main.browser
        pool = browser.model.ids_at(browser.proxy.visible_source_rows())
        browser.select_ids(random.sample(pool, min(self.pick_spin.value(), len(pool))))

    def cancel_selected_runs(self) -> None:
        for item in self.runs.selectedItems():
            self.cancel(self._run_of(item).key)

    def cancel(self, key: int) -> None:
        """Cancel a run: one still waiting never starts, a job is asked to stop."""
        run = self._runs[key]
        if self.queue.drop(run):
            run.state = JobState.CANCELLED.value
            run.message = "cancelled before it started"
        elif run.job_id is not None and not run.finished:
            self.main.cancel_job(run.job_id)
            run.message = "cancelling…"
        self._update_item(run)

    def clear_finished(self) -> None:
        for run in [r for r in self._runs.values() if r.finished]:
            self._forget(run)

    # --- queries (for tests and tools) --------------------------------------------------------

    def run_list(self) -> list[Run]:
        return list(self._runs.values())

    # --- running ------------------------------------------------------------------------------

    def _checked_settings(self) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The corpus spec and training config, or None after showing why they are unusable."""
        if self.main.session is None or self.main.current_task() is None:
            self._tell("Open a project with a task first")
            return None
        try:
            self.form.check_corpus()
            return self.form.corpus_spec(), self.form.config()
        except CorpusError as exc:
            self._error("Corpus not usable", str(exc))
        except ValueError as exc:
            self._error("Training settings not usable", str(exc))
        return None

    def _queue(
        self,
        kind: str,
        title: str,
        label: str,
        archs: list[str],
        fn: JobFunction,
        **params: Any,
    ) -> Run:
        task = self.main.current_task()
        device = self.form.device()
        corpus = params.get("corpus")
        run = Run(
            key=max(self._runs, default=0) + 1,
            kind=kind,
            title=title,
            label=label,
            device=device,
            task=task,
            result_task=task_name(corpus) if kind == "train" else task,
            arch_ids=archs,
            fn=fn,
            params={"task": task, "device": device, **params},
        )
        self._runs[run.key] = run
        self._add_item(run)
        self._errors_shown.clear()  # a new attempt may fail again: say so again
        self._show_dock()
        self.queue.add(run)
        return run

    def _start(self, run: Run) -> None:
        session = self.main.session
        run.job_id = session.submit(run.kind, run.title, run.fn, **run.params)
        run.state = JobState.QUEUED.value
        self._by_job[run.job_id] = run
        self.main.jobs.track(run.job_id)
        self._update_item(run)

    def _on_job_event(self, event: JobEvent) -> None:
        run = self._by_job.get(event.job_id)
        if run is None or run.finished or event.kind == "log":
            return
        if event.kind == "partial" and isinstance(event.payload, Mapping):
            self._add_figures(run, event.payload)
        run.state, run.progress = event.state.value, event.progress
        run.message = event.message or run.message
        self._update_item(run)
        if event.kind == "state" and event.state.finished:
            self.queue.finished(run)
            self._report(run, event)

    def _add_figures(self, run: Run, report: Mapping[str, Any]) -> None:
        if "step" not in report or not self.curves.has_run(run.key):
            return
        self.curves.append(run.key, report)
        run.figures["step"] = report["step"]
        run.figures.update(
            {k: v for k, v in report.items() if k in _FIGURES.values() and v is not None}
        )

    # --- results ------------------------------------------------------------------------------

    def _report(self, run: Run, event: JobEvent) -> None:
        if event.state == JobState.FAILED:
            self._show_failure(run, str(event.payload or event.message))
        elif event.state == JobState.CANCELLED and run.kind != "latency":
            self._tell(
                f"{run.title}: cancelled; its checkpoint is kept and the same setting resumes"
            )
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
        window = self.main
        # Follow the results to their task, unless the user went elsewhere meanwhile.
        if window.current_task() == run.task and run.result_task != run.task:
            index = window.task_combo.findData(run.result_task)
            if index >= 0:
                window.task_combo.setCurrentIndex(index)
        showing = window.current_task() == run.result_task
        if showing and window.pareto.axes()[1] != BLEU_VALID:
            window.pareto.set_axes(None, BLEU_VALID)
        window.reload()
        self._tell(f"{run.label} trained: {run.message} (task {run.result_task})")

    def _show_latency(self, run: Run) -> None:
        key = f"{LATENCY_MS}@{device_name(run.device)}"
        if self.main.current_task() == run.task and self.main.pareto.axes()[0] != key:
            self.main.pareto.set_axes(key, None)
        self.main.reload()
        self._tell(f"{run.title}: {run.message}")

    # --- the run list -------------------------------------------------------------------------

    def _add_item(self, run: Run) -> None:
        item = QTreeWidgetItem([run.label])
        item.setData(RUN, Qt.ItemDataRole.UserRole, run.key)
        self._items[run.key] = item
        if run.kind != "latency":
            color = self.curves.add_run(run.key, run.label)
            swatch = QPixmap(12, 12)
            swatch.fill(color)
            item.setIcon(RUN, QIcon(swatch))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(RUN, Qt.CheckState.Checked)
        self.runs.addTopLevelItem(item)
        self._update_item(run)

    def _update_item(self, run: Run) -> None:
        item = self._items.get(run.key)
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
        tip = f"{run.title}\ndevice: {run.device}\n{run.message}"
        for column in range(len(_HEADERS)):
            item.setToolTip(column, tip)
        self.runs.blockSignals(False)
        self._update_buttons()

    def _on_item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if column == RUN:
            shown = item.checkState(RUN) == Qt.CheckState.Checked
            self.curves.set_shown(self._run_of(item).key, shown)

    def _run_of(self, item: QTreeWidgetItem) -> Run:
        return self._runs[item.data(RUN, Qt.ItemDataRole.UserRole)]

    def _select_architectures(self, item: QTreeWidgetItem) -> None:
        run = self._run_of(item)
        if run.arch_ids and self.main.browser.select_ids(run.arch_ids) == 0:
            self._tell("Its architectures are not in the table (another task, or filtered out)")

    def _update_buttons(self) -> None:
        selected = [self._run_of(item) for item in self.runs.selectedItems()]
        self.cancel_button.setEnabled(any(not run.finished for run in selected))
        self.cancel_action.setEnabled(self.cancel_button.isEnabled())
        self.clear_button.setEnabled(any(run.finished for run in self._runs.values()))

    def _forget(self, run: Run) -> None:
        self.runs.takeTopLevelItem(self.runs.indexOfTopLevelItem(self._items.pop(run.key)))
        if self.curves.has_run(run.key):
            self.curves.remove(run.key)
        del self._runs[run.key]
        if run.job_id is not None:
            self._by_job.pop(run.job_id, None)
        self._update_buttons()

    # --- window ---------------------------------------------------------------------------

    def _on_project_opened(self) -> None:
        """Another project: the old one's jobs were cancelled with its session."""
        for run in list(self._runs.values()):
            self._forget(run)
        self.queue.clear()
        self.main.session.bridge.event.connect(self._on_job_event)

    def _show_selection(self, ids: list[str]) -> None:
        task = self.main.current_task() or "no task"
        self.selection_label.setText(f"<b>{len(ids):,}</b> architecture(s) selected in {task}")

    def _show_dock(self) -> None:
        dock = self.parentWidget()
        if isinstance(dock, QDockWidget):
            dock.show()
            dock.raise_()

    def _error(self, title: str, message: str) -> None:
        # Imported here: main_window imports this module to install the panel.
        from nasstudio.gui.main_window import show_error

        show_error(self.main, title, message)

    def _tell(self, message: str) -> None:
        self.main.statusBar().showMessage(message, 10_000)

    def _unique_label(self, label: str) -> str:
        taken = {run.label for run in self._runs.values()}
        return label if label not in taken else f"{label} ({max(self._runs) + 1})"


def _corpus_text(spec: Mapping[str, Any]) -> str:
    if spec["kind"] == "demo":
        return "the synthetic demo pair"
    return f"{spec['path']} ({spec['src']}→{spec['tgt']})"


def install_train_ui(window: MainWindow) -> TrainPanel:
    """Add the Train panel (a dock beside the jobs), its "&Train" menu and toolbar button."""
    panel = TrainPanel(window)
    dock = QDockWidget("Train", window, objectName="train")
    dock.setWidget(panel)
    window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
    window.tabifyDockWidget(window.jobs_dock, dock)
    menu = window.menuBar().addMenu("&Train")
    menu.addActions([panel.train_action, panel.latency_action, panel.supernet_action])
    menu.addSeparator()
    menu.addAction(panel.cancel_action)
    dock_action = dock.toggleViewAction()
    dock_action.setText("Train &panel")
    menu.addAction(dock_action)
    toolbar = window.findChild(QToolBar, "main_toolbar")
    if toolbar is not None:
        toolbar.addSeparator()
        toolbar.addAction(panel.train_action)
    return panel
