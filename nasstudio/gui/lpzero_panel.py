"""The LPZero panel: a genetic-programming search for a zero-cost proxy formula on a benchmark
(LTS GPT-2 on WikiText-103, FlexiBERT, the current task's trained architectures, or an archs
file), run as a job, drawn iteration by iteration as it runs; a found proxy is stored in the
project for the Search panel to rank with.

Every choice of the form is remembered in QSettings. A search is a job in a worker process
(``lpzero.jobs.lpzero_search_job``); the ``ProxySample`` and ``ProxyIteration`` records it
yields are recorded by the runner and come here as 'partial' events, so a cancelled search
keeps, and still draws, the iterations done. A past search is drawn from the store
(``Project.lpzero_samples`` and ``Project.lpzero_iterations``).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QDockWidget,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QInputDialog,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)
from superqt import QElidingLabel

from nasstudio.gui.lpzero_plot import LPZeroPlot
from nasstudio.gui.search_panel import button_row, run_list, set_item_text
from nasstudio.gui.session import ProjectSession
from nasstudio.gui.settings import remembered_splitter
from nasstudio.gui.train_form import (
    combo_field,
    field_value,
    float_spin,
    int_spin,
    on_field_change,
    set_field_value,
)
from nasstudio.gui.view_state import ViewState
from nasstudio.jobs import JobEvent, JobState
from nasstudio.jobs.records import ProxyIteration, ProxySample
from nasstudio.lpzero.jobs import LPZeroSpec, lpzero_search_job
from nasstudio.lpzero.search import GPSettings
from nasstudio.lpzero.suites import (
    BENCHMARK_FILES,
    DATA_ENV,
    TASK_PREFIX,
    benchmark_path,
    open_suite,
)
from nasstudio.store import JobRecord, StoredProxy

SETTINGS_GROUP = "lpzero"
SPLITTER_KEY = "lpzero/splitter"
LPZERO_KIND = "lpzero"
TASK, FILE = "task", "file"  # benchmark choices that are not a benchmark's name
BENCHMARKS = {
    "gpt2-wt103": "LTS GPT-2 · WikiText-103",
    "flexibert": "FlexiBERT · GLUE",
    TASK: "Trained architectures of the task",
    FILE: "Archs file (LTS GPT-2 format)",
}
ARCHS_FILTER = "LTS GPT-2 archs (*.jsonl);;All files (*)"
DEFAULTS = GPSettings()
DEFAULT_SAMPLE = 50
ALL = 0  # the sample spin's "all architectures"
RUN, STATE, ITERATION, RHO = range(4)
REFRESH_MS = 100  # the list and the plots follow a running search at most this often
_HEADERS = ("Search", "State", "Iteration", "ρ")


class LPZeroForm(QWidget):
    """The benchmark, sample and GP settings of a search; each field is saved to QSettings as
    it changes."""

    changed = Signal()

    def __init__(self, qsettings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._settings = qsettings
        self._saved: dict[str, QWidget] = {}
        self._file_problem: tuple[tuple, str | None] = ((), None)  # (file state, its problem)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._benchmark_group())
        layout.addWidget(self._gp_group())
        layout.addStretch(1)
        self._restore()
        self._show_fields()

    # --- construction -------------------------------------------------------------------------

    def _benchmark_group(self) -> QGroupBox:
        self.benchmark_combo = combo_field(
            BENCHMARKS,
            "gpt2-wt103",
            "The architectures whose ground truth the proxies are ranked against: a reference "
            "benchmark, the current task's trained architectures (BLEU), or any archs file",
        )
        self.file_edit = QLineEdit(placeholderText="archs.jsonl")
        self.file_edit.setToolTip(
            "An archs file of LTS GPT-2 configs with their validation perplexity, one JSON "
            "object a line (as in LiteTransformerSearch and LPZero)"
        )
        self.browse_button = QPushButton("Browse…", toolTip="Choose the archs file")
        self.browse_button.clicked.connect(self._choose_file)
        self.data_edit = QLineEdit(placeholderText=f"${DATA_ENV}")
        self.data_edit.setToolTip(
            "The LPZero data folder, holding gpt2_wt103/archs.jsonl and "
            f"flexibert/BERT_benchmark.json; empty: ${DATA_ENV}"
        )
        self.data_button = QPushButton("Browse…", toolTip="Choose the LPZero data folder")
        self.data_button.clicked.connect(self._choose_data_dir)
        self.sample_spin = int_spin(
            DEFAULT_SAMPLE,
            ALL,
            100_000,
            "Architectures drawn from the benchmark (seeded); all: every one. More give a "
            "truer ranking, each costs a forward and backward pass",
        )
        self.sample_spin.setSpecialValueText("all")
        self.classic_check = QCheckBox("Classic proxies", checked=True)
        self.classic_check.setToolTip(
            "Also rank the classic proxies (#params, synflow, snip, grad_norm, …) on the same "
            "architectures, for comparison"
        )
        file_row = button_row(self.file_edit, self.browse_button)
        data_row = button_row(self.data_edit, self.data_button)
        group = QGroupBox("Benchmark")
        self._benchmark_form = form = QFormLayout(group)
        form.addRow("Rank on", self.benchmark_combo)
        form.addRow("File", file_row)
        form.addRow("Data", data_row)
        form.addRow("Sample", self.sample_spin)
        form.addRow(self.classic_check)
        self._file_row, self._data_row = file_row, data_row
        self._save_as("benchmark", self.benchmark_combo)
        self._save_as("archs_file", self.file_edit)
        self._save_as("data_dir", self.data_edit)
        self._save_as("sample", self.sample_spin)
        return group

    def _gp_group(self) -> QGroupBox:
        d = DEFAULTS
        self._gp = {
            "population": int_spin(d.population, 2, 10_000, "Expressions in the population (80)"),
            "iterations": int_spin(
                d.iterations, 1, 1_000_000, "Steady-state iterations, one child each (1,000)"
            ),
            "chain_length": int_spin(
                d.chain_length, 1, 8, "Unary operations applied to each input (2)"
            ),
            "crossover_p": float_spin(
                d.crossover_p, 1.0, "Probability that a child is a crossover of its parents (0.5)"
            ),
            "mutation_p": float_spin(
                d.mutation_p, 1.0, "Probability that one node of the child mutates (0.5)"
            ),
            "seed": int_spin(d.seed, 0, 2**31 - 1, "The same seed repeats a search"),
            "over_layers": combo_field(
                {"mean": "mean (LPZero)", "sum": "sum"},
                d.over_layers,
                "How a network's per-layer values become its proxy: their mean, as LPZero "
                "does, or their sum, which also sees depth (FlexiBERT's main factor)",
            ),
        }
        texts = {
            "population": "Population",
            "iterations": "Iterations",
            "chain_length": "Chain length",
            "crossover_p": "Crossover p",
            "mutation_p": "Mutation p",
            "seed": "Seed",
            "over_layers": "Over layers",
        }
        group = QGroupBox("Genetic programming")
        form = QFormLayout(group)
        for key, field in self._gp.items():
            form.addRow(texts[key], field)
            self._save_as(f"gp/{key}", field)
        return group

    def _save_as(self, key: str, widget: QWidget) -> None:
        self._saved[key] = widget

    # --- values -------------------------------------------------------------------------------

    def settings(self) -> GPSettings:
        return GPSettings(**{key: field_value(w) for key, w in self._gp.items()})

    def benchmark(self, task: str | None) -> str:
        """The benchmark as ``open_suite`` names it."""
        choice = self.benchmark_combo.currentData()
        if choice == TASK:
            return f"{TASK_PREFIX}{task}"
        return self.file_edit.text().strip() if choice == FILE else choice

    def sample(self) -> int | None:
        sample = self.sample_spin.value()
        return None if sample == ALL else sample

    def spec(self, task: str | None) -> LPZeroSpec:
        return LPZeroSpec(
            benchmark=self.benchmark(task),
            sample=self.sample(),
            settings=self.settings(),
            classic=self.classic_check.isChecked(),
            data_dir=self.data_edit.text().strip(),
        )

    def problem(self, task: str | None) -> str | None:
        """Why no search can start with these choices (one line), or None."""
        choice = self.benchmark_combo.currentData()
        if 0 < self.sample_spin.value() < 3:
            return "Sample at least 3 architectures (a rank correlation needs them)."
        if choice == TASK:
            return None if task else "No task: import or sample architectures first."
        if choice == FILE:
            return self._archs_file_problem()
        try:
            benchmark_path(choice, self.data_edit.text().strip() or None)
        except ValueError as exc:
            return _first_line(exc)
        return None

    def _archs_file_problem(self) -> str | None:
        """The archs file's first error, read again only when the file or sample changed."""
        text = self.file_edit.text().strip()
        if not text:
            return "Choose an archs file."
        try:
            stat = Path(text).expanduser().stat()
        except OSError:
            return f"{text}: no such file"
        sample, seed = self.sample(), self.settings().seed
        state = (text, stat.st_mtime_ns, stat.st_size, sample, seed)
        if self._file_problem[0] != state:
            self._file_problem = (state, _suite_problem(text, sample, seed))
        return self._file_problem[1]

    def describe(self, task: str | None) -> str:
        """The search in a few words, for its title."""
        choice = self.benchmark_combo.currentData()
        where = {TASK: f"task {task}", FILE: Path(self.file_edit.text()).name}.get(choice, choice)
        size = self.sample() or "all"
        s = self.settings()
        return f"{where} ({size}) · pop {s.population}, {s.iterations:,} it., seed {s.seed}"

    def set_values(self, values: dict[str, Any]) -> None:
        """Set fields by settings key (``gp/population``, ``benchmark``, ``classic`` …)."""
        for key, value in values.items():
            if key == "classic":
                self.classic_check.setChecked(bool(value))
            else:
                set_field_value(self._saved[key], value)

    def values(self) -> dict[str, Any]:
        values = {key: field_value(widget) for key, widget in self._saved.items()}
        return {**values, "classic": self.classic_check.isChecked()}

    # --- reactions and settings ---------------------------------------------------------------

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Archs file", self.file_edit.text(), ARCHS_FILTER
        )
        if path:
            self.file_edit.setText(path)

    def _choose_data_dir(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "LPZero data folder", self.data_edit.text())
        if folder:
            self.data_edit.setText(folder)

    def _show_fields(self) -> None:
        choice = self.benchmark_combo.currentData()
        self._benchmark_form.setRowVisible(self._file_row, choice == FILE)
        self._benchmark_form.setRowVisible(self._data_row, choice in BENCHMARK_FILES)

    def _restore(self) -> None:
        """Read the saved fields, then save each one whenever it changes."""
        self._settings.beginGroup(SETTINGS_GROUP)
        try:
            for key, widget in self._saved.items():
                if self._settings.contains(key):
                    with contextlib.suppress(TypeError, ValueError):  # a mangled value: default
                        set_field_value(widget, self._settings.value(key))
            if self._settings.contains("classic"):  # INI files give booleans back as text
                self.classic_check.setChecked(
                    str(self._settings.value("classic")).lower() in ("true", "1")
                )
        finally:
            self._settings.endGroup()
        for key, widget in self._saved.items():
            on_field_change(widget, lambda *_, k=key, w=widget: self._store(k, field_value(w)))
        self.classic_check.toggled.connect(lambda on: self._store("classic", on))

    def _store(self, key: str, value: Any) -> None:
        self._settings.setValue(f"{SETTINGS_GROUP}/{key}", value)
        self._show_fields()
        self.changed.emit()


def _suite_problem(path: str, sample: int | None, seed: int) -> str | None:
    """What opening an archs file says is wrong with it (one line), or None."""
    try:
        open_suite(path, sample=sample, seed=seed)
    except (OSError, ValueError) as exc:
        return _first_line(exc)
    return None


def _first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def default_proxy_name(formula: str) -> str:
    """A name from a formula: its words joined by dashes (``mul(abs(act), grad)`` ->
    ``mul-abs-act-grad``)."""
    return "-".join(re.findall(r"\w+", formula)) or "proxy"


class LPZeroPanel(QWidget):
    """The form, the live view of the search shown and the project's searches. It submits to
    the session's runner; the window puts its actions in a menu."""

    status = Signal(str)  # a message for the status bar
    proxy_stored = Signal(str)  # the name of a proxy just stored for use as a predictor

    def __init__(
        self, qsettings: QSettings, view: ViewState, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._settings = qsettings
        self._view = view
        self._session: ProjectSession | None = None
        self._records: dict[int, JobRecord] = {}  # the project's LPZero searches by job id
        self._items: dict[int, QTreeWidgetItem] = {}
        self._samples: dict[int, ProxySample] = {}  # loaded or arrived
        self._iterations: dict[int, dict[int, ProxyIteration]] = {}
        self._started: set[int] = set()  # submitted from this window: cancellable here
        self._shown: int | None = None  # the search drawn
        self._changed: set[int] = set()  # searches whose events are not shown yet
        self._refresh_timer = QTimer(self, singleShot=True, interval=REFRESH_MS)
        self._refresh_timer.timeout.connect(self._refresh)
        self.name_dialog: QInputDialog | None = None  # "Use as predictor…" while it is open
        self.form = LPZeroForm(qsettings)
        self.plot = LPZeroPlot()
        self.runs = run_list(_HEADERS, RUN, "The project's proxy searches: select one to draw it")
        self.runs.itemSelectionChanged.connect(self._show_selected_run)
        self._build_actions()
        self._build_layout()
        self.form.changed.connect(self._update_buttons)
        view.events.task.connect(self._on_task)

    # --- construction -------------------------------------------------------------------------

    def _build_actions(self) -> None:
        self.run_action = QAction(
            "&LPZero proxy search…",
            self,
            shortcut=QKeySequence("Ctrl+Shift+X"),
            statusTip="Search for a zero-cost proxy formula that ranks the benchmark's "
            "architectures as their ground truth does",
        )
        self.run_action.setToolTip(
            "Run the proxy search set in the LPZero panel, as a job "
            f"({self.run_action.shortcut().toString()})"
        )
        self.run_action.triggered.connect(self._run_from_menu)

    def _build_layout(self) -> None:
        scroll = QScrollArea(widgetResizable=True)
        scroll.setWidget(self.form)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # Its least width, not its preferred one: the panel must fit beside the prompt editor.
        scroll.setMinimumWidth(self.form.minimumSizeHint().width() + 20)
        # One line, as wide as the form: a long error (a path) is elided, whole in the tooltip.
        self.problem_label = QElidingLabel(elideMode=Qt.TextElideMode.ElideMiddle)
        self.problem_label.setStyleSheet("color: #b00020;")
        self.run_button = QPushButton("Run", toolTip=self.run_action.toolTip())
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip(
            "Stop the search shown; the iterations done stay recorded and drawn"
        )
        self.cancel_button.clicked.connect(self.cancel)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(scroll, 1)
        left_layout.addWidget(self.problem_label)
        left_layout.addLayout(button_row(self.run_button, self.cancel_button))
        self.use_button = QPushButton("Use as predictor…")
        self.use_button.setToolTip(
            "Store the best formula of the search shown in the project, under a name; the "
            "Search panel then offers it as a predictor"
        )
        self.use_button.clicked.connect(self.ask_proxy_name)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.runs, 1)
        right_layout.addWidget(self.use_button)
        self.splitter = remembered_splitter(
            self._settings, SPLITTER_KEY, ((left, 0), (self.plot, 1), (right, 0)), [300, 700, 260]
        )
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.splitter)
        self._update_buttons()

    # --- the project --------------------------------------------------------------------------

    def set_session(self, session: ProjectSession | None) -> None:
        """Follow this project's proxy searches (listed from the store) and its job events."""
        if self._session is not None:
            self._session.bridge.job_event.disconnect(self._on_job_event)
            self._session.bridge.submitted.disconnect(self._on_submitted)
        self._session = session
        self.runs.clear()
        for known in (self._records, self._items, self._samples, self._iterations):
            known.clear()
        self._started.clear()
        self._shown = None
        self.plot.clear()
        if session is None:
            self._update_buttons()
            return
        session.bridge.job_event.connect(self._on_job_event)
        session.bridge.submitted.connect(self._on_submitted)
        recorded = {row["job_id"]: row for row in session.project.lpzero_searches()}
        for record in session.project.jobs():
            if record.kind == LPZERO_KIND:
                self._add_run(record)
                row = recorded.get(record.id)
                if row and row["iterations"]:
                    self._show_counts(record.id, row["iterations"], row["best_rho"])
        self._update_buttons()

    # --- user actions -------------------------------------------------------------------------

    def problem(self) -> str | None:
        """Why Run cannot start a search now, or None."""
        if self._session is None:
            return "Open a project first."
        return self.form.problem(self._view.task)

    def run(self) -> int | None:
        """Start the search the form describes; its job id."""
        problem = self.problem()
        if problem is not None:
            self.status.emit(problem)
            return None
        task = self._view.task
        return self._session.submit(
            LPZERO_KIND,
            f"LPZero {self.form.describe(task)}",
            lpzero_search_job,
            spec=self.form.spec(task).as_params(),
        )

    def _run_from_menu(self) -> None:
        self._show_dock()
        self.run()

    def cancel(self) -> None:
        """Stop the search shown; what it recorded stays."""
        job_id = self._shown
        if self._session is not None and job_id in self._started and self._running(job_id):
            self._session.cancel(job_id)
            self._items[job_id].setText(STATE, "cancelling…")

    def ask_proxy_name(self) -> None:
        """Use as predictor…: ask for a name (the formula's words by default), then store it."""
        newest = self._newest_iteration()
        if newest is None:
            return
        dialog = QInputDialog(self)
        dialog.setWindowTitle("Use as predictor")
        dialog.setLabelText(f"Store {newest.best} under the name:")
        dialog.setTextValue(default_proxy_name(newest.best))
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.textValueSelected.connect(self.use_as_predictor)
        dialog.destroyed.connect(lambda: setattr(self, "name_dialog", None))
        self.name_dialog = dialog
        dialog.open()

    def use_as_predictor(self, name: str) -> bool:
        """Store the best formula of the search shown under ``name`` (its sign makes higher
        better); whether it was stored."""
        newest, sample = self._newest_iteration(), self._samples.get(self._shown)
        name = name.strip()
        if newest is None or sample is None or not name:
            return False
        sign = -1 if newest.best_rho < 0 else 1
        proxy = StoredProxy(
            name,
            newest.best,
            sign,
            sample.benchmark,
            sign * newest.best_rho,
            sign * newest.best_tau,
        )
        try:
            self._session.project.add_proxy(proxy)
        except ValueError as exc:
            self.status.emit(str(exc))
            return False
        self.status.emit(f"Proxy '{name}' stored: the Search panel offers it as a predictor")
        self.proxy_stored.emit(name)
        return True

    # --- queries (for tests and tools) --------------------------------------------------------

    def run_ids(self) -> list[int]:
        return list(self._records)

    def shown_run(self) -> int | None:
        return self._shown

    def show_run(self, job_id: int) -> None:
        """Select a search in the list: it is drawn."""
        self.runs.setCurrentItem(self._items[job_id])

    # --- job events ---------------------------------------------------------------------------

    def _on_submitted(self, job_id: int) -> None:
        record = self._session.project.job(job_id)
        if record.kind == LPZERO_KIND:
            self._started.add(job_id)
            self._add_run(record)
            self.show_run(job_id)
            self._show_dock()

    def _on_job_event(self, event: JobEvent) -> None:
        record = self._records.get(event.job_id)
        if record is None or event.kind == "log":
            return
        if event.kind == "partial":
            self._take(event.job_id, event.payload)
        record = replace(
            record,
            state=event.state.value,
            progress=event.progress,
            message=event.message or record.message,
        )
        self._records[event.job_id] = record
        self._changed.add(event.job_id)
        if event.kind == "state" and event.state.finished:
            self._refresh()
            if event.job_id in self._started:
                self._report(record, event)
        elif not self._refresh_timer.isActive():
            self._refresh_timer.start()

    def _take(self, job_id: int, payload: object) -> None:
        """Keep the sample and iterations a 'partial' event carries (itself, or in a list)."""
        for item in payload if isinstance(payload, list | tuple) else [payload]:
            if isinstance(item, ProxySample):
                self._samples[job_id] = item
            elif isinstance(item, ProxyIteration):
                self._iterations.setdefault(job_id, {})[item.index] = item

    def _refresh(self) -> None:
        """Show what events changed since the last refresh: a search that sends iterations
        faster than the eye follows is redrawn a few times a second, not per iteration."""
        self._refresh_timer.stop()
        changed, self._changed = self._changed, set()
        for job_id in changed & set(self._records):
            self._update_item(self._records[job_id])
        if self._shown in changed:
            self._draw(self._shown)
        self._update_buttons()

    def _report(self, record: JobRecord, event: JobEvent) -> None:
        done = len(self._iterations.get(record.id, {}))
        if event.state == JobState.FAILED:
            error = str(event.payload or event.message).strip().splitlines()
            self.status.emit(f"LPZero search {record.id} failed: {error[-1] if error else ''}")
        else:
            self.status.emit(
                f"LPZero search {record.id} {event.state.value} after {done:,} iteration(s): "
                f"{event.message}"
            )

    # --- the list of searches -----------------------------------------------------------------

    def _add_run(self, record: JobRecord) -> None:
        self._records[record.id] = record
        item = QTreeWidgetItem([f"#{record.id} {record.title.removeprefix('LPZero ')}"])
        item.setData(RUN, Qt.ItemDataRole.UserRole, record.id)
        self._items[record.id] = item
        self.runs.addTopLevelItem(item)
        self._update_item(record)

    def _update_item(self, record: JobRecord) -> None:
        item = self._items[record.id]
        running = record.state == JobState.RUNNING.value
        set_item_text(
            item, STATE, f"{record.state} {record.progress:.0%}" if running else record.state
        )
        iterations = self._iterations.get(record.id)
        if iterations:
            self._show_counts(record.id, len(iterations), iterations[max(iterations)].best_rho)
        tip = f"{record.title}\njob {record.id}\n{record.message}"
        if item.toolTip(RUN) != tip:
            for column in range(len(_HEADERS)):
                item.setToolTip(column, tip)

    def _show_counts(self, job_id: int, iterations: int, rho: float | None) -> None:
        item = self._items[job_id]
        set_item_text(item, ITERATION, f"{iterations:,}")
        set_item_text(item, RHO, "" if rho is None else f"{rho:.3f}")

    def _show_selected_run(self) -> None:
        items = self.runs.selectedItems()
        self._shown = items[0].data(RUN, Qt.ItemDataRole.UserRole) if items else None
        if self._shown is None:
            self.plot.clear()
        else:
            self._load_stored(self._shown)
            self._draw(self._shown)
        self._update_buttons()

    def _load_stored(self, job_id: int) -> None:
        """A search's sample and iterations: those recorded, with any that arrived since."""
        project = self._session.project
        samples = project.lpzero_samples(job_id)
        if samples and job_id not in self._samples:
            self._samples[job_id] = samples[-1]
        known = self._iterations.setdefault(job_id, {})
        for iteration in project.lpzero_iterations(job_id):
            known.setdefault(iteration.index, iteration)
        self._update_item(self._records[job_id])

    def _draw(self, job_id: int) -> None:
        self.plot.set_run(
            self._samples.get(job_id),
            self._iterations.get(job_id, {}).values(),
            f"{self._records[job_id].state}: {self._records[job_id].message}",
        )

    def _newest_iteration(self) -> ProxyIteration | None:
        iterations = self._iterations.get(self._shown)
        return iterations[max(iterations)] if iterations else None

    def _on_task(self, _: object) -> None:
        self._update_buttons()

    def _running(self, job_id: int | None) -> bool:
        record = self._records.get(job_id)
        return record is not None and not JobState(record.state).finished

    def _update_buttons(self) -> None:
        problem = self.problem()
        if self.problem_label.text() != (problem or ""):
            self.problem_label.setText(problem or "")
            self.problem_label.setToolTip(problem or "")
            self.problem_label.setVisible(problem is not None)
        usable = self._newest_iteration() is not None and self._shown in self._samples
        for button, enabled in (
            (self.run_button, problem is None),
            (self.cancel_button, self._shown in self._started and self._running(self._shown)),
            (self.use_button, usable),
        ):
            if button.isEnabled() != enabled:
                button.setEnabled(enabled)

    def _show_dock(self) -> None:
        dock = self.parentWidget()
        if isinstance(dock, QDockWidget):
            dock.show()
            dock.raise_()
