"""The Search panel: HAT's evolutionary search (HS-NAS when two predictors rank it) or NSGA-II
over the task's space, under a latency, GFLOPs or parameter constraint, run as a job; its
fronts drawn generation by generation as they arrive.

The form lists the predictors stored beside the project (distilled and fitted ones in
``<project>.distilled/``, latency ones in ``<project>.latency/``) and the supernets the project
trained; every choice is remembered in QSettings. A search is a job in a worker process
(``predict.search_jobs.search_job``); each generation it yields is recorded by the runner and
comes here as a 'partial' event, so a cancelled search keeps, and still draws, the generations
done. A past search is drawn from the store (``Project.search_generations``).
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDockWidget,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QScrollArea,
    QStackedWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from nasstudio.gui.dialogs import ask_export_target
from nasstudio.gui.search_plot import SearchPlot
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
from nasstudio.jobs.files import export_job
from nasstudio.jobs.records import SearchGeneration
from nasstudio.predict.distill import stored_distilled
from nasstudio.predict.latency import latency_predictors
from nasstudio.predict.search_jobs import PredictorSpec, SearchSpec, search_job
from nasstudio.search.evolution import EvolutionSettings
from nasstudio.store import GFLOPS, LATENCY_MS, PARAMS, JobRecord, Project
from nasstudio.train.supernet import SUPERNET_KIND

SETTINGS_GROUP = "search"
SPLITTER_KEY = "search/splitter"
SEARCH_KIND = "search"
NO_PREDICTOR = ""
DEFAULTS = EvolutionSettings()
CONSTRAINTS = {
    "": "None",
    "latency": "Latency (predicted, ms)",
    GFLOPS: "GFLOPs",
    PARAMS: "Parameters (millions)",
}
MODES = {"evolution": "Evolution (HAT, HS-NAS)", "nsga2": "NSGA-II front (pymoo)"}
SEARCH, STATE, GENERATION, BEST = range(4)
REFRESH_MS = 100  # the list and the plot follow a running search at most this often
_HEADERS = ("Search", "State", "Generation", "Best")


def predictor_choices(project: Project) -> dict[str, tuple[str, PredictorSpec]]:
    """Key -> (label, spec) of every predictor a search may rank with: the distilled and fitted
    ones stored beside the project, the proxies stored in it, and the supernets its finished
    jobs trained."""
    choices = {}
    for stored in stored_distilled(project.path):
        kind, name = stored.kind, stored.stored_name
        choices[f"{kind}:{name}"] = (f"{kind}: {name}", PredictorSpec(kind, name))
    for proxy in project.proxies():  # zero-cost proxies the LPZero panel stored
        label = f"proxy: {proxy.name} ({proxy.formula})"
        choices[f"proxy:{proxy.name}"] = (label, PredictorSpec("proxy", proxy.name))
    for record in project.jobs(states=[JobState.DONE.value]):
        checkpoint = _supernet_checkpoint(record)
        if checkpoint is not None:
            label = f"supernet: {Path(checkpoint).stem} (job {record.id})"
            options = {"corpus": record.params["corpus"]}
            choices[f"supernet:{checkpoint}"] = (
                label,
                PredictorSpec(SUPERNET_KIND, checkpoint, options),
            )
    return choices


def _supernet_checkpoint(record: JobRecord) -> str | None:
    """The checkpoint a finished supernet training wrote: its last message names it."""
    if record.kind != SUPERNET_KIND or "corpus" not in record.params:
        return None
    path = record.params.get("checkpoint") or record.message.rpartition(": ")[2]
    return path if path and Path(path).is_file() else None


class SearchForm(QWidget):
    """Every choice of a search; each field is saved to QSettings as it changes."""

    changed = Signal()

    def __init__(self, qsettings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._settings = qsettings
        self._saved: dict[str, QWidget] = {}
        self._choices: dict[str, tuple[str, PredictorSpec]] = {}
        self._latency: dict[str, str] = {}  # latency predictor -> device
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._predictor_group())
        layout.addWidget(self._constraint_group())
        layout.addWidget(self._population_group())
        layout.addStretch(1)
        self._restore()
        self._show_fields()

    # --- construction -------------------------------------------------------------------------

    def _predictor_group(self) -> QGroupBox:
        self.first_combo = combo_field(
            {},
            "",
            "The predictor that ranks the candidates (all iterations, or those before the "
            "switch): a distilled or fitted regressor, or a supernet the project trained",
        )
        self.second_combo = combo_field(
            {},
            "",
            "HS-NAS: a second predictor (usually the supernet) ranks the iterations from the "
            "switch on; none: the first ranks them all",
        )
        self.switch_spin = int_spin(
            15, 1, 10_000, "HS-NAS: the first iteration the second predictor ranks (llmas: 15)"
        )
        self.no_predictor_label = QLabel(
            "No predictor stored yet: fit a distilled or fitted one (Distill panel), store a "
            "proxy (LPZero panel) or train a supernet (Train panel).",
            wordWrap=True,
        )
        self.no_predictor_label.setStyleSheet("color: #8a5300;")
        group = QGroupBox("Predictors")
        self._predictor_form = form = QFormLayout(group)
        form.addRow(self.no_predictor_label)
        form.addRow("Rank with", self.first_combo)
        form.addRow("Then with", self.second_combo)
        form.addRow("Switch at", self.switch_spin)
        self._save_as("first", self.first_combo)
        self._save_as("second", self.second_combo)
        self._save_as("switch_at", self.switch_spin)
        return group

    def _constraint_group(self) -> QGroupBox:
        self.constraint_combo = combo_field(
            CONSTRAINTS,
            "",
            "Every architecture the search keeps satisfies this limit; the fronts are drawn "
            "against it",
        )
        self.latency_combo = combo_field(
            {},
            "",
            "The stored latency predictor (one task and device) that predicts each "
            "candidate's latency",
        )
        self.limit_stack = QStackedWidget()
        self._limit_spins = {
            "latency": float_spin(150.0, 1e6, "Largest predicted latency, ms (HAT: 150)", 10.0, 1),
            GFLOPS: float_spin(3.0, 1e4, "Largest GFLOPs of one translation", 0.1, 3),
            PARAMS: float_spin(50.0, 1e5, "Largest number of parameters, in millions", 1.0, 1),
        }
        for kind, spin in self._limit_spins.items():
            self.limit_stack.addWidget(spin)
            self._save_as(f"limit/{kind}", spin)
        group = QGroupBox("Constraint")
        self._constraint_form = form = QFormLayout(group)
        form.addRow("Constrain", self.constraint_combo)
        form.addRow("Latency of", self.latency_combo)
        form.addRow("At most", self.limit_stack)
        self._save_as("constraint", self.constraint_combo)
        self._save_as("latency_predictor", self.latency_combo)
        return group

    def _population_group(self) -> QGroupBox:
        d = DEFAULTS
        self._population = {
            "iterations": int_spin(d.iterations, 1, 10_000, "Generations (llmas HS-NAS: 30)"),
            "population": int_spin(d.population, 2, 100_000, "Candidates per generation (125)"),
            "parents": int_spin(d.parents, 1, 100_000, "Best candidates kept as parents (25)"),
            "mutations": int_spin(d.mutations, 0, 100_000, "Children by mutation (50)"),
            "mutation_prob": float_spin(
                d.mutation_prob, 1.0, "Probability that a mutation changes each gene (0.3)"
            ),
            "crossovers": int_spin(d.crossovers, 0, 100_000, "Children by crossover (50)"),
            "seed": int_spin(d.seed, 0, 2**31 - 1, "The same seed repeats a search"),
        }
        self.mode_combo = combo_field(
            MODES,
            "evolution",
            "Evolution keeps the best-ranked candidates under the constraint; NSGA-II "
            "returns the whole front of score against the constrained cost in one run",
        )
        texts = {
            "iterations": "Iterations",
            "population": "Population",
            "parents": "Parents",
            "mutations": "Mutations",
            "mutation_prob": "Mutation prob.",
            "crossovers": "Crossovers",
            "seed": "Seed",
        }
        group = QGroupBox("Search")
        form = QFormLayout(group)
        form.addRow("Mode", self.mode_combo)
        self._save_as("mode", self.mode_combo)
        for key, spin in self._population.items():
            form.addRow(texts[key], spin)
            self._save_as(f"settings/{key}", spin)
        return group

    def _save_as(self, key: str, widget: QWidget) -> None:
        self._saved[key] = widget

    # --- the project's predictors -------------------------------------------------------------

    def set_project(self, project: Project | None) -> None:
        """List the predictors stored for ``project``, keeping (or restoring) the choices."""
        self._choices = predictor_choices(project) if project else {}
        self._latency = (
            {p.name: p.device for p in latency_predictors(project.path)} if project else {}
        )
        items = {key: label for key, (label, _) in self._choices.items()}
        self._fill(self.first_combo, "first", items)
        self._fill(self.second_combo, "second", {NO_PREDICTOR: "None", **items})
        self._fill(
            self.latency_combo,
            "latency_predictor",
            {name: f"{name} ({device})" for name, device in self._latency.items()},
        )
        self._show_fields()

    def _fill(self, combo: QComboBox, key: str, items: dict[str, str]) -> None:
        wanted = combo.currentData() or self._settings.value(f"{SETTINGS_GROUP}/{key}", "")
        combo.blockSignals(True)
        combo.clear()
        for data, text in items.items():
            combo.addItem(text, data)
        combo.setCurrentIndex(max(combo.findData(wanted), 0))
        combo.blockSignals(False)

    # --- values -------------------------------------------------------------------------------

    def settings(self) -> EvolutionSettings:
        return EvolutionSettings(**{key: field_value(w) for key, w in self._population.items()})

    def constraint(self) -> str:
        return self.constraint_combo.currentData()

    def problem(self) -> str | None:
        """Why no search can start with these choices, or None."""
        if self.first_combo.count() == 0:
            return "No predictor to rank with: fit one or train a supernet first."
        if self.constraint() == "latency" and self.latency_combo.count() == 0:
            return "No latency predictor stored: train one (latency-predictor train) first."
        try:
            self.spec().check()
        except ValueError as exc:
            return str(exc)
        return None

    def spec(self) -> SearchSpec:
        """The search these choices describe."""
        predictors = [self._choices[self.first_combo.currentData()][1]]
        second = self.second_combo.currentData()
        if second:
            predictors.append(self._choices[second][1])
        constraint = self.constraint()
        metric, limit, latency = constraint, None, None
        if constraint:
            limit = self._limit_spins[constraint].value()
        if constraint == "latency":
            latency = self.latency_combo.currentData()
            metric = f"{LATENCY_MS}@{self._latency[latency]}"
        elif constraint == PARAMS:
            limit *= 1e6
        return SearchSpec(
            predictors=tuple(predictors),
            switch_at=self.switch_spin.value(),
            constraint_metric=metric,
            constraint_limit=limit,
            latency_predictor=latency,
            settings=self.settings(),
            mode=self.mode_combo.currentData(),
        )

    def describe(self) -> str:
        """The search in a few words, for its title."""
        names = [self.first_combo.currentText()]
        if self.second_combo.currentData():
            names.append(f"{self.second_combo.currentText()} from {self.switch_spin.value()}")
        constraint = self.constraint()
        limit = f" · {self.constraint_combo.currentText()} ≤ " if constraint else ""
        if constraint:
            limit += f"{self._limit_spins[constraint].value():g}"
        return f"{self.mode_combo.currentData()} · {' then '.join(names)}{limit}"

    def set_values(self, values: dict[str, Any]) -> None:
        """Set fields by settings key (``settings/population``, ``constraint``, …)."""
        for key, value in values.items():
            set_field_value(self._saved[key], value)

    def values(self) -> dict[str, Any]:
        return {key: field_value(widget) for key, widget in self._saved.items()}

    # --- reactions and settings ---------------------------------------------------------------

    def _show_fields(self) -> None:
        constraint = self.constraint()
        self._constraint_form.setRowVisible(self.latency_combo, constraint == "latency")
        self._constraint_form.setRowVisible(self.limit_stack, bool(constraint))
        if constraint:
            self.limit_stack.setCurrentWidget(self._limit_spins[constraint])
        two = bool(self.second_combo.currentData())
        self._predictor_form.setRowVisible(self.switch_spin, two)
        self._predictor_form.setRowVisible(self.no_predictor_label, self.first_combo.count() == 0)

    def _restore(self) -> None:
        """Read the saved fields, then save each one whenever it changes."""
        self._settings.beginGroup(SETTINGS_GROUP)
        try:
            for key, widget in self._saved.items():
                if self._settings.contains(key):
                    with contextlib.suppress(TypeError, ValueError):  # a mangled value: default
                        set_field_value(widget, self._settings.value(key))
        finally:
            self._settings.endGroup()
        for key, widget in self._saved.items():
            on_field_change(widget, lambda *_, k=key, w=widget: self._store(k, field_value(w)))

    def _store(self, key: str, value: Any) -> None:
        self._settings.setValue(f"{SETTINGS_GROUP}/{key}", value)
        self._show_fields()
        self.changed.emit()


class SearchPanel(QWidget):
    """The form, the live fronts and the project's searches. It binds to the view state (task,
    selection) and submits to the session's runner; the window puts its actions in a menu."""

    status = Signal(str)  # a message for the status bar

    def __init__(
        self, qsettings: QSettings, view: ViewState, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._settings = qsettings
        self._view = view
        self._session: ProjectSession | None = None
        self._records: dict[int, JobRecord] = {}  # the project's searches by job id
        self._items: dict[int, QTreeWidgetItem] = {}
        self._generations: dict[int, dict[int, SearchGeneration]] = {}  # loaded or arrived
        self._started: set[int] = set()  # submitted from this window: cancellable here
        self._shown: int | None = None  # the search drawn
        self._changed: set[int] = set()  # searches whose events are not shown yet
        self._refresh_timer = QTimer(self, singleShot=True, interval=REFRESH_MS)
        self._refresh_timer.timeout.connect(self._refresh)
        self.form = SearchForm(qsettings)
        self.plot = SearchPlot()
        self.searches = run_list(
            _HEADERS, SEARCH, "The project's searches: select one to draw its generations"
        )
        self.searches.itemSelectionChanged.connect(self._show_selected_search)
        self._build_actions()
        self._build_layout()
        self.form.changed.connect(self._update_buttons)
        view.events.task.connect(self._on_task)

    # --- construction -------------------------------------------------------------------------

    def _build_actions(self) -> None:
        self.run_action = QAction(
            "&Search…",
            self,
            shortcut=QKeySequence("Ctrl+Shift+F"),
            statusTip="Search the task's space for the best architectures under the constraint",
        )
        self.run_action.setToolTip(
            "Run the search set in the Search panel on the current task, as a job "
            f"({self.run_action.shortcut().toString()})"
        )
        self.run_action.triggered.connect(self._run_from_menu)

    def _build_layout(self) -> None:
        scroll = QScrollArea(widgetResizable=True)
        scroll.setWidget(self.form)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(self.form.sizeHint().width() + 20)
        self.problem_label = QLabel(wordWrap=True)
        self.problem_label.setStyleSheet("color: #b00020;")
        self.run_button = QPushButton("Run", toolTip=self.run_action.toolTip())
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip(
            "Stop the search shown; the generations done stay recorded and drawn"
        )
        self.cancel_button.clicked.connect(self.cancel)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(scroll, 1)
        left_layout.addWidget(self.problem_label)
        left_layout.addLayout(button_row(self.run_button, self.cancel_button))
        self.export_button = QPushButton("Export chosen…")
        self.export_button.setToolTip(
            "Write the newest front of the search shown as HAT YAML, JSON or CSV"
        )
        self.export_button.clicked.connect(self._choose_export)
        self.show_button = QPushButton("Show in table")
        self.show_button.setToolTip(
            "Select the newest front of the search shown in the table (and on the Pareto view)"
        )
        self.show_button.clicked.connect(self.show_in_table)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.searches, 1)
        right_layout.addLayout(button_row(self.export_button, self.show_button))
        self.splitter = remembered_splitter(
            self._settings, SPLITTER_KEY, ((left, 0), (self.plot, 1), (right, 0)), [340, 640, 300]
        )
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.splitter)
        self._update_buttons()

    # --- the project --------------------------------------------------------------------------

    def set_session(self, session: ProjectSession | None) -> None:
        """Follow this project's searches (listed from the store) and its job events."""
        if self._session is not None:
            self._session.bridge.job_event.disconnect(self._on_job_event)
            self._session.bridge.submitted.disconnect(self._on_submitted)
        self._session = session
        self.searches.clear()
        self._records.clear()
        self._items.clear()
        self._generations.clear()
        self._started.clear()
        self._shown = None
        self.plot.clear()
        self.form.set_project(session.project if session else None)
        if session is None:
            self._update_buttons()
            return
        session.bridge.job_event.connect(self._on_job_event)
        session.bridge.submitted.connect(self._on_submitted)
        recorded = {row["job_id"]: row for row in session.project.searches()}
        for record in session.project.jobs():
            if record.kind == SEARCH_KIND:
                self._add_search(record)
                if record.id in recorded:
                    row = recorded[record.id]
                    self._show_counts(record.id, row["generations"], row["best_score"])
        self._update_buttons()

    def refresh_predictors(self) -> None:
        """List the stored predictors again (a new one was fitted or trained)."""
        self.form.set_project(self._session.project if self._session else None)
        self._update_buttons()

    # --- user actions -------------------------------------------------------------------------

    def problem(self) -> str | None:
        """Why Run cannot start a search now, or None."""
        if self._session is None or self._view.task is None:
            return "Open a project with a task first."
        return self.form.problem()

    def run(self) -> int | None:
        """Start the search the form describes on the current task; its job id."""
        problem = self.problem()
        if problem is not None:
            self.status.emit(problem)
            return None
        task = self._view.task
        return self._session.submit(
            SEARCH_KIND,
            f"Search {task}: {self.form.describe()}",
            search_job,
            task=task,
            spec=self.form.spec().as_params(),
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

    def chosen_ids(self) -> list[str]:
        """The architectures of the newest front of the search shown."""
        generations = self.plot.generations()
        return list(generations[-1].front) if generations else []

    def show_in_table(self) -> None:
        ids, record = self.chosen_ids(), self._records.get(self._shown)
        if not ids or record is None:
            return
        self._view.task = record.params.get("task", self._view.task)
        self._view.selection = ids
        self.status.emit(f"{len(ids)} architecture(s) of the newest front selected")

    def export_chosen(self, fmt: str, target: str | Path) -> int | None:
        """Export the newest front of the search shown as a job; its id."""
        ids, record = self.chosen_ids(), self._records.get(self._shown)
        if self._session is None or not ids or record is None:
            return None
        return self._session.submit(
            "export",
            f"Export the front of search {record.id} as {fmt}",
            export_job,
            task=record.params.get("task", self._view.task),
            arch_ids=ids,
            fmt=fmt,
            target=str(target),
            x=self._view.x_axis,
        )

    def _choose_export(self) -> None:
        target = ask_export_target(self, len(self.chosen_ids()))
        if target is not None:
            self.export_chosen(*target)

    # --- queries (for tests and tools) --------------------------------------------------------

    def search_ids(self) -> list[int]:
        return list(self._records)

    def shown_search(self) -> int | None:
        return self._shown

    def show_search(self, job_id: int) -> None:
        """Select a search in the list: its generations are drawn."""
        self.searches.setCurrentItem(self._items[job_id])

    # --- job events ---------------------------------------------------------------------------

    def _on_submitted(self, job_id: int) -> None:
        record = self._session.project.job(job_id)
        if record.kind == SEARCH_KIND:
            self._started.add(job_id)
            self._add_search(record)
            self.show_search(job_id)
            self._show_dock()

    def _on_job_event(self, event: JobEvent) -> None:
        if event.kind == "state" and event.state.finished and event.job_id not in self._records:
            self.refresh_predictors()  # a distillation or a supernet may have stored one
        record = self._records.get(event.job_id)
        if record is None or event.kind == "log":
            return
        for generation in _generations_in(event.payload) if event.kind == "partial" else ():
            self._generations.setdefault(event.job_id, {})[generation.generation] = generation
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

    def _refresh(self) -> None:
        """Show what events changed since the last refresh: a search that sends generations
        faster than the eye follows is redrawn a few times a second, not per generation."""
        self._refresh_timer.stop()
        changed, self._changed = self._changed, set()
        for job_id in changed & set(self._records):
            self._update_item(self._records[job_id])
        if self._shown in changed:
            self.plot.set_generations(self._generations.get(self._shown, {}).values())
        self._update_buttons()

    def _report(self, record: JobRecord, event: JobEvent) -> None:
        done = len(self._generations.get(record.id, {}))
        if event.state == JobState.FAILED:
            self.status.emit(f"Search {record.id} failed: {event.payload or event.message}")
        else:
            self.status.emit(
                f"Search {record.id} {event.state.value} after {done} generation(s): "
                f"{event.message}"
            )

    # --- the list of searches -----------------------------------------------------------------

    def _add_search(self, record: JobRecord) -> None:
        self._records[record.id] = record
        item = QTreeWidgetItem([f"#{record.id} {record.title.removeprefix('Search ')}"])
        item.setData(SEARCH, Qt.ItemDataRole.UserRole, record.id)
        self._items[record.id] = item
        self.searches.addTopLevelItem(item)
        self._update_item(record)

    def _update_item(self, record: JobRecord) -> None:
        item = self._items[record.id]
        running = record.state == JobState.RUNNING.value
        set_item_text(
            item, STATE, f"{record.state} {record.progress:.0%}" if running else record.state
        )
        generations = self._generations.get(record.id)
        if generations:
            newest = generations[max(generations)]
            self._show_counts(record.id, len(generations), newest.best.score)
        tip = f"{record.title}\njob {record.id}\n{record.message}"
        if item.toolTip(SEARCH) != tip:
            for column in range(len(_HEADERS)):
                item.setToolTip(column, tip)

    def _show_counts(self, job_id: int, generations: int, best: float) -> None:
        item = self._items[job_id]
        set_item_text(item, GENERATION, f"{generations:,}")
        set_item_text(item, BEST, f"{best:.4g}")

    def _show_selected_search(self) -> None:
        items = self.searches.selectedItems()
        self._shown = items[0].data(SEARCH, Qt.ItemDataRole.UserRole) if items else None
        if self._shown is None:
            self.plot.clear()
        else:
            self.plot.set_generations(self._stored_generations(self._shown).values())
        self._update_buttons()

    def _stored_generations(self, job_id: int) -> dict[int, SearchGeneration]:
        """A search's generations: those recorded, with any that arrived since."""
        known = self._generations.setdefault(job_id, {})
        for generation in self._session.project.search_generations(job_id):
            known.setdefault(generation.generation, generation)
        self._update_item(self._records[job_id])
        return known

    def _on_task(self, _: object) -> None:
        self._update_buttons()

    def _running(self, job_id: int | None) -> bool:
        record = self._records.get(job_id)
        return record is not None and not JobState(record.state).finished

    def _update_buttons(self) -> None:
        problem = self.problem()
        if self.problem_label.text() != (problem or ""):
            self.problem_label.setText(problem or "")
            self.problem_label.setVisible(problem is not None)
        chosen = bool(self._shown is not None and self.chosen_ids())
        for button, enabled in (
            (self.run_button, problem is None),
            (self.cancel_button, self._shown in self._started and self._running(self._shown)),
            (self.export_button, chosen),
            (self.show_button, chosen),
        ):
            if button.isEnabled() != enabled:
                button.setEnabled(enabled)

    def _show_dock(self) -> None:
        dock = self.parentWidget()
        if isinstance(dock, QDockWidget):
            dock.show()
            dock.raise_()


def _generations_in(payload: object) -> list[SearchGeneration]:
    """The generations a 'partial' event carries: the record itself, or in a list."""
    items = payload if isinstance(payload, list | tuple) else [payload]
    return [item for item in items if isinstance(item, SearchGeneration)]


def set_item_text(item: QTreeWidgetItem, column: int, text: str) -> None:
    """Set only a changed text: every Qt call that returns nothing costs a reference to None
    in PySide6 6.12 (see search_plot._Front), and a running job updates its row often."""
    if item.text(column) != text:
        item.setText(column, text)


def run_list(headers: list[str], stretched: int, tip: str) -> QTreeWidget:
    """A list of a panel's runs, one row each, a single one selectable; ``stretched`` is the
    column that takes the spare width."""
    tree = QTreeWidget(toolTip=tip)
    tree.setHeaderLabels(headers)
    tree.setRootIsDecorated(False)
    tree.setUniformRowHeights(True)
    tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    header = tree.header()
    header.setStretchLastSection(False)
    for column in range(len(headers)):
        header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(stretched, QHeaderView.ResizeMode.Stretch)
    return tree


def button_row(*widgets: QWidget) -> QHBoxLayout:
    row = QHBoxLayout()
    for widget in widgets:
        row.addWidget(widget)
    return row
