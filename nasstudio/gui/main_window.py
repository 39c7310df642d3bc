"""The main window: project menu, task choice, browser and detail pane, Pareto view, jobs and
the Train panel.

The panels bind to one Qt-free ``ViewState`` (task, axes, selection) and to the session's one
``JobBridge``; none of them knows the window. Views reload what job events say changed: a
'partial' event names the tasks whose data its records changed. Writes of other processes (a
CLI job beside the window) are found by a cheap poll of ``PRAGMA data_version`` and the
tasks' revisions.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from PySide6.QtCore import QSettings, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QPushButton,
    QSplitter,
    QStyle,
    QToolBar,
)
from superqt import QElidingLabel
from superqt.utils import signals_blocked

from nasstudio.gui import settings
from nasstudio.gui.browser import BrowserPanel
from nasstudio.gui.detail import DetailPane
from nasstudio.gui.dialogs import SampleDialog, TaskDialog, ask_export_target, show_error
from nasstudio.gui.distill_panel import DistillPanel
from nasstudio.gui.jobs_panel import JobsPanel, failure_line
from nasstudio.gui.latency_panel import LatencyPanel
from nasstudio.gui.llm_actions import install_llm_ui
from nasstudio.gui.lpzero_panel import LPZeroPanel
from nasstudio.gui.pareto_view import ParetoView
from nasstudio.gui.propose_dialog import install_propose_ui
from nasstudio.gui.search_panel import SearchPanel
from nasstudio.gui.session import ProjectSession
from nasstudio.gui.table_loader import TableSnapshot
from nasstudio.gui.train_panel import TrainPanel
from nasstudio.gui.translate_dialog import TranslateDialog
from nasstudio.gui.view_state import ViewState
from nasstudio.jobs import JobEvent, JobState, sample_job
from nasstudio.jobs.files import export_job, import_job
from nasstudio.jobs.model import JobFunction
from nasstudio.store import KNOWN_TASKS, Project, SchemaError
from nasstudio.store.defaults import PROJECT_SUFFIX, data_dir, open_project
from nasstudio.store.importers import ImportReport, counted, guess_task_name
from nasstudio.train.translate import TRANSLATE_KIND, translate_job

POLL_MS = 500
FIRST_SIZE = QSize(1400, 900)  # the first window, where the screen has room for it
_LTR = Qt.LayoutDirection.LeftToRight
IMPORT_FILTER = (
    "Architecture data (*.jsonl *.jsonl.gz *.csv *.yml *.yaml);;"
    "llmas architectures (*.jsonl *.jsonl.gz);;HAT latency table (*.csv);;"
    "HAT SubTransformer YAML (*.yml *.yaml);;All files (*)"
)
PROJECT_FILTER = f"nasstudio project (*{PROJECT_SUFFIX});;All files (*)"
# The jobs the window itself starts; the Train panel and the LLM actions report their own.
_JOB_NAMES = {"import": "Import", "export": "Export", "sample": "Sampling"}


class MainWindow(QMainWindow):
    project_opened = Signal()  # after open_project replaced the session

    def __init__(self, qsettings: QSettings | None = None) -> None:
        super().__init__()
        self.settings = qsettings or QSettings()
        self.view = ViewState()
        self.session: ProjectSession | None = None
        self._follow_task: str | None = None  # switch to this task once it exists
        self.setWindowTitle("nasstudio")
        self.task_combo = QComboBox(toolTip="Task whose architectures are shown", minimumWidth=160)
        self.browser = BrowserPanel(self.view)
        self.detail = DetailPane(self.view)
        self.pareto = ParetoView(self.view)
        self.jobs = JobsPanel()
        self.train_panel = TrainPanel(self.settings, self.view)
        self.search_panel = SearchPanel(self.settings, self.view)
        self.latency_panel = LatencyPanel()
        self.distill_panel = DistillPanel(self.settings, self.view)
        self.lpzero_panel = LPZeroPanel(self.settings, self.view)
        self.path_label = QElidingLabel(elideMode=Qt.TextElideMode.ElideMiddle)
        self.counts_label = QLabel()
        self.show_task_button = QPushButton(visible=False)  # offers the task an import filled
        self._offered_task: str | None = None
        self._build_layout()
        self._build_actions()
        self._build_train_ui()
        self._build_search_ui()
        self._build_lpzero_ui()
        self._build_latency_ui()
        self._build_distill_ui()
        self._build_status_bar()
        self._connect()
        self.llm = install_llm_ui(self)  # before _restore_window, which restores its dock
        self.propose = install_propose_ui(self)
        self._poll_timer = QTimer(self, interval=POLL_MS)
        self._poll_timer.timeout.connect(self._poll)
        self._poll_timer.start()
        # The Pareto view takes a new table one turn of the event loop after the browser: two
        # short waits for the user instead of one long one (tens of ms each at 30,000 rows).
        self._plot_timer = QTimer(self, singleShot=True, interval=0)
        self._plot_timer.timeout.connect(self._plot_table)
        self._to_plot: TableSnapshot | None = None
        self._restore_window()

    # --- construction -------------------------------------------------------------------------

    def _build_layout(self) -> None:
        self.left_splitter = QSplitter(Qt.Orientation.Vertical)
        self.left_splitter.addWidget(self.browser)
        self.left_splitter.addWidget(self.detail)
        self.left_splitter.setStretchFactor(0, 3)
        self.left_splitter.setStretchFactor(1, 2)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.left_splitter)
        self.splitter.addWidget(self.pareto)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 1)
        self.setCentralWidget(self.splitter)
        self.jobs_dock = QDockWidget("Jobs", self, objectName="jobs")
        self.jobs_dock.setWidget(self.jobs)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.jobs_dock)
        # A dock on the right (the prompt editor) runs the full height, beside the bottom docks.
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)

    def _action(
        self, text: str, slot: object, shortcut: QKeySequence | str | None = None, tip: str = ""
    ) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.setStatusTip(tip)
        action.setToolTip(f"{tip} ({action.shortcut().toString()})" if shortcut else tip)
        action.triggered.connect(slot)
        return action

    def _build_actions(self) -> None:
        keys = QKeySequence.StandardKey
        self.new_action = self._action(
            "&New…", self._new_project, keys.New, "Create a project file"
        )
        self.open_action = self._action("&Open…", self._choose_project, keys.Open, "Open a project")
        self.import_action = self._action(
            "&Import…",
            self._choose_import,
            "Ctrl+I",
            "Import llmas .jsonl(.gz), HAT latency .csv or HAT .yml files",
        )
        self.export_action = self._action(
            "&Export selected…",
            self._choose_export,
            "Ctrl+E",
            "Export the selected architectures as HAT YAML, JSON or CSV",
        )
        self.quit_action = self._action("&Quit", self.close, keys.Quit, "Quit nasstudio")
        self.quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        self.sample_action = self._action(
            "&Sample architectures…",
            self._choose_sampling,
            "Ctrl+Shift+S",
            "Add architectures sampled from the task's search space, as a job",
        )
        self.filter_action = self._action(
            "&Filter", self.browser.focus_filter, keys.Find, "Type a filter for the table"
        )
        self.recent_menu = QMenu("Open &Recent", self)
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        project = self.menuBar().addMenu("&Project")
        project.addActions([self.new_action, self.open_action])
        project.addMenu(self.recent_menu)
        project.addSeparator()
        project.addActions([self.import_action, self.export_action])
        project.addSeparator()
        project.addAction(self.quit_action)
        archs = self.menuBar().addMenu("&Architectures")
        archs.addActions([self.sample_action, self.filter_action])
        view = self.menuBar().addMenu("&View")
        view.addAction(self.jobs_dock.toggleViewAction())
        self.toolbar = QToolBar("Main", self, objectName="main_toolbar")
        self.toolbar.addWidget(QLabel(" Task "))
        self.toolbar.addWidget(self.task_combo)
        self.toolbar.addSeparator()
        self.toolbar.addActions([self.import_action, self.sample_action, self.export_action])
        self.addToolBar(self.toolbar)

    def _build_train_ui(self) -> None:
        """The Train panel in a dock beside the jobs, its "&Train" menu and toolbar button."""
        panel = self.train_panel
        self.train_dock = QDockWidget("Train", self, objectName="train")
        self.train_dock.setWidget(panel)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.train_dock)
        self.tabifyDockWidget(self.jobs_dock, self.train_dock)
        menu = self.train_menu = self.menuBar().addMenu("&Train")
        menu.addActions([panel.train_action, panel.latency_action, panel.supernet_action])
        menu.addSeparator()
        menu.addAction(panel.cancel_action)
        dock_action = self.train_dock.toggleViewAction()
        dock_action.setText("Train &panel")
        menu.addAction(dock_action)
        self.toolbar.addSeparator()
        self.toolbar.addAction(panel.train_action)

    def _build_search_ui(self) -> None:
        """The Search panel in a dock tabbed with the Train panel, and its "&Search" menu."""
        panel = self.search_panel
        self.search_dock = QDockWidget("Search", self, objectName="search")
        self.search_dock.setWidget(panel)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.search_dock)
        self.tabifyDockWidget(self.train_dock, self.search_dock)
        menu = self.search_menu = self.menuBar().addMenu("&Search")
        menu.addAction(panel.run_action)
        dock_action = self.search_dock.toggleViewAction()
        dock_action.setText("Search &panel")
        menu.addAction(dock_action)

    def _build_lpzero_ui(self) -> None:
        """The LPZero panel in a dock tabbed with the Train panel, run and shown from the
        Search menu; a proxy it stores is offered by the Search panel at once."""
        panel = self.lpzero_panel
        self.lpzero_dock = QDockWidget("LPZero", self, objectName="lpzero")
        self.lpzero_dock.setWidget(panel)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.lpzero_dock)
        self.tabifyDockWidget(self.train_dock, self.lpzero_dock)
        self.search_menu.addSeparator()
        self.search_menu.addAction(panel.run_action)
        dock_action = self.lpzero_dock.toggleViewAction()
        dock_action.setText("LPZero p&roxy panel")
        self.search_menu.addAction(dock_action)
        panel.proxy_stored.connect(self.search_panel.refresh_predictors)

    def _build_latency_ui(self) -> None:
        """The Latency panel in a dock tabbed with the Train panel, shown from the Train menu."""
        self.latency_dock = QDockWidget("Latency", self, objectName="latency")
        self.latency_dock.setWidget(self.latency_panel)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.latency_dock)
        self.tabifyDockWidget(self.train_dock, self.latency_dock)
        dock_action = self.latency_dock.toggleViewAction()
        dock_action.setText("&Latency predictors")
        self.train_menu.addAction(dock_action)

    def _build_distill_ui(self) -> None:
        """The Distill panel in a dock tabbed with the Train panel, shown from the Train menu."""
        self.distill_dock = QDockWidget("Distill", self, objectName="distill")
        self.distill_dock.setWidget(self.distill_panel)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.distill_dock)
        self.tabifyDockWidget(self.train_dock, self.distill_dock)
        dock_action = self.distill_dock.toggleViewAction()
        dock_action.setText("&Distil a predictor (LLM-Distill-PP)")
        self.train_menu.addAction(dock_action)

    def _build_status_bar(self) -> None:
        self.path_label.setToolTip("The open project file")
        self.path_label.setMinimumWidth(200)
        self.show_task_button.setFlat(True)
        self.show_task_button.clicked.connect(self._show_offered_task)
        self.statusBar().addPermanentWidget(self.show_task_button)
        self.statusBar().addPermanentWidget(self.counts_label)
        self.statusBar().addPermanentWidget(self.path_label, 1)

    def _connect(self) -> None:
        self.task_combo.currentIndexChanged.connect(self._on_task_chosen)
        self.view.events.task.connect(self._on_task)
        self.view.events.selection.connect(self._update_counts)
        self.view.events.x_axis.connect(self._save_axes)
        self.view.events.y_axis.connect(self._save_axes)
        self.pareto.points_clicked.connect(self._on_points_clicked)
        self.jobs.cancel_requested.connect(self.cancel_job)
        self.jobs.rerun_requested.connect(self.rerun_job)
        self.train_panel.status.connect(self._tell)
        self.search_panel.status.connect(self._tell)
        self.latency_panel.status.connect(self._tell)
        self.distill_panel.status.connect(self._tell)
        self.lpzero_panel.status.connect(self._tell)
        self.train_panel.pick_requested.connect(self.browser.select_random)
        self.detail.translate_requested.connect(self.open_translate_dialog)
        self.train_panel.form.changed.connect(self._follow_checkpoint_root)
        self._follow_checkpoint_root()

    def _follow_checkpoint_root(self) -> None:
        """The detail pane looks for checkpoints where the Train panel's runs keep them too."""
        self.detail.set_checkpoint_root(self.train_panel.form.checkpoint_root())

    def _restore_window(self) -> None:
        screen = self.screen().availableGeometry()
        size = FIRST_SIZE.boundedTo(screen.size())
        self.setGeometry(QStyle.alignedRect(_LTR, Qt.AlignmentFlag.AlignCenter, size, screen))
        self.splitter.setSizes([round(size.width() * 0.54), round(size.width() * 0.46)])
        self.left_splitter.setSizes([round(size.height() * 0.4), round(size.height() * 0.2)])
        # Tall enough for the Train panel's corpus choice and a few job rows.
        dock_height = min(max(round(size.height() * 0.36), 260), 360)
        self.resizeDocks([self.jobs_dock], [dock_height], Qt.Orientation.Vertical)
        for key, restore in (
            (settings.GEOMETRY, self.restoreGeometry),
            (settings.STATE, self.restoreState),
            (settings.SPLITTER, self.splitter.restoreState),
            (settings.LEFT_SPLITTER, self.left_splitter.restoreState),
        ):
            value = settings.blob(self.settings, key)
            if value is not None:
                restore(value)
        self.view.x_axis = settings.text(self.settings, settings.X_AXIS)
        self.view.y_axis = settings.text(self.settings, settings.Y_AXIS)

    # --- projects -----------------------------------------------------------------------------

    @property
    def project(self) -> Project | None:
        return self.session.project if self.session else None

    def open_project(self, path: str | Path | None) -> bool:
        """Open ``path`` (None: the default project, created with a demo when missing)."""
        try:
            project = open_project(path)
        except (sqlite3.Error, SchemaError, OSError) as exc:
            show_error(self, "Cannot open project", f"{path}: {exc}")
            return False
        self._close_session()
        self.session = ProjectSession(project, self)
        self.session.bridge.job_event.connect(self._on_job_event)
        self.session.bridge.submitted.connect(self.jobs.add_job)
        self.session.bridge.submitted.connect(self._update_counts)
        self.session.loader.loaded.connect(self._on_table_loaded)
        self.session.loader.failed.connect(self.statusBar().showMessage)
        self.jobs.set_project(project)
        self.detail.set_project(project)
        self.train_panel.set_session(self.session)
        self.search_panel.set_session(self.session)
        self.latency_panel.set_session(self.session)
        self.distill_panel.set_session(self.session)
        self.lpzero_panel.set_session(self.session)
        settings.remember_project(self.settings, project.path)
        self.setWindowTitle(f"{project.path.name} — nasstudio")
        self.path_label.setText(str(project.path))
        self._refresh_tasks()
        names = self._task_names()
        saved = settings.text(self.settings, settings.TASK)
        task = saved if saved in names else (names[0] if names else None)
        if task == self.view.task:
            self._on_task(task)  # the same name in another project: load it all the same
        else:
            self.view.task = task
        self.project_opened.emit()
        return True

    def _close_session(self) -> None:
        if self.session is not None:
            self.train_panel.set_session(None)
            self.search_panel.set_session(None)
            self.latency_panel.set_session(None)
            self.distill_panel.set_session(None)
            self.lpzero_panel.set_session(None)
            self.session.close()
            self.session = None

    def _new_project(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self,
            "New project",
            str(data_dir() / f"untitled{PROJECT_SUFFIX}"),
            PROJECT_FILTER,
            options=QFileDialog.Option.DontConfirmOverwrite,
        )
        if not path:
            return
        path = Path(path if path.endswith(PROJECT_SUFFIX) else path + PROJECT_SUFFIX)
        if path.exists():
            show_error(
                self, "Project exists", f"{path} already exists; open it with Open… instead."
            )
            return
        self.open_project(path)

    def _choose_project(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open project", str(data_dir()), PROJECT_FILTER)
        if path:
            self.open_project(path)

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for path in settings.recent_projects(self.settings):
            action = self.recent_menu.addAction(path, lambda p=path: self._open_recent(p))
            action.setEnabled(Path(path).exists())
        if self.recent_menu.isEmpty():
            self.recent_menu.addAction("No recent projects").setEnabled(False)
        else:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear list", lambda: settings.clear_recent(self.settings))

    def _open_recent(self, path: str) -> None:
        if not Path(path).exists():
            settings.forget_project(self.settings, path)
            show_error(self, "Project not found", f"{path} no longer exists.")
            return
        self.open_project(path)

    # --- tasks and tables ---------------------------------------------------------------------

    def current_task(self) -> str | None:
        return self.view.task

    def _task_names(self) -> list[str]:
        return [self.task_combo.itemData(i) for i in range(self.task_combo.count())]

    def _refresh_tasks(self) -> None:
        """Fill the task choice from the project; follow a task being created once it is."""
        tasks = self.project.tasks() if self.project else []
        names = [t.name for t in tasks]
        if names != self._task_names():
            with signals_blocked(self.task_combo):
                self.task_combo.clear()
                for task in tasks:
                    self.task_combo.addItem(task.name, task.name)
                    self.task_combo.setItemData(
                        self.task_combo.count() - 1, task.description, Qt.ItemDataRole.ToolTipRole
                    )
                self.task_combo.setCurrentIndex(self.task_combo.findData(self.view.task))
        if self._follow_task in names:
            self.view.task, self._follow_task = self._follow_task, None

    def _on_task_chosen(self) -> None:
        self.view.task = self.task_combo.currentData()

    def _on_task(self, task: str | None) -> None:
        """The view state's task changed: show it in the combo and load its table."""
        self.show_task_button.hide()
        if task is not None and task not in self._task_names():
            self._refresh_tasks()
            if self.view.task != task:  # it switched to a followed task meanwhile
                return
        with signals_blocked(self.task_combo):
            self.task_combo.setCurrentIndex(self.task_combo.findData(task))
        if task:
            self.settings.setValue(settings.TASK, task)
        if self.session is None:
            return
        if task is None or task not in self._task_names():
            self.browser.set_table(_empty_table())
            self.pareto.set_table(_empty_table())
            self._update_counts()
        else:
            self.session.loader.request(task, force=True)

    def _on_table_loaded(self, snapshot: TableSnapshot) -> None:
        if snapshot.task != self.view.task:
            return
        self.browser.set_table(snapshot.table)
        self.detail.refresh()
        self._to_plot = snapshot
        self._plot_timer.start()

    def _plot_table(self) -> None:
        snapshot, self._to_plot = self._to_plot, None
        if snapshot is not None and snapshot.task == self.view.task:
            self.pareto.set_table(snapshot.table, snapshot.value_columns)
            self._update_counts()

    def _reload_changed(self, tasks: set[str] | frozenset[str]) -> None:
        """Tasks whose data changed: a new one joins the task choice; the shown one reloads."""
        if set(tasks) - set(self._task_names()):
            self._refresh_tasks()
        if self.session is not None and self.view.task in tasks:
            self.session.loader.request(self.view.task)

    def _poll(self) -> None:
        """Find the writes of other processes (our own runner's arrive as job events)."""
        if self.session is None:
            return
        changed = self.session.changed_tasks()
        if changed is None:
            return
        self.train_panel.show_records(self.jobs.refresh())
        self._reload_changed(changed)
        self._update_counts()

    # --- selection and axes -----------------------------------------------------------------

    def _on_points_clicked(self, ids: list[str], extend: bool) -> None:
        wanted = [*self.view.selection, *ids] if extend else ids
        self.view.selection = list(dict.fromkeys(wanted))
        if ids[0] not in self.view.selection:
            self._tell(f"{ids[0]} is hidden by the table's filter", 5000)

    def _save_axes(self, _: object = None) -> None:
        for key, value in (
            (settings.X_AXIS, self.view.x_axis),
            (settings.Y_AXIS, self.view.y_axis),
        ):
            if value:
                self.settings.setValue(key, value)

    def _update_counts(self, _: object = None) -> None:
        task = self.view.task
        if task is None:
            self.counts_label.setText("no tasks yet: import or sample architectures")
            return
        active = self.jobs.running_count()
        parts = [
            f"{task}: {self.browser.model.rowCount():,} architectures",
            f"{self.pareto.plotted_count():,} on the plot",
            f"{len(self.view.selection):,} selected",
        ]
        if active:
            parts.append(f"{active} job{'s' if active > 1 else ''} queued or running")
        self.counts_label.setText(" · ".join(parts))

    def _tell(self, message: str, timeout_ms: int = 10_000) -> None:
        self.statusBar().showMessage(message, timeout_ms)

    # --- jobs ---------------------------------------------------------------------------------

    def files_needing_task(self, paths: Sequence[str | Path]) -> list[str]:
        """The files whose name does not say their task: HAT YAML, and llmas files not named
        after a task of the project or a known one."""
        known = set(KNOWN_TASKS) | {t.name for t in self.project.tasks()}
        return [
            str(p)
            for p in paths
            if str(p).lower().endswith((".yml", ".yaml"))
            or (
                str(p).lower().endswith((".jsonl", ".jsonl.gz"))
                and guess_task_name(Path(p)) not in known
            )
        ]

    def import_paths(
        self, paths: Sequence[str | Path], task: str | None = None, vocab_size: int | None = None
    ) -> int | None:
        """Import files as a job; ``task`` (and ``vocab_size`` for a new task) applies to the
        files that do not name their task (``files_needing_task``)."""
        if self.session is None or not paths:
            return None
        if task is not None and vocab_size is None and self.project.task(task) is not None:
            vocab_size = self.project.task(task).vocab_size
        tasks = {p: (task, vocab_size) for p in self.files_needing_task(paths)} if task else {}
        names = ", ".join(Path(p).name for p in paths[:3]) + (" …" if len(paths) > 3 else "")
        return self._submit(
            "import", f"Import {names}", import_job, paths=[str(p) for p in paths], tasks=tasks
        )

    def export_selected_to(self, fmt: str, target: str | Path) -> int | None:
        """Export the selected architectures of the current task as a job (YAML files named by
        the Pareto view's cost axis)."""
        ids, task = list(self.view.selection), self.view.task
        if self.session is None or not ids or task is None:
            self._tell("Select architectures in the table first", 5000)
            return None
        return self._submit(
            "export",
            f"Export {counted(len(ids), 'architecture')} as {fmt}",
            export_job,
            task=task,
            arch_ids=ids,
            fmt=fmt,
            target=str(target),
            x=self.view.x_axis,
        )

    def start_sampling(self, task: str, count: int, seed: int) -> int | None:
        """Sample ``count`` architectures into ``task`` as a job, and show that task."""
        if self.session is None:
            return None
        # A known task the project lacks is registered by the job itself, not by the window.
        job_id = self._submit(
            "sample", f"Sample {count:,} into {task}", sample_job, task=task, count=count, seed=seed
        )
        self._follow_task = task
        self._refresh_tasks()
        return job_id

    def cancel_job(self, job_id: int) -> None:
        if self.session is not None:
            self.session.cancel(job_id)

    def rerun_job(self, job_id: int) -> int | None:
        """Queue a finished job again (a training resumes from its checkpoint)."""
        if self.session is None:
            return None
        try:
            if self.project.job(job_id).executor == "ray":
                self.session.use_ray(
                    settings.text(self.settings, settings.RAY_ADDRESS),
                    settings.text(self.settings, settings.RAY_STORAGE),
                )
            return self.session.rerun(job_id)
        except (ImportError, AttributeError, ValueError) as exc:
            show_error(self, "Cannot run the job again", str(exc))
            return None

    def _submit(self, kind: str, title: str, fn: JobFunction, **params: object) -> int:
        self.jobs_dock.raise_()  # its tab may be behind the Train panel's: show the new row
        return self.session.submit(kind, title, fn, **params)

    def _on_job_event(self, event: JobEvent) -> None:
        self.jobs.on_event(event)
        if event.kind == "partial":
            self._reload_changed(event.tasks)
            self._tell_recorded(event.payload)
        elif event.kind == "state":
            if event.state.finished:
                self._report_job(event)
            self._update_counts()

    def _tell_recorded(self, payload: object) -> None:
        """What an import or export job produced, once the runner recorded it."""
        items = payload if isinstance(payload, list) else []
        reports = [getattr(item, "report", None) for item in items]
        if items and all(isinstance(r, ImportReport) for r in reports):
            added = sum(r.architectures_added for r in reports)
            summary = f"Imported {len(reports)} file(s), {added:,} new architectures"
            self._tell(summary)
            self._show_imported_task(reports, summary)
        elif items and all(isinstance(item, Path) for item in items):
            self._tell(f"Exported {len(items)} file(s) to {items[0].parent}")

    def _show_imported_task(self, reports: list[ImportReport], summary: str) -> None:
        """Architectures went into a task that is not shown: switch to it when the shown task
        has none, else name it in the status bar and offer to switch."""
        tasks = list(dict.fromkeys(r.task for r in reports if r.architectures_read))
        if not tasks or self.view.task in tasks:
            return
        if self.view.task is None or self.browser.model.total_count() == 0:
            self.view.task = tasks[0]
            return
        self._tell(f"{summary} into task {', '.join(tasks)}; the view shows {self.view.task}")
        self._offered_task = tasks[0]
        self.show_task_button.setText(f"Show {tasks[0]}")
        self.show_task_button.setToolTip(f"Switch the view to task {tasks[0]}")
        self.show_task_button.show()

    def _show_offered_task(self) -> None:
        self.view.task = self._offered_task

    def _report_job(self, event: JobEvent) -> None:
        record = self.project.job(event.job_id)
        name = _JOB_NAMES.get(record.kind)
        if name is None:
            return
        if event.state == JobState.FAILED and record.kind in ("import", "export"):
            show_error(self, f"{name} failed", str(event.payload or event.message))
        elif event.state != JobState.DONE or record.kind == "sample":
            self._tell(f"{name}: {failure_line(record) or f'{event.state.value}: {event.message}'}")

    # --- user actions with dialogs ------------------------------------------------------------

    def _choose_import(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Import", "", IMPORT_FILTER)
        if not paths:
            return
        task = vocab = None
        if self.files_needing_task(paths):
            dialog = TaskDialog(self.project.tasks(), self.view.task, self)
            if dialog.exec() != QDialog.DialogCode.Accepted:
                return
            choice = dialog.choice()
            task, vocab = choice.task, choice.vocab_size
        self.import_paths(paths, task, vocab)

    def _choose_export(self) -> None:
        count = len(self.view.selection)
        if count == 0:
            self._tell("Select architectures in the table first", 5000)
            return
        target = ask_export_target(self, count)
        if target is not None:
            self.export_selected_to(*target)

    def open_translate_dialog(self, arch_id: str) -> TranslateDialog | None:
        """Translate test set… of the detail pane: the dialog, then the translate job."""
        if self.session is None or self.view.task is None:
            return None
        dialog = TranslateDialog(
            self.project,
            self.view.task,
            arch_id,
            self,
            checkpoint_root=self.train_panel.form.checkpoint_root(),
        )
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(
            lambda: self._submit(
                TRANSLATE_KIND,
                dialog.title(),
                translate_job,
                resource=dialog.resource(),
                **dialog.params(),
            )
        )
        dialog.open()
        return dialog

    def _choose_sampling(self) -> None:
        if self.session is None:
            return
        dialog = SampleDialog(self.project.tasks(), self.view.task, self)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            request = dialog.request()
            self.start_sampling(request.task, request.count, request.seed)

    # --- closing ------------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        self._poll_timer.stop()
        for key, value in (
            (settings.GEOMETRY, self.saveGeometry()),
            (settings.STATE, self.saveState()),
            (settings.SPLITTER, self.splitter.saveState()),
            (settings.LEFT_SPLITTER, self.left_splitter.saveState()),
        ):
            self.settings.setValue(key, value)
        self.settings.sync()
        self._close_session()
        self.jobs.set_project(None)
        self.detail.set_project(None)
        super().closeEvent(event)


def _empty_table() -> pd.DataFrame:
    return pd.DataFrame(index=pd.Index([], name="id", dtype=object))
