"""The LLM menu of the main window and what it starts: the prompt editor dock, "Predict with
LLM" (with the editor's prompt, or an llmas prompt from the editor's llmas tab), "Evaluate
prompt", the ablation table and the LLM settings.

Everything that talks to an LLM is a job of the window's runner that runs as a coroutine on the
app's qasync event loop; this module follows those jobs through the session's bridge and shows
the evaluations the project records.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDialog, QDockWidget

from nasstudio.gui import columns
from nasstudio.gui.dialogs import show_error
from nasstudio.gui.llm_dialogs import LLMAS_FIRST_SEED, EvaluateDialog, LlmasFill, PredictDialog
from nasstudio.gui.llm_settings import LLMSettingsDialog
from nasstudio.gui.prompt_editor import PromptEditor
from nasstudio.gui.prompt_evaluations import evaluation_records, normalise_folder
from nasstudio.gui.prompt_tokens import TokenCount, count_tokens
from nasstudio.jobs import JobEvent, JobState
from nasstudio.predict.llm import (
    Demonstration,
    LLMProfile,
    ProfileError,
    ProfileStore,
    Prompt,
    ablation_variants,
    llm_predict_job,
)
from nasstudio.predict.llm.llmas import (
    LlmasTemplate,
    TaskExamples,
    cumulative_ablations,
    train_file_ids,
)
from nasstudio.predict.llm.prompt import task_variables
from nasstudio.predict.prompt_jobs import evaluate_prompts_job
from nasstudio.space import Architecture
from nasstudio.store import BLEU_VALID, GFLOPS, KNOWN_TASKS
from nasstudio.store.importers import ImportFormatError

if TYPE_CHECKING:
    from nasstudio.gui.main_window import MainWindow

PROFILE_KEY = "llm/profile"
SEEDARCHS_KEY = "llm/seedarchs"
EXAMPLES_KEY = "llm/llmas_examples"  # the task-example corpus, Evaluate's and Predict's
LLMAS_SEED_KEY = "llm/llmas_seed"
LLMAS_DEMOS_KEY = "llm/llmas_demos"
DEFAULT_SEEDARCHS = Path("../shared/data/llmpp/seedarchs")
PREDICT_KIND = "predict-llm"
EVALUATE_KIND = "evaluate-llm"
EDITOR_WIDTH = 760


def predicted_column(profile: LLMProfile) -> str:
    """The table column (and Pareto y-axis key) of the profile's predictions."""
    return f"{columns.PREDICTION_PREFIX}{BLEU_VALID}@{profile.predictor_name}"


@dataclass(frozen=True, slots=True)
class _EvaluationJob:
    task: str


@dataclass(frozen=True, slots=True)
class _PredictionJob:
    column: str


class LLMActions(QObject):
    """Owns the prompt editor dock, the LLM menu's actions and the LLM jobs' bookkeeping."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.settings: QSettings = window.settings
        self.view = window.view
        self.profiles = ProfileStore()
        self.editor = PromptEditor(self.settings)
        self.dock = QDockWidget("Prompt editor", window, objectName="prompt_editor")
        self.dock.setWidget(self.editor)
        window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        self.dock.hide()  # until asked for; the window's saved state may show it again
        self._jobs: dict[int, _EvaluationJob | _PredictionJob] = {}
        self._archs: dict[str, Architecture] = {}  # preview's architectures, per project
        self._archs_project: object = None
        self._preview_timer = QTimer(self, singleShot=True, interval=200)
        # Timers of its own: a closed window's pending call dies with it.
        self._sync_timer = QTimer(self, singleShot=True, interval=0)
        self._sync_timer.timeout.connect(self._sync)
        self._preview_timer.timeout.connect(self._update_preview)
        self._build_actions()
        self._connect()
        self._fill_profiles()

    @property
    def window(self) -> MainWindow:
        """The window, looked up rather than held: a reference from here would keep a closed
        window, and all it holds, alive until the cyclic garbage collector runs."""
        return self.parent()

    # --- construction -------------------------------------------------------------------------

    def _action(self, text: str, slot: object, shortcut: str | None, tip: str) -> QAction:
        action = QAction(text, self.window)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        action.setStatusTip(tip)
        action.setToolTip(f"{tip} ({shortcut})" if shortcut else tip)
        action.triggered.connect(slot)
        return action

    def _build_actions(self) -> None:
        self.editor_action = self.dock.toggleViewAction()
        self.editor_action.setText("&Prompt editor")
        self.editor_action.setShortcut(QKeySequence("Ctrl+Shift+P"))
        self.editor_action.setToolTip("Show or hide the LLM-PP prompt editor (Ctrl+Shift+P)")
        self.predict_action = self._action(
            "Predict with &LLM…",
            self.predict,
            "Ctrl+L",
            "Predict the BLEU of the selected architectures (or all of the task) with the LLM",
        )
        self.evaluate_action = self._action(
            "&Evaluate prompt…",
            lambda: self.evaluate(ablations=False),
            "Ctrl+Shift+E",
            "Score the editor's prompt and the stored baselines on a seedarchs folder",
        )
        self.ablation_action = self._action(
            "Evaluate &ablations…",
            lambda: self.evaluate(ablations=True),
            None,
            "Evaluate every ablation variant of the editor's prompt, in one table",
        )
        self.settings_action = self._action(
            "LLM &settings…", self.open_settings, None, "Profiles, API keys, Test connection"
        )
        menu = self.window.menuBar().addMenu("&LLM")
        menu.addAction(self.editor_action)
        menu.addSeparator()
        menu.addActions([self.predict_action, self.evaluate_action, self.ablation_action])
        menu.addSeparator()
        menu.addAction(self.settings_action)
        self.menu = menu

    def _connect(self) -> None:
        self.window.project_opened.connect(self._on_project_opened)
        model = self.window.browser.model
        model.modelReset.connect(self._on_table)
        # A reload that only adds or changes rows does not reset the model.
        model.rowsInserted.connect(self._schedule_preview)
        model.dataChanged.connect(self._schedule_preview)
        self.view.events.current.connect(self._schedule_preview)
        self.dock.visibilityChanged.connect(self._on_dock_visibility)
        self.editor.evaluate_requested.connect(self.evaluate_action.trigger)
        self.editor.ablation_requested.connect(self.ablation_action.trigger)
        self.editor.settings_requested.connect(self.open_settings)
        self.editor.profile_chosen.connect(self.choose_profile)
        self.editor.llmas_predict_requested.connect(self.predict_with_llmas)
        self.editor.status.connect(lambda text: self.window.statusBar().showMessage(text, 10000))
        self.editor.saved.connect(lambda _: self._show_evaluations())
        self.editor.evaluations.task_combo.currentTextChanged.connect(
            lambda task: self._show_evaluations(task or None)
        )

    # --- profiles -----------------------------------------------------------------------------

    def _profile_map(self) -> dict[str, LLMProfile]:
        try:
            return self.profiles.load()
        except ProfileError as exc:
            self.window.statusBar().showMessage(str(exc), 15000)
            return {}

    def profile(self) -> LLMProfile | None:
        """The chosen profile (remembered in QSettings), else the first one."""
        profiles = self._profile_map()
        name = self.view.profile or self.settings.value(PROFILE_KEY)
        return profiles.get(name) or next(iter(profiles.values()), None)

    def _fill_profiles(self) -> None:
        profile = self.profile()
        self.editor.set_profiles(list(self._profile_map()), profile.name if profile else None)
        self.editor.set_model(profile.model if profile else "")

    def choose_profile(self, name: str) -> None:
        """Use the profile ``name`` for predictions and evaluations (remembered)."""
        self.settings.setValue(PROFILE_KEY, name)
        self.view.profile = name
        self._fill_profiles()

    def open_settings(self) -> LLMSettingsDialog:
        """The settings dialog (modal, not blocking); OK makes its profile the chosen one."""
        current = self.profile()
        dialog = LLMSettingsDialog(self.profiles, current.name if current else None, self.window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def done(result: int) -> None:
            if result == QDialog.DialogCode.Accepted and dialog.current_name():
                self.choose_profile(dialog.current_name())
            else:
                self._fill_profiles()  # profiles may have been added, renamed or deleted

        dialog.finished.connect(done)
        dialog.open()
        return dialog

    # --- context and preview ------------------------------------------------------------------

    def _on_table(self) -> None:
        # modelReset comes while the window is still handing out the new table: act after it.
        self._sync_timer.start()

    def _sync(self) -> None:
        project, task = self.window.project, self.view.task
        if project is not self._archs_project:
            self._archs, self._archs_project = {}, project
        if (project, task) != (self.editor.project, self.editor.task):
            self.editor.set_context(project, task)
            self._show_evaluations(task)
        self._schedule_preview()

    def _on_dock_visibility(self, visible: bool) -> None:
        if visible:
            self._sync()
            width = max(self.dock.width(), EDITOR_WIDTH)
            self.window.resizeDocks([self.dock], [width], Qt.Orientation.Horizontal)

    def _schedule_preview(self, *_: object) -> None:
        if self.dock.isVisible():
            self._preview_timer.start()

    def _update_preview(self) -> None:
        query, pool, note = self._preview_data()
        self.editor.set_preview_data(query, pool, note)

    def _arch(self, arch_id: str) -> Architecture:
        if arch_id not in self._archs:
            self._archs[arch_id] = self.window.project.architecture(arch_id)
        return self._archs[arch_id]

    def _preview_data(self) -> tuple[Demonstration | None, list[Demonstration], str]:
        """The query (the browser's current row, else its first) and the architectures with
        measured BLEU, read from the table the browser already holds."""
        model = self.window.browser.model
        if self.window.project is None or not model.total_count() or GFLOPS not in model.keys:
            return None, [], "No architectures in this task: nothing to preview."
        ids = model.values(columns.ID)
        gflops = model.values(GFLOPS) / columns.scale(GFLOPS)
        pool = []
        if BLEU_VALID in model.keys:
            bleu = model.values(BLEU_VALID) / columns.scale(BLEU_VALID)
            for i in np.flatnonzero(np.isfinite(bleu) & np.isfinite(gflops)):
                pool.append(Demonstration(self._arch(ids[i]), float(gflops[i]), float(bleu[i])))
        query_id, why = self.view.current, "the table's current row"
        if query_id not in ids:  # none, or one of the task shown before
            first = model.ids_at(np.array([0]))[0] if model.rowCount() else ids[0]
            query_id, why = first, "the table's first row"
        position = int(np.flatnonzero(ids == query_id)[0])
        query = Demonstration(self._arch(query_id), float(gflops[position]))
        note = (
            f"Query: {query_id} ({why}); demonstrations drawn from {len(pool):,} "
            "architectures with measured BLEU"
        )
        return query, pool, note

    def token_count(self, profile: LLMProfile) -> TokenCount | None:
        """Input tokens of the editor's prompt for the preview's query (for cost estimates)."""
        prompt = self.editor.prompt()
        query, pool, _ = self._preview_data()
        if prompt is None or query is None:
            return None
        return count_tokens(prompt.messages(query, pool), profile.model)

    # --- jobs -----------------------------------------------------------------------------------

    def _on_project_opened(self) -> None:
        """Follow the new session's jobs (the old session's bridge went with it)."""
        self._jobs.clear()
        self.window.session.bridge.job_event.connect(self._on_event)

    def _ready(self, editor_prompt: bool = True) -> tuple[LLMProfile, Prompt | None] | None:
        """The profile and the editor's prompt (None unless ``editor_prompt``: the caller has a
        prompt of its own), or None after saying what is missing."""
        self._sync()
        problem = None
        profile = self.profile()
        prompt = self.editor.prompt() if editor_prompt else None
        if self.window.session is None or self.view.task is None:
            problem = "Open a project with a task first."
        elif profile is None:
            problem = "No LLM profile: add one in LLM ▸ LLM settings…"
        elif editor_prompt and prompt is None:
            problem = f"The prompt cannot be rendered: {self.editor.error()}"
        if problem:
            self._show_error("LLM", problem)
            return None
        return profile, prompt

    def _show_error(self, title: str, message: str) -> None:
        show_error(self.window, title, message)

    def predict(self) -> int | None:
        """Ask how to predict the selection (or the whole task), then start the job."""
        ready = self._ready()
        if ready is None:
            return None
        profile, _ = ready
        ids, scope = self._predicted_ids()
        if not ids:
            self._show_error("Predict with LLM", "This task has no architectures.")
            return None
        dialog = PredictDialog(len(ids), scope, profile, self.token_count(profile), self.window)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        return self.start_prediction(ids, dialog.samples(), dialog.use_cache())

    def _predicted_ids(self) -> tuple[list[str], str]:
        """The selection, else every architecture of the task, and which it is."""
        if self.view.selection:
            return list(self.view.selection), "the selection"
        return self._task_ids(), f"all of {self.view.task}"

    def predict_with_llmas(self, template: LlmasTemplate) -> int | None:
        """Ask how to fill ``template`` (the task-example corpus and seed, optionally a seed's
        train.jsonl as the demonstrations; remembered, the corpus with Evaluate's) and predict
        the selection (or the whole task) with it."""
        ready = self._ready(editor_prompt=False)
        if ready is None:
            return None
        profile, _ = ready
        title = "Predict with an llmas prompt"
        if template.task != self.view.task:
            self._show_error(
                title,
                f"The llmas prompt {template.name} is task {template.task}'s: show that task's "
                f"architectures to predict them (the table shows {self.view.task}'s).",
            )
            return None
        ids, scope = self._predicted_ids()
        if not ids:
            self._show_error(title, "This task has no architectures.")
            return None
        remembered = self.settings.value(EXAMPLES_KEY)
        fill = LlmasFill(
            tuple(remembered) if remembered else None,
            int(self.settings.value(LLMAS_SEED_KEY, LLMAS_FIRST_SEED)),
            str(self.settings.value(LLMAS_DEMOS_KEY, "")),
        )
        name = f"{template.name} ({template.version})"
        dialog = PredictDialog(len(ids), scope, profile, None, self.window, (name, fill))
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        fill = dialog.llmas_fill()
        if fill.examples is None:
            return None
        self.settings.setValue(EXAMPLES_KEY, list(fill.examples))
        self.settings.setValue(LLMAS_SEED_KEY, fill.seed)
        self.settings.setValue(LLMAS_DEMOS_KEY, fill.demos)
        demo_ids = None
        if fill.demos:
            try:
                demo_ids = train_file_ids(fill.demos, self.window.project.task(template.task))
            except (ImportFormatError, OSError) as exc:
                self._show_error(title, f"The demonstrations cannot be read: {exc}")
                return None
        filled = template.filled_with(TaskExamples(*fill.examples), fill.seed)
        return self.start_prediction(
            ids, dialog.samples(), dialog.use_cache(), prompt=filled, demo_ids=demo_ids
        )

    def _task_ids(self) -> list[str]:
        model = self.window.browser.model
        return model.values(columns.ID).tolist() if model.total_count() else []

    def start_prediction(
        self,
        arch_ids: list[str] | None = None,
        samples: int = 1,
        use_cache: bool = True,
        prompt: LlmasTemplate | None = None,
        demo_ids: list[str] | None = None,
    ) -> int | None:
        """Predict ``arch_ids`` (default: every architecture of the task) with the chosen
        profile and ``prompt`` (default: the editor's), its demonstrations ``demo_ids`` when
        given, as a job; the Pareto view switches its y axis to the predictions, which appear
        as they are recorded."""
        ready = self._ready(editor_prompt=prompt is None)
        if ready is None:
            return None
        profile, editor_prompt = ready
        prompt = prompt or editor_prompt
        ids = list(arch_ids) if arch_ids else self._task_ids()
        task = self.view.task
        job_id = self.window.session.submit(
            PREDICT_KIND,
            f"LLM-PP: {len(ids):,} architectures of {task} with {profile.predictor_name}",
            llm_predict_job,
            task=task,
            arch_ids=ids,
            profile=profile,
            prompt=prompt,
            samples=samples,
            demo_ids=demo_ids,
            use_cache=use_cache,
        )
        column = predicted_column(profile)
        self._jobs[job_id] = _PredictionJob(column)
        self.view.y_axis = column
        self.window.statusBar().showMessage(
            f"Predicting {len(ids):,} architectures; the Pareto view shows "
            f"{columns.label(column)} as they arrive",
            10000,
        )
        return job_id

    def seedarchs_folder(self) -> str:
        """The remembered seedarchs folder, else ../shared/data/llmpp/seedarchs when present."""
        remembered = self.settings.value(SEEDARCHS_KEY)
        if remembered:
            return str(remembered)
        return str(DEFAULT_SEEDARCHS.resolve()) if DEFAULT_SEEDARCHS.is_dir() else ""

    def evaluate(self, ablations: bool = False) -> None:
        """Ask for the seedarchs folder and task, then start the evaluation job."""
        ready = self._ready()
        if ready is None:
            return
        _, prompt = ready
        what = (
            "every ablation variant of the editor's prompt"
            if ablations
            else ("the editor's prompt")
        )
        note = (
            f"Predicts each seed's 20 test architectures with its train architectures as the "
            f"demonstrations, for {what}, and scores the stored baselines too. On another task "
            f"than {prompt.task}, the sections are filled with that task's placeholders."
        )
        if ablations:
            note += (
                " llmas's templates imported for the task (its cumulative ablation) draw their "
                "task examples from the corpus given."
            )
        title = "Evaluate ablations" if ablations else "Evaluate prompt"
        remembered = self.settings.value(EXAMPLES_KEY)
        dialog = EvaluateDialog(
            self.seedarchs_folder(),
            prompt.task,
            title,
            note,
            self.window,
            tuple(remembered) if remembered else None,
        )
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.start_evaluation(dialog.folder(), dialog.task(), ablations, dialog.examples())

    def _prompt_for(self, prompt: Prompt, task: str) -> Prompt | None:
        """The editor's sections filled for ``task`` (the same prompt on its own task)."""
        if task == prompt.task:
            return prompt
        spec = (self.window.project and self.window.project.task(task)) or KNOWN_TASKS.get(task)
        if spec is None:
            return None
        name = f"{prompt.name} on {task}"
        return replace(prompt, task=task, variables=task_variables(spec), examples=(), name=name)

    def start_evaluation(
        self,
        folder: str,
        task: str,
        ablations: bool = False,
        examples: tuple[str, str] | None = None,
    ) -> int | None:
        """Evaluate the editor's prompt (and its ablation variants: the leave-one-out ones,
        and llmas's cumulative templates imported for ``task``, which draw their task examples
        from the ``examples`` corpus) on ``task`` of the seedarchs ``folder``, with the stored
        baselines, as one job."""
        ready = self._ready()
        if ready is None:
            return None
        profile, editor_prompt = ready
        prompt = self._prompt_for(editor_prompt, task)
        if prompt is None:
            self._show_error("Evaluate", f"'{task}' is neither a task of the project nor known.")
            return None
        prompts = [("", prompt)]
        if ablations:
            cumulative = cumulative_ablations(self.window.project, task)
            if cumulative and examples is None:
                self._show_error(
                    "Evaluate ablations",
                    f"llmas's templates of {task} show 5 task examples drawn from a parallel "
                    "corpus: give its source and target files (Task examples).",
                )
                return None
            prompts += ablation_variants(prompt)
            # Seed 0 is a placeholder: the evaluation draws with each seed of the folder.
            prompts += [(v, t.filled_with(TaskExamples(*examples), 0)) for v, t in cumulative]
        if examples is not None:
            self.settings.setValue(EXAMPLES_KEY, list(examples))
        self.settings.setValue(SEEDARCHS_KEY, normalise_folder(folder))
        kind = "ablations" if ablations else "prompt"
        job_id = self.window.session.submit(
            EVALUATE_KIND,
            f"Evaluate {kind} {prompt.version} with {profile.predictor_name} on {task}",
            evaluate_prompts_job,
            folder=folder,
            task=task,
            profile=profile,
            prompts=prompts,
        )
        self._jobs[job_id] = _EvaluationJob(task)
        self.dock.show()
        self.editor.tabs.setCurrentWidget(self.editor.evaluations)
        self._show_evaluations(task)
        return job_id

    def _on_event(self, event: JobEvent) -> None:
        job = self._jobs.get(event.job_id)
        if job is None:
            return
        if isinstance(job, _EvaluationJob):
            if event.kind == "partial" or event.state.finished:
                self._show_evaluations(job.task)  # the runner has recorded what changed
            if event.kind == "state" and event.state.finished:
                self._on_evaluation_end(job, event)
        elif event.kind == "state" and event.state.finished:
            self._on_prediction_end(job, event)
        if event.kind == "state" and event.state.finished:
            del self._jobs[event.job_id]

    def _on_prediction_end(self, job: _PredictionJob, event: JobEvent) -> None:
        if event.state == JobState.FAILED:
            self._show_error("Predict with LLM failed", str(event.payload or event.message))
            return
        self.window.statusBar().showMessage(
            f"Predict with LLM {event.state.value}: {event.message} "
            f"(y axis: {columns.label(job.column)})",
            15000,
        )

    def _on_evaluation_end(self, job: _EvaluationJob, event: JobEvent) -> None:
        if event.state == JobState.FAILED:
            self._show_error("Evaluation failed", str(event.payload or event.message))
        else:
            self.window.statusBar().showMessage(
                f"Evaluation on {job.task} {event.state.value}: see the prompt editor's "
                "Evaluation tab",
                15000,
            )

    def _show_evaluations(self, task: str | None = None) -> None:
        """Fill the Evaluation tab (``task``, else the one it shows, else the editor's) and the
        history's per-version summaries from the evaluations the project holds."""
        panel, project = self.editor.evaluations, self.window.project
        folder = self.settings.value(SEEDARCHS_KEY) or self.seedarchs_folder()
        task = task or panel.task() or self.editor.task
        if not folder or task is None or project is None:
            return
        records = evaluation_records(project, folder=folder)
        panel.set_tasks(sorted({r.task for r in records} | {task}), task)
        prompt = self.editor.prompt()
        # The editor's sections on another task render (and version) with its placeholders.
        prompt = self._prompt_for(prompt, task) if prompt is not None else None
        version = prompt.version if prompt is not None else None
        panel.show_records(
            normalise_folder(folder), [r for r in records if r.task == task], version
        )
        notes = {
            r.version: r.summary()
            for r in records
            if r.task == (self.editor.task or task) and r.version and r.finished
        }
        self.editor.set_version_notes(notes)


def install_llm_ui(window: MainWindow) -> LLMActions:
    """Add the LLM menu and the prompt editor dock to ``window``."""
    return LLMActions(window)
