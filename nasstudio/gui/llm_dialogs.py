"""Small dialogs of the LLM menu: what to predict (with an llmas prompt, how to fill it), and
where to evaluate a prompt."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from nasstudio.gui.prompt_tokens import TokenCount
from nasstudio.predict.evaluate import seedarchs_tasks
from nasstudio.predict.llm import LLMProfile
from nasstudio.store.importers import ImportFormatError


def ok_cancel_buttons(dialog: QDialog, ok_text: str) -> QDialogButtonBox:
    box = QDialogButtonBox(
        QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
    )
    box.button(QDialogButtonBox.StandardButton.Ok).setText(ok_text)
    box.accepted.connect(dialog.accept)
    box.rejected.connect(dialog.reject)
    return box


def note_label(text: str = "") -> QLabel:
    label = QLabel(text, wordWrap=True)
    label.setStyleSheet("color: #555")
    return label


EXAMPLES_TIP = "llmas's templates show 5 sentence pairs drawn with the seed from this corpus"


def example_fields(
    examples: tuple[str, str] | None, tip: str
) -> tuple[list[QLineEdit], QHBoxLayout]:
    """The "Task examples" fields: the source and the target file of a parallel corpus."""
    edits = [
        QLineEdit(path, toolTip=tip, placeholderText=side)
        for path, side in zip(examples or ("", ""), ("source file", "target file"), strict=True)
    ]
    row = QHBoxLayout()
    for edit in edits:
        row.addWidget(edit, 1)
    return edits, row


def examples_of(edits: list[QLineEdit]) -> tuple[str, str] | None:
    """The task-example corpus (source, target), None unless both are given."""
    if not all(e.text().strip() for e in edits):
        return None
    source, target = (str(Path(e.text().strip()).expanduser()) for e in edits)
    return source, target


LLMAS_FIRST_SEED = 123  # llmas's seeds are 123, 456 and 789


@dataclass(frozen=True, slots=True)
class LlmasFill:
    """How a prediction fills an llmas prompt: the task-example corpus, the seed of its draw
    and, optionally, a seed's train.jsonl whose architectures are the demonstrations."""

    examples: tuple[str, str] | None = None
    seed: int = LLMAS_FIRST_SEED
    demos: str = ""


class PredictDialog(QDialog):
    """How many architectures, with which profile, how many samples; the cost estimate. With
    an llmas prompt (``llmas``: its name and the fill last used), also how it is filled."""

    def __init__(
        self,
        count: int,
        scope: str,
        profile: LLMProfile,
        tokens: TokenCount | None,
        parent: QWidget | None = None,
        llmas: tuple[str, LlmasFill] | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Predict with LLM")
        self._count, self._profile, self._tokens = count, profile, tokens
        self.samples_spin = QSpinBox(
            minimum=1, maximum=20, value=1, toolTip="Answers per architecture (mean, median, std)"
        )
        self.cache_check = QCheckBox(
            "Use the answer cache", checked=True, toolTip="A question asked before sends no request"
        )
        self.estimate = note_label()
        form = QFormLayout(self)
        form.addRow(QLabel(f"Predict the BLEU of <b>{count:,}</b> architectures ({scope})."))
        form.addRow("LLM", QLabel(f"{profile.model} at {profile.base_url} ({profile.name})"))
        form.addRow("Samples", self.samples_spin)
        form.addRow("", self.cache_check)
        self.buttons = ok_cancel_buttons(self, "Predict")
        self.example_edits: list[QLineEdit] = []
        if llmas is not None:
            self._add_llmas_rows(form, *llmas)
        form.addRow(self.estimate)
        form.addRow(self.buttons)
        self.samples_spin.valueChanged.connect(self._update_estimate)
        self._update_estimate()

    def _add_llmas_rows(self, form: QFormLayout, name: str, fill: LlmasFill) -> None:
        self.example_edits, examples_row = example_fields(fill.examples, EXAMPLES_TIP)
        self.seed_spin = QSpinBox(
            minimum=0,
            maximum=2**31 - 1,
            value=fill.seed,
            toolTip="The seed of llmas's task-example draw (llmas's are 123, 456 and 789)",
        )
        self.demos_edit = QLineEdit(
            fill.demos,
            placeholderText="all architectures of the task with BLEU",
            toolTip="A seed's train.jsonl: its architectures, in file order, are the "
            "demonstrations (llmas shows the first 10)",
        )
        form.addRow("Prompt", QLabel(f"llmas prompt <b>{name}</b>"))
        form.addRow("Task examples", examples_row)
        form.addRow("Seed", self.seed_spin)
        form.addRow("Demonstrations", self.demos_edit)
        for edit in self.example_edits:
            edit.textChanged.connect(self._require_examples)
        self._require_examples()

    def _require_examples(self) -> None:
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(examples_of(self.example_edits) is not None)

    def _update_estimate(self) -> None:
        if self._tokens is None:
            self.estimate.setText("")
            return
        requests = self._count * self.samples_spin.value()
        tokens = requests * self._tokens.tokens
        cost = self._profile.cost(tokens, requests * self._profile.sent_max_tokens)
        approx = "" if self._tokens.exact else "≈ "
        asks = self._profile.max_asks
        again = f" ({asks} times that if every answer is asked again)" if asks > 1 else ""
        self.estimate.setText(
            f"{requests:,} requests, {approx}{tokens:,} input tokens (the previewed prompt's "
            f"size); at most {cost:.4f} at the profile's prices{again}, less what the cache "
            "answers."
        )

    def samples(self) -> int:
        return self.samples_spin.value()

    def use_cache(self) -> bool:
        return self.cache_check.isChecked()

    def llmas_fill(self) -> LlmasFill:
        """How the llmas prompt is filled (only with an llmas prompt)."""
        demos = self.demos_edit.text().strip()
        return LlmasFill(
            examples_of(self.example_edits),
            self.seed_spin.value(),
            str(Path(demos).expanduser()) if demos else "",
        )


class EvaluateDialog(QDialog):
    """The seedarchs folder and the task to evaluate on; for llmas's templates, the corpus
    their task examples are drawn from."""

    def __init__(
        self,
        folder: str,
        task: str | None,
        title: str,
        note: str,
        parent: QWidget | None = None,
        examples: tuple[str, str] | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self._preferred = task
        self.folder_edit = QLineEdit(
            folder, toolTip="A folder of <seed>/<task>/train.jsonl and test.jsonl (llmas)"
        )
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        tip = "llmas's templates show 5 sentence pairs drawn with each seed from this corpus"
        self.example_edits, examples_row = example_fields(examples, tip)
        self.task_combo = QComboBox(toolTip="The task whose test architectures are predicted")
        self.problem = QLabel(wordWrap=True)
        self.problem.setStyleSheet("color: #b00020")
        row = QHBoxLayout()
        row.addWidget(self.folder_edit, 1)
        row.addWidget(browse)
        self.buttons = ok_cancel_buttons(self, "Evaluate")
        form = QFormLayout(self)
        form.addRow("Seedarchs", row)
        form.addRow("Task", self.task_combo)
        form.addRow("Task examples", examples_row)
        form.addRow(note_label(note))
        form.addRow(self.problem)
        form.addRow(self.buttons)
        self.folder_edit.textChanged.connect(self._fill_tasks)
        self._fill_tasks()
        self.resize(560, self.sizeHint().height())

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Seedarchs folder", self.folder())
        if folder:
            self.folder_edit.setText(folder)

    def _fill_tasks(self) -> None:
        current = self.task_combo.currentText() or self._preferred
        self.task_combo.clear()
        try:
            tasks = seedarchs_tasks(self.folder()) if self.folder() else []
            problem = "" if tasks else "No <seed>/<task>/train.jsonl and test.jsonl in it."
        except ImportFormatError as exc:
            tasks, problem = [], str(exc)
        self.task_combo.addItems(tasks)
        if current in tasks:
            self.task_combo.setCurrentText(current)
        self.problem.setText(problem)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(bool(tasks))

    def folder(self) -> str:
        return (
            str(Path(self.folder_edit.text().strip()).expanduser())
            if self.folder_edit.text().strip()
            else ""
        )

    def task(self) -> str:
        return self.task_combo.currentText()

    def examples(self) -> tuple[str, str] | None:
        """The task-example corpus (source, target), None unless both are given."""
        return examples_of(self.example_edits)
