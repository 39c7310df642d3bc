"""Small dialogs: error boxes, sampling parameters, the task of imported HAT YAML files, export
target."""

from __future__ import annotations

import random
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QInputDialog,
    QLabel,
    QMessageBox,
    QSpinBox,
    QWidget,
)

from nasstudio.store import KNOWN_TASKS, Task

MAX_SAMPLE = 1_000_000
EXPORT_CHOICES = {
    "HAT YAML, one file per architecture, into a folder": "yaml",
    "JSON file": "json",
    "CSV file": "csv",
}


def show_error(parent: QWidget, title: str, message: str) -> QMessageBox:
    """A non-blocking error box (jobs keep reporting while it is open), deleted when closed."""
    box = QMessageBox(
        QMessageBox.Icon.Critical, title, message, QMessageBox.StandardButton.Ok, parent
    )
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box


@dataclass(frozen=True)
class SampleRequest:
    task: str
    count: int
    seed: int


@dataclass(frozen=True)
class TaskChoice:
    task: str
    vocab_size: int | None  # only for a task neither known nor in the project


def _task_combo(tasks: list[Task], current: str | None, editable: bool) -> QComboBox:
    """The project's tasks first, then the known tasks it does not have yet; each item's data
    is the task's name, its tooltip the description. ``current`` is chosen when listed."""
    combo = QComboBox(editable=editable)
    names = [t.name for t in tasks]
    choices = [(t.name, t) for t in tasks]
    choices += [(f"{name} (new)", t) for name, t in KNOWN_TASKS.items() if name not in names]
    for text, task in choices:
        combo.addItem(text, task.name)
        combo.setItemData(combo.count() - 1, task.description, Qt.ItemDataRole.ToolTipRole)
    combo.setCurrentIndex(max(combo.findData(current), 0))
    return combo


def _buttons(dialog: QDialog) -> QDialogButtonBox:
    buttons = QDialogButtonBox(
        QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
    )
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    return buttons


class SampleDialog(QDialog):
    """Task, count and seed for sampling architectures uniformly from the task's space."""

    def __init__(self, tasks: list[Task], current: str | None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Sample architectures")
        self.task_combo = _task_combo(tasks, current, editable=False)
        self.task_combo.setToolTip("Task whose search space is sampled; new tasks are added")
        self.count_spin = QSpinBox(minimum=1, maximum=MAX_SAMPLE, value=500, singleStep=100)
        self.count_spin.setGroupSeparatorShown(True)
        self.count_spin.setToolTip("How many new architectures to add")
        self.seed_spin = QSpinBox(minimum=0, maximum=2**31 - 1, value=random.randrange(10**6))
        self.seed_spin.setToolTip("Random seed: the same seed samples the same architectures")
        form = QFormLayout(self)
        form.addRow("Task", self.task_combo)
        form.addRow("Count", self.count_spin)
        form.addRow("Seed", self.seed_spin)
        form.addRow(
            QLabel(
                "Sampled architectures get analytic GFLOPs and sizes; BLEU comes\n"
                "from training, import or a predictor."
            )
        )
        form.addRow(_buttons(self))

    def request(self) -> SampleRequest:
        return SampleRequest(
            self.task_combo.currentData(), self.count_spin.value(), self.seed_spin.value()
        )


class TaskDialog(QDialog):
    """Which task imported files belong to when their names do not say (HAT YAML always)."""

    def __init__(self, tasks: list[Task], current: str | None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Task of the imported architectures")
        self._known = {t.name for t in tasks} | set(KNOWN_TASKS)
        self.task_combo = _task_combo(tasks, current, editable=True)
        self.task_combo.setToolTip("A task of the project, a known task, or a new name")
        self.vocab_spin = QSpinBox(minimum=1, maximum=10_000_000, value=32_768)
        self.vocab_spin.setToolTip("Vocabulary size of a new task (HAT WMT space)")
        form = QFormLayout(self)
        note = "HAT YAML files, and llmas files not named after a task,\ndo not name their task."
        form.addRow(QLabel(note))
        form.addRow("Task", self.task_combo)
        form.addRow("Vocabulary (new task)", self.vocab_spin)
        form.addRow(_buttons(self))
        self.task_combo.currentTextChanged.connect(self._update_vocab)
        self._update_vocab()

    def _name(self) -> str:
        text = self.task_combo.currentText().strip()
        index = self.task_combo.findText(text)
        return self.task_combo.itemData(index) if index >= 0 else text

    def _update_vocab(self) -> None:
        self.vocab_spin.setEnabled(self._name() not in self._known)

    def choice(self) -> TaskChoice:
        name = self._name()
        return TaskChoice(name, None if name in self._known else self.vocab_spin.value())


def ask_export_target(parent: QWidget, count: int) -> tuple[str, str] | None:
    """Ask for the export format and where to write; None when the user cancels."""
    label, ok = QInputDialog.getItem(
        parent,
        "Export selected",
        f"Export {count:,} architectures as",
        list(EXPORT_CHOICES),
        0,
        False,
    )
    if not ok:
        return None
    fmt = EXPORT_CHOICES[label]
    if fmt == "yaml":
        target = QFileDialog.getExistingDirectory(parent, "Folder for the YAML files")
    else:
        target, _ = QFileDialog.getSaveFileName(
            parent, "Export to", f"architectures.{fmt}", f"{fmt.upper()} (*.{fmt})"
        )
    return (fmt, target) if target else None
