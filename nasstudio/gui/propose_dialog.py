"""LLM ▸ Propose with LLM…: ask the LLM for architectures at a GFLOPs target with llmas's
search-agent template (``default_flops``); the valid ones land in the task with origin
``llm-proposed``, each rejected one is named with why in the job log.

The dialog asks for what ``propose_job`` needs and remembers it; the request runs as a job of the
window's runner, on the app's event loop like every LLM job.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, QSettings, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from nasstudio.gui import columns
from nasstudio.gui.dialogs import show_error
from nasstudio.gui.llm_actions import EXAMPLES_KEY
from nasstudio.gui.llm_dialogs import (
    EXAMPLES_TIP,
    LLMAS_FIRST_SEED,
    example_fields,
    examples_of,
    note_label,
    ok_cancel_buttons,
)
from nasstudio.jobs import JobEvent, JobState
from nasstudio.predict.llm import LLMProfile
from nasstudio.predict.llm.llmas import TASK_EXAMPLES_PLACEHOLDER, TaskExamples, train_file_ids
from nasstudio.predict.llm.propose import (
    LLM_PROPOSED,
    ProposalError,
    propose_job,
    read_proposer_template,
)
from nasstudio.store import GFLOPS
from nasstudio.store.importers import ImportFormatError

if TYPE_CHECKING:
    from nasstudio.gui.main_window import MainWindow

PROPOSE_KIND = "propose-llm"
TEMPLATE_KEY = "llm/propose_template"
SEED_KEY = "llm/propose_seed"
DEMOS_KEY = "llm/propose_demos"
DEFAULT_GFLOPS = 3.0


@dataclass(frozen=True, slots=True)
class ProposeRequest:
    """What the dialog asks for: the template's text, how many architectures at which target
    (and tolerance, a fraction; None: none), how the template is filled."""

    template_path: str
    template: str
    count: int
    target_gflops: float
    tolerance: float | None
    examples: tuple[str, str] | None
    seed: int
    demos: str


class ProposeDialog(QDialog):
    """The template file, k, the GFLOPs target and an optional tolerance, the task-example
    corpus and seed, optionally a seed's train.jsonl as the demonstrations. OK checks the
    template (and that its task examples can be drawn) before closing."""

    def __init__(
        self,
        task: str,
        profile: LLMProfile,
        target_gflops: float,
        remembered: ProposeRequest,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Propose with LLM")
        self._request: ProposeRequest | None = None
        self.template_edit = QLineEdit(
            remembered.template_path,
            placeholderText="default_flops, or its instruction_templates/<task> folder",
            toolTip="llmas's search-agent template",
        )
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_template)
        template_row = QHBoxLayout()
        template_row.addWidget(self.template_edit, 1)
        template_row.addWidget(browse)
        self.count_spin = QSpinBox(minimum=1, maximum=100, value=remembered.count)
        self.gflops_spin = QDoubleSpinBox(
            minimum=0.01, maximum=1000.0, decimals=2, singleStep=0.1, value=target_gflops
        )
        self.tolerance_check = QCheckBox(
            "Reject beyond",
            checked=remembered.tolerance is not None,
            toolTip="llmas has no tolerance: without one, each proposal's GFLOPs are reported",
        )
        self.tolerance_spin = QDoubleSpinBox(
            minimum=0.1, maximum=1000.0, decimals=1, suffix=" %", value=10.0
        )
        tolerance_row = QHBoxLayout()
        tolerance_row.addWidget(self.tolerance_check)
        tolerance_row.addWidget(self.tolerance_spin, 1)
        self.example_edits, examples_row = example_fields(remembered.examples, EXAMPLES_TIP)
        self.seed_spin = QSpinBox(minimum=0, maximum=2**31 - 1, value=remembered.seed)
        self.demos_edit = QLineEdit(
            remembered.demos,
            placeholderText="all architectures of the task with BLEU",
            toolTip="A seed's train.jsonl: its architectures, in file order, are the examples "
            "shown (the first 10)",
        )
        self.error = note_label()
        self.error.setStyleSheet("color: #b00020")
        form = QFormLayout(self)
        form.addRow(QLabel(f"Ask the LLM for architectures of <b>{task}</b>."))
        form.addRow("LLM", QLabel(f"{profile.model} at {profile.base_url} ({profile.name})"))
        form.addRow("Template", template_row)
        form.addRow("Architectures", self.count_spin)
        form.addRow("GFLOPs target", self.gflops_spin)
        form.addRow("Tolerance", tolerance_row)
        form.addRow("Task examples", examples_row)
        form.addRow("Seed", self.seed_spin)
        form.addRow("Demonstrations", self.demos_edit)
        form.addRow(note_label(f"The valid ones are added with origin {LLM_PROPOSED}."))
        form.addRow(self.error)
        self.buttons = ok_cancel_buttons(self, "Propose")
        form.addRow(self.buttons)

    def _browse_template(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "llmas search-agent template")
        if path:
            self.template_edit.setText(path)

    def accept(self) -> None:
        try:
            self._request = self._read()
        except ProposalError as exc:
            self.error.setText(str(exc))
            return
        super().accept()

    def _read(self) -> ProposeRequest:
        path = str(Path(self.template_edit.text().strip()).expanduser())
        if not self.template_edit.text().strip():
            raise ProposalError("Choose llmas's search-agent template (default_flops).")
        template = read_proposer_template(path)
        examples = examples_of(self.example_edits)
        if TASK_EXAMPLES_PLACEHOLDER in template and examples is None:
            raise ProposalError(
                "The template shows 5 task examples: give the source and target file of a "
                "parallel corpus."
            )
        return ProposeRequest(
            path,
            template,
            self.count_spin.value(),
            self.gflops_spin.value(),
            self.tolerance_spin.value() / 100 if self.tolerance_check.isChecked() else None,
            examples,
            self.seed_spin.value(),
            self.demos_edit.text().strip(),
        )

    def request(self) -> ProposeRequest | None:
        """What was asked for, once accepted."""
        return self._request


class ProposeActions(QObject):
    """The "Propose with LLM…" action of the LLM menu and its jobs."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.settings: QSettings = window.settings
        self._jobs: set[int] = set()
        self.action = QAction("Pr&opose with LLM…", window)
        self.action.setStatusTip(
            "Ask the LLM for architectures at a GFLOPs target (llmas's search-agent template)"
        )
        self.action.triggered.connect(self.propose)
        window.llm.menu.insertAction(window.llm.evaluate_action, self.action)
        window.project_opened.connect(self._on_project_opened)

    @property
    def window(self) -> MainWindow:
        return self.parent()

    def _on_project_opened(self) -> None:
        self._jobs.clear()
        self.window.session.bridge.job_event.connect(self._on_event)

    def propose(self) -> ProposeDialog | None:
        """Open the dialog (modal, not blocking); Propose starts the job."""
        window, task = self.window, self.window.view.task
        profile = window.llm.profile()
        if window.session is None or task is None or profile is None:
            show_error(
                window,
                "Propose with LLM",
                "Open a project with a task and add an LLM profile (LLM ▸ LLM settings…) first.",
            )
            return None
        dialog = ProposeDialog(task, profile, self._typical_gflops(), self._remembered(), window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self._start(task, profile, dialog.request()))
        dialog.open()
        return dialog

    def _typical_gflops(self) -> float:
        """The median GFLOPs of the task's architectures, a target in reach of its space."""
        model = self.window.browser.model
        if not model.total_count() or GFLOPS not in model.keys:
            return DEFAULT_GFLOPS
        values = model.values(GFLOPS) / columns.scale(GFLOPS)
        values = values[np.isfinite(values)]
        return round(float(np.median(values)), 2) if values.size else DEFAULT_GFLOPS

    def _remembered(self) -> ProposeRequest:
        examples = self.settings.value(EXAMPLES_KEY)
        return ProposeRequest(
            str(self.settings.value(TEMPLATE_KEY, "")),
            "",
            5,
            DEFAULT_GFLOPS,
            None,
            tuple(examples) if examples else None,
            int(self.settings.value(SEED_KEY, LLMAS_FIRST_SEED)),
            str(self.settings.value(DEMOS_KEY, "")),
        )

    def _start(self, task: str, profile: LLMProfile, request: ProposeRequest) -> int | None:
        window = self.window
        self.settings.setValue(TEMPLATE_KEY, request.template_path)
        self.settings.setValue(SEED_KEY, request.seed)
        self.settings.setValue(DEMOS_KEY, request.demos)
        if request.examples is not None:
            self.settings.setValue(EXAMPLES_KEY, list(request.examples))
        demo_ids = None
        if request.demos:
            try:
                demo_ids = train_file_ids(request.demos, window.project.task(task))
            except (ImportFormatError, OSError) as exc:
                show_error(window, "Propose with LLM", f"The demonstrations cannot be read: {exc}")
                return None
        job_id = window.session.submit(
            PROPOSE_KIND,
            f"LLM proposes {request.count} architectures of {task} at "
            f"{request.target_gflops:g} GFLOPs",
            propose_job,
            task=task,
            profile=profile,
            template=request.template,
            target_gflops=request.target_gflops,
            count=request.count,
            examples=TaskExamples(*request.examples) if request.examples else None,
            seed=request.seed,
            demo_ids=demo_ids,
            tolerance=request.tolerance,
        )
        self._jobs.add(job_id)
        window.statusBar().showMessage(f"Asking {profile.model} for architectures…", 10000)
        return job_id

    def _on_event(self, event: JobEvent) -> None:
        if event.job_id not in self._jobs or not (event.kind == "state" and event.state.finished):
            return
        self._jobs.discard(event.job_id)
        if event.state == JobState.FAILED:
            show_error(self.window, "Propose with LLM failed", str(event.payload or event.message))
            return
        self.window.statusBar().showMessage(
            f"Propose with LLM {event.state.value}: {event.message} (origin {LLM_PROPOSED}; the "
            "job log names each rejected one with why)",
            15000,
        )


def install_propose_ui(window: MainWindow) -> ProposeActions:
    """Add "Propose with LLM…" to the window's LLM menu."""
    return ProposeActions(window)
