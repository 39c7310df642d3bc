"""Translate test set…: translate a file with an architecture's trained checkpoint and, with a
reference, record its BLEU on that test set; the same job as ``nasstudio translate``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
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
    QVBoxLayout,
    QWidget,
)

from nasstudio.data.corpus import CorpusError
from nasstudio.gui.train_form import available_devices
from nasstudio.store import Project
from nasstudio.train.translate import default_test_set_name, read_test_files, recorded_decoding

_BEAM_OF_THE_RUN = 0  # the spin box's special value: the beam of the recorded BLEU


class TranslateDialog(QDialog):
    """Input file, optional reference, test set name and output file; Translate stays disabled,
    with the reason shown, while the files cannot be scored (a missing file, line counts
    that differ), so no job is queued that would fail at its start."""

    def __init__(
        self,
        project: Project,
        task: str,
        arch_id: str,
        parent: QWidget | None = None,
        checkpoint_root: str | None = None,
    ) -> None:
        """``checkpoint_root``: a Ray cluster's storage, where checkpoints are looked for too."""
        super().__init__(parent)
        self.setWindowTitle("Translate test set")
        self.project, self.task, self.arch_id = project, task, arch_id
        self.checkpoint_root = checkpoint_root
        recorded = recorded_decoding(project, task, arch_id)
        self.input_edit = QLineEdit(placeholderText="source sentences, one a line (.gz too)")
        self.reference_edit = QLineEdit(placeholderText="optional: records BLEU on this set")
        self.name_edit = QLineEdit()
        self.name_edit.setToolTip(
            "The test set's name in the measurements (default: the input file's stem)"
        )
        self.output_edit = QLineEdit(placeholderText="optional: where the translations go")
        self.beam_spin = QSpinBox(minimum=_BEAM_OF_THE_RUN, maximum=64)
        self.beam_spin.setSpecialValueText(_as_recorded(recorded.get("beam")))
        self.beam_spin.setToolTip("Beam size (as recorded: that of the task's BLEU; 1: greedy)")
        self.length_penalty_edit = QLineEdit(
            placeholderText=_as_recorded(recorded.get("length_penalty"))
        )
        self.length_penalty_edit.setToolTip(
            "Beam search scores log p / length ** this (1: average per token; HAT: 0.6); "
            "empty: that of the checkpoint's run, as its recorded BLEU decoded (shown in "
            "grey), like the CLI's --length-penalty"
        )
        self.device_combo = QComboBox()
        for device, label in available_devices().items():
            self.device_combo.addItem(label, device)
        self.problem_label = QLabel(wordWrap=True)
        self.problem_label.setStyleSheet("color: #b00020;")
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.translate_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.translate_button.setText("Translate")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self._build_layout()
        for edit in (
            self.input_edit,
            self.reference_edit,
            self.output_edit,
            self.length_penalty_edit,
        ):
            edit.textChanged.connect(self._check)
        self.input_edit.textChanged.connect(self._suggest_name)
        self._check()

    def _build_layout(self) -> None:
        form = QFormLayout()
        form.addRow("Input file", self._with_browse(self.input_edit, self._choose_input))
        form.addRow("Reference file", self._with_browse(self.reference_edit, self._choose_ref))
        form.addRow("Test set name", self.name_edit)
        form.addRow("Output file", self._with_browse(self.output_edit, self._choose_output))
        form.addRow("Beam", self.beam_spin)
        form.addRow("Length penalty", self.length_penalty_edit)
        form.addRow("Device", self.device_combo)
        layout = QVBoxLayout(self)
        layout.addWidget(
            QLabel(
                f"Translate with the trained checkpoint of <b>{self.arch_id}</b>; "
                f"BLEU is recorded in task <b>{self.task}</b>.",
                wordWrap=True,
            )
        )
        layout.addLayout(form)
        layout.addWidget(self.problem_label)
        layout.addWidget(self.buttons)
        self.resize(560, self.sizeHint().height())

    @staticmethod
    def _with_browse(edit: QLineEdit, choose: Any) -> QWidget:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(edit, 1)
        button = QPushButton("Browse…")
        button.clicked.connect(choose)
        layout.addWidget(button)
        return row

    def _choose_input(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Source sentences")
        if path:
            self.input_edit.setText(path)

    def _choose_ref(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Reference translations")
        if path:
            self.reference_edit.setText(path)

    def _choose_output(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Write the translations to")
        if path:
            self.output_edit.setText(path)

    def _suggest_name(self, text: str) -> None:
        self.name_edit.setPlaceholderText(default_test_set_name(text) if text.strip() else "")

    def _path(self, edit: QLineEdit) -> str | None:
        text = edit.text().strip()
        return str(Path(text).expanduser().resolve()) if text else None

    def problem(self) -> str | None:
        """Why Translate cannot start now, or None."""
        source = self._path(self.input_edit)
        if source is None:
            return "Choose the file to translate."
        try:
            read_test_files(source, self._path(self.reference_edit))
        except (CorpusError, ValueError) as exc:
            return str(exc)
        output = self._path(self.output_edit)
        if output is not None and not Path(output).parent.is_dir():
            return f"{output}: its folder does not exist"
        try:
            self._length_penalty()
        except ValueError:
            return (
                f"Length penalty: expected a number (0.6, say), got "
                f"'{self.length_penalty_edit.text().strip()}'"
            )
        return None

    def _length_penalty(self) -> float | None:
        """The typed length penalty; None (as recorded) when empty. ValueError when it is
        not a finite number."""
        text = self.length_penalty_edit.text().strip()
        if not text:
            return None
        value = float(text)
        if not math.isfinite(value):
            raise ValueError(text)
        return value

    def _check(self) -> None:
        problem = self.problem()
        self.problem_label.setText(problem or "")
        self.problem_label.setVisible(problem is not None)
        self.translate_button.setEnabled(problem is None)

    def accept(self) -> None:
        self._check()  # a file may have gone since the last change
        if self.translate_button.isEnabled():
            super().accept()

    def title(self) -> str:
        return f"Translate {Path(self.input_edit.text().strip()).name} with {self.arch_id}"

    def params(self) -> dict[str, Any]:
        """The translate job's parameters (``train.translate.translate_job``)."""
        return {
            "task": self.task,
            "arch_id": self.arch_id,
            "source": self._path(self.input_edit),
            "output": self._path(self.output_edit),
            "reference": self._path(self.reference_edit),
            "name": self.name_edit.text().strip() or None,
            "beam": self.beam_spin.value() or None,
            "length_penalty": self._length_penalty(),
            "device": self.device_combo.currentData(),
            "checkpoint_root": self.checkpoint_root,
        }

    def resource(self) -> str | None:
        """The queue the job waits in: its CUDA device, else the CPU's (the job's default)."""
        device = self.device_combo.currentData()
        return device if device.startswith("cuda") else None


def _as_recorded(value: Any) -> str:
    """The hint of a decoding setting left to the checkpoint's run: its recorded value."""
    return "as recorded" if value is None else f"as recorded ({value})"
