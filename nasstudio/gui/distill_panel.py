"""The Distill panel: label architectures with LLM-PP (profile, prompt version, how many, what it
will cost), fit llmas's regressor on the labels (LLM-Distill-PP) or on measured BLEU (a fitted
predictor) as a job, and its evaluation beside LLM-PP's and the baselines'."""

from __future__ import annotations

import pandas as pd
from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import signals_blocked

from nasstudio.gui.dialogs import show_error
from nasstudio.gui.llm_actions import DEFAULT_SEEDARCHS, PROFILE_KEY, SEEDARCHS_KEY
from nasstudio.gui.prompt_evaluations import EvaluationPanel, evaluation_records, normalise_folder
from nasstudio.gui.prompt_tokens import count_tokens
from nasstudio.gui.session import ProjectSession
from nasstudio.gui.table_loader import TableSnapshot
from nasstudio.gui.view_state import ViewState
from nasstudio.jobs import JobEvent, JobState
from nasstudio.predict.distill import FitSettings, distilled_path
from nasstudio.predict.distill_jobs import (
    DISTILL_KIND,
    PREDICTED,
    choose_unlabelled,
    default_name,
    distill_job,
    labelling_cost,
    llm_label_columns,
)
from nasstudio.predict.evaluate import seedarchs_tasks
from nasstudio.predict.llm import (
    LLMProfile,
    ProfileError,
    ProfileStore,
    TaskArchitectures,
    llm_predict_job,
)
from nasstudio.predict.llm.llmas import is_llmas
from nasstudio.predict.llm.prompt import Prompt, current_prompt, load_prompt
from nasstudio.store import BLEU_VALID, GFLOPS
from nasstudio.store.importers import ImportFormatError

LABEL_KIND = "predict-llm"
COMBO_CHARACTERS = 18
_DEFAULTS = FitSettings()


class DistillPanel(QWidget):
    """Profile, prompt and how many to label; what to fit on and how; Fit; the evaluation table
    of the task on the seedarchs folder."""

    status = Signal(str)  # a message for the status bar

    def __init__(self, settings: QSettings, view: ViewState, parent: QWidget | None = None):
        super().__init__(parent)
        self.settings, self.view = settings, view
        self.profiles = ProfileStore()
        self._session: ProjectSession | None = None
        self._labelling: dict[int, dict] = {}  # labelling jobs: the fit each is followed by
        self._fitting: dict[int, str] = {}  # fit jobs: the predictor each stores
        self._tokens: dict[tuple, tuple[int, bool]] = {}  # one prompt's input tokens, per choice
        self._prompts: dict[str, Prompt] = {}  # the prompt choices, by version
        self._snapshot: TableSnapshot | None = None  # a task's table, as the window loaded it
        self.profile_combo = QComboBox(toolTip="LLM profile that labels (LLM ▸ LLM settings…)")
        self.prompt_combo = QComboBox(toolTip="Prompt version the LLM labels with")
        self.label_spin = QSpinBox(
            minimum=0,
            maximum=1_000_000,
            singleStep=100,
            suffix=" architectures",
            toolTip="Architectures of the task the LLM has not predicted yet to label first "
            "(0: fit on the labels the project has)",
        )
        self.estimate_label = QLabel(wordWrap=True)
        self.estimate_label.setStyleSheet("color: #555")
        self.labels_combo = QComboBox(toolTip="The column fitted on: an LLM's or measured BLEU")
        self.name_edit = QLineEdit(
            placeholderText="name", toolTip="Name to store it under, beside the project"
        )
        self.steps_spin = QSpinBox(
            minimum=1, maximum=1_000_000, value=_DEFAULTS.steps, toolTip="Adam steps (llmas: 5000)"
        )
        self.rate_spin = QDoubleSpinBox(
            decimals=6,
            minimum=1e-6,
            maximum=1.0,
            singleStep=1e-5,
            value=_DEFAULTS.learning_rate,
            toolTip="Adam's learning rate (llmas: 0.00001)",
        )
        self.hidden_spin = QSpinBox(
            minimum=1, maximum=4096, value=_DEFAULTS.hidden_dim, toolTip="Units a layer (400)"
        )
        self.ensemble_spin = QSpinBox(
            minimum=1,
            maximum=20,
            value=len(_DEFAULTS.seeds),
            toolTip="Networks fitted with different seeds; their spread is the std",
        )
        self.mean_check = QCheckBox(
            "Start at the labels' mean",
            toolTip="Fewer steps needed; llmas's output starts near 0",
        )
        self.seedarchs_edit = QLineEdit(
            toolTip="A seedarchs folder: the predictor is scored on its test architectures, as "
            "LLM-PP is (empty: not scored)"
        )
        self.fit_button = QPushButton("Fit", toolTip="Label (when asked), then fit, as jobs")
        self.state_label = QLabel(wordWrap=True)
        self.evaluations = EvaluationPanel()
        for combo in (self.profile_combo, self.prompt_combo, self.labels_combo):
            # Long column names and versions must not widen the dock (and the window).
            combo.setSizeAdjustPolicy(
                QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
            )
            combo.setMinimumContentsLength(COMBO_CHARACTERS)
        self._build_layout()
        self.label_spin.valueChanged.connect(self._update_estimate)
        self.profile_combo.currentTextChanged.connect(self._on_profile)
        self.prompt_combo.currentIndexChanged.connect(self._update_estimate)
        self.labels_combo.currentIndexChanged.connect(self._suggest_name)
        self.name_edit.textChanged.connect(self._update_button)
        self.seedarchs_edit.editingFinished.connect(self.show_evaluations)
        self.fit_button.clicked.connect(self.fit)
        self.view.events.task.connect(self._on_task)

    def _build_layout(self) -> None:
        label = QFormLayout()
        label.addRow("LLM profile", self.profile_combo)
        label.addRow("Prompt", self.prompt_combo)
        label.addRow("Label first", self.label_spin)
        label.addRow(self.estimate_label)
        fit = QFormLayout()
        fit.addRow("Fit on", self.labels_combo)
        fit.addRow("Name", self.name_edit)
        fit.addRow("Steps", self.steps_spin)
        fit.addRow("Learning rate", self.rate_spin)
        fit.addRow("Units a layer", self.hidden_spin)
        fit.addRow("Ensemble", self.ensemble_spin)
        fit.addRow("", self.mean_check)
        fit.addRow("Seedarchs", self.seedarchs_edit)
        buttons = QHBoxLayout()
        buttons.addWidget(self.fit_button)
        buttons.addWidget(self.state_label, 1)
        left = QVBoxLayout()
        left.addLayout(label)
        left.addLayout(fit)
        left.addLayout(buttons)
        left.addStretch(1)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(left)
        layout.addWidget(self.evaluations, 1)

    # --- the project --------------------------------------------------------------------------

    def set_session(self, session: ProjectSession | None) -> None:
        self._session = session
        self._labelling.clear()
        self._fitting.clear()
        self._snapshot = None
        if session is not None:
            session.bridge.job_event.connect(self._on_job_event)
            session.loader.loaded.connect(self._on_table)
        if not self.seedarchs_edit.text():
            remembered = self.settings.value(SEEDARCHS_KEY)
            default = str(DEFAULT_SEEDARCHS.resolve()) if DEFAULT_SEEDARCHS.is_dir() else ""
            self.seedarchs_edit.setText(str(remembered or default))
        self.refresh()

    @property
    def _table(self) -> pd.DataFrame | None:
        """The shown task's table, None until the window has loaded it."""
        snapshot = self._snapshot
        return snapshot.table if snapshot and snapshot.task == self.view.task else None

    def _on_table(self, snapshot: TableSnapshot) -> None:
        """The task's table, read in the window's reader process (not on the GUI thread)."""
        if snapshot.task == self.view.task:
            self._snapshot = snapshot
            self._tokens.clear()
            self._fill(self.labels_combo, self._label_choices(), self.labels_combo.currentData())
            self._update_estimate()

    def _on_task(self, _task: str | None) -> None:
        self.refresh()

    def refresh(self) -> None:
        """Read the profiles, the task's prompts and label columns again, keeping the choices."""
        self._tokens.clear()
        self._fill(self.profile_combo, [(n, n) for n in self._profile_map()], self._profile_name())
        self._fill(self.prompt_combo, self._prompt_choices(), self.prompt_combo.currentData())
        self._fill(self.labels_combo, self._label_choices(), self.labels_combo.currentData())
        self._suggest_name()
        self.show_evaluations()

    @staticmethod
    def _fill(combo: QComboBox, choices: list[tuple[str, object]], keep: object) -> None:
        with signals_blocked(combo):
            combo.clear()
            for text, data in choices:
                combo.addItem(text, data)
            combo.setCurrentIndex(max(combo.findData(keep), 0))

    def _profile_map(self) -> dict[str, LLMProfile]:
        try:
            return self.profiles.load()
        except ProfileError as exc:
            self.status.emit(str(exc))
            return {}

    def _profile_name(self) -> str | None:
        return (
            self.profile_combo.currentText()
            or self.view.profile
            or self.settings.value(PROFILE_KEY)
        )

    def profile(self) -> LLMProfile | None:
        return self._profile_map().get(self.profile_combo.currentText())

    def _prompt_choices(self) -> list[tuple[str, object]]:
        """The task's current prompt, then its other stored project prompts (an llmas template
        needs a task-example corpus to fill: predict with it from the prompt editor)."""
        task = self.view.task
        if self._session is None or task is None:
            return []
        project = self._session.project
        current = current_prompt(project, task)  # the default one is not stored until used
        self._prompts = {current.version: current}
        choices = [(f"current: {current.name} · {current.version}", current.version)]
        for record in project.prompts():
            sections, version = record["sections"], record["version"]
            if (
                sections.get("task") == task
                and not is_llmas(sections)
                and version != current.version
            ):
                self._prompts[version] = load_prompt(project, version)
                choices.append((f"{record['name']} · {version}", version))
        return choices

    def prompt(self) -> Prompt | None:
        return self._prompts.get(self.prompt_combo.currentData())

    def _label_choices(self) -> list[tuple[str, object]]:
        """The task's LLM columns with how many labels each has, then measured BLEU."""
        table = self._table
        if table is None:
            return []
        choices = [
            (f"{column} ({count:,} labels)", column)
            for column, count in llm_label_columns(table).items()
        ]
        measured = int(table[BLEU_VALID].notna().sum()) if BLEU_VALID in table.columns else 0
        choices.append((f"{BLEU_VALID}, measured ({measured:,}): a fitted predictor", BLEU_VALID))
        return choices

    def _on_profile(self, name: str) -> None:
        self._suggest_name()
        self._update_estimate()

    def labels_column(self) -> str | None:
        """What the fit is on: the chosen profile's column when labelling first."""
        if self.label_spin.value() > 0:
            profile = self.profile()
            return PREDICTED + profile.predictor_name if profile else None
        return self.labels_combo.currentData()

    def _suggest_name(self) -> None:
        column = self.labels_column()
        if column and not (self.name_edit.isModified() and self.name_edit.text()):
            self.name_edit.setText(default_name(column))
        self._update_button()

    # --- the estimate -------------------------------------------------------------------------

    def _update_estimate(self) -> None:
        self._suggest_name()
        count = self.label_spin.value()
        profile, prompt = self.profile(), self.prompt()
        if count == 0 or profile is None or prompt is None:
            self.estimate_label.setText(
                "" if count == 0 else "Choose an LLM profile (LLM ▸ LLM settings…) and a prompt."
            )
            return
        if self._table is None:
            self.estimate_label.setText("The task's table is loading…")
            return
        ids = self._to_label(profile, count)
        tokens = self._prompt_tokens(profile, prompt, ids[:1])
        if tokens is None:
            self.estimate_label.setText("Every architecture of the task has this LLM's label.")
            return
        fewer = f" (the task has only {len(ids):,} unlabelled)" if len(ids) < count else ""
        cost = labelling_cost(profile, len(ids), *tokens)
        self.estimate_label.setText(f"Labelling: {cost}{fewer}.")

    def _to_label(self, profile: LLMProfile, count: int) -> list[str]:
        column = PREDICTED + profile.predictor_name
        return choose_unlabelled(self._table, column, count, seed=0)

    def _prompt_tokens(
        self, profile: LLMProfile, prompt: Prompt, first: list[str]
    ) -> tuple[int, bool] | None:
        """One request's input tokens (and whether exact), from the first architecture's
        prompt, as the Predict dialog estimates."""
        if not first:
            return None
        key = (self.view.task, profile.model, prompt.version)
        if key not in self._tokens:
            known = self._known(first)
            (query,) = known.queries(first)
            count = count_tokens(prompt.messages(query, known.demonstrations()), profile.model)
            self._tokens[key] = (count.tokens, count.exact)
        return self._tokens[key]

    def _known(self, first: list[str]) -> TaskArchitectures:
        """What a prompt for ``first`` is made of, from the loaded table: its GFLOPs and the
        architectures with measured BLEU (the demonstrations)."""
        table, project = self._table, self._session.project
        measured = table[BLEU_VALID].dropna() if BLEU_VALID in table.columns else table.iloc[:0, 0]
        archs = {i: project.architecture(i) for i in dict.fromkeys([*first, *measured.index])}
        gflops = table[GFLOPS].astype(float).to_dict()
        return TaskArchitectures(self.view.task, archs, gflops, measured.astype(float).to_dict())

    # --- fitting ------------------------------------------------------------------------------

    def _problem(self) -> str | None:
        if self._session is None or self.view.task is None:
            return "no project or task open"
        if self.labels_column() is None:
            return "choose an LLM profile to label with, or a column to fit on"
        if self._table is None:
            return "the task's table is loading"
        try:
            distilled_path(self._session.project.path, self.name_edit.text())
        except ValueError as exc:
            return str(exc)
        return None

    def _update_button(self) -> None:
        problem = self._problem()
        self.fit_button.setEnabled(problem is None)
        self.fit_button.setToolTip(problem or "Label (when asked), then fit, as jobs")

    def _fit_params(self) -> dict:
        folder = self.seedarchs_edit.text().strip()
        scored = bool(folder) and self._has_task(folder)
        if scored:
            self.settings.setValue(SEEDARCHS_KEY, normalise_folder(folder))
        return {
            "task": self.view.task,
            "labels_column": self.labels_column(),
            "name": self.name_edit.text(),
            "settings": FitSettings(
                steps=self.steps_spin.value(),
                learning_rate=self.rate_spin.value(),
                hidden_dim=self.hidden_spin.value(),
                seeds=tuple(range(self.ensemble_spin.value())),
                start_at_mean=self.mean_check.isChecked(),
            ),
            "seedarchs": normalise_folder(folder) if scored else None,
        }

    def _has_task(self, folder: str) -> bool:
        try:
            return self.view.task in seedarchs_tasks(folder)
        except (ImportFormatError, OSError):
            return False

    def fit(self) -> int | None:
        """Label first when asked, then fit; returns the first job's id."""
        if self._problem() is not None:
            return None
        params = self._fit_params()
        count = self.label_spin.value()
        if count == 0:
            return self._submit_fit(params)
        profile, prompt = self.profile(), self.prompt()
        ids = self._to_label(profile, count)
        if not ids or prompt is None:
            show_error(self, "Distill", "Nothing to label: every architecture has this label.")
            return None
        job_id = self._session.submit(
            LABEL_KIND,
            f"LLM-PP labels: {len(ids):,} architectures of {params['task']} with "
            f"{profile.predictor_name}",
            llm_predict_job,
            task=params["task"],
            arch_ids=ids,
            profile=profile,
            prompt=prompt,
        )
        self._labelling[job_id] = params
        self.state_label.setText(f"labelling {len(ids):,} architectures")
        return job_id

    def _submit_fit(self, params: dict) -> int:
        name = params["name"]
        job_id = self._session.submit(
            DISTILL_KIND,
            f"Distil {params['labels_column']} of {params['task']} into '{name}'",
            distill_job,
            **params,
        )
        self._fitting[job_id] = name
        self.state_label.setText(f"'{name}' queued")
        return job_id

    def _on_job_event(self, event: JobEvent) -> None:
        if event.job_id in self._labelling:
            self._on_labelling(event)
        elif event.job_id in self._fitting:
            self._on_fitting(event)

    def _on_labelling(self, event: JobEvent) -> None:
        if not (event.kind == "state" and event.state.finished):
            if event.kind == "progress":
                self.state_label.setText(f"labelling: {event.message}")
            return
        params = self._labelling.pop(event.job_id)
        if event.state == JobState.DONE:
            self._submit_fit(params)
        else:
            self.state_label.setText(f"labelling {event.state.value}: nothing fitted")

    def _on_fitting(self, event: JobEvent) -> None:
        name = self._fitting[event.job_id]
        if event.kind == "progress":
            self.state_label.setText(f"'{name}': {event.progress:.0%} {event.message}")
        elif event.kind == "state" and event.state.finished:
            del self._fitting[event.job_id]
            self.state_label.setText(f"'{name}': {event.state.value}")
            self.refresh()
            if event.state == JobState.DONE:
                self.status.emit(f"distilled predictor '{name}' stored and its predictions added")
            elif event.payload:  # the error
                show_error(self, "Predictor not fitted", f"{name}: {event.payload}")

    # --- the evaluation table -----------------------------------------------------------------

    def show_evaluations(self) -> None:
        """The task's evaluations on the seedarchs folder: the baselines, LLM-PP's prompts and
        the distilled and fitted predictors."""
        folder, task = self.seedarchs_edit.text().strip(), self.view.task
        if self._session is None or not folder or task is None:
            self.evaluations.show_records("", [], None)
            return
        records = evaluation_records(self._session.project, task, folder)
        self.evaluations.set_tasks([task], task)
        self.evaluations.show_records(normalise_folder(folder), records, None)
