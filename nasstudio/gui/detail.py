"""The detail pane: every hyperparameter of the current architecture, layer by layer, and every
measurement and prediction of it with where it came from (a BLEU with the test set it was
scored on); and, for a trained architecture, Translate test set…"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from html import escape

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QTextBrowser, QVBoxLayout, QWidget

from nasstudio.gui import columns
from nasstudio.gui.view_state import ViewState
from nasstudio.space import Architecture
from nasstudio.store import Measurement, Prediction, Project
from nasstudio.train.translate import checkpoint_files

_TABLE = "<table border='1' cellspacing='0' cellpadding='3' style='border-color:#bbb'>"
_EMPTY = (
    "<p style='color:#666'>Select an architecture in the table or click a point on the "
    "Pareto plot to see its layers, measurements and predictions.</p>"
)


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    head = "".join(f"<th align='left'>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(cell))}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"{_TABLE}<tr style='background:#eee'>{head}</tr>{body}</table>"


def _time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def _number(key: str, value: float | None) -> str:
    if value is None:
        return ""
    return columns.format_value(key, value * columns.scale(key))


def _attention(arch: Architecture, layer: int) -> str:
    k = arch.decoder_arbitrary_attn[layer]
    count = arch.attended_encoder_layers(layer)
    layers = "the last encoder layer" if count == 1 else f"the last {count} encoder layers"
    return f"{k}: attends to {layers}"


def hyperparameters_html(arch: Architecture) -> str:
    overview = _table(
        ("Encoder embed dim", "Decoder embed dim", "q/k/v dim", "Encoder layers", "Decoder layers"),
        [
            (
                arch.encoder_embed_dim,
                arch.decoder_embed_dim,
                arch.qkv_dim,
                arch.encoder_layers,
                arch.decoder_layers,
            )
        ],
    )
    encoder = _table(
        ("Encoder layer", "FFN dim", "Heads"),
        (
            (i + 1, arch.encoder_ffn_dims[i], arch.encoder_heads[i])
            for i in range(arch.encoder_layers)
        ),
    )
    decoder = _table(
        ("Decoder layer", "FFN dim", "Heads", "Cross heads", "Arbitrary attention"),
        (
            (
                i + 1,
                arch.decoder_ffn_dims[i],
                arch.decoder_heads[i],
                arch.decoder_cross_heads[i],
                _attention(arch, i),
            )
            for i in range(arch.decoder_layers)
        ),
    )
    return f"{overview}<br>{encoder}<br>{decoder}"


def measurements_html(rows: Sequence[Measurement]) -> str:
    if not rows:
        return "<p>None.</p>"
    return _table(
        ("Metric", "Value", "Std", "Test set", "Device", "Source", "Time", "Provenance"),
        (
            (
                columns.label(m.metric),
                _number(m.metric, m.value),
                _number(m.metric, m.std),
                _test_set(m),
                m.device,
                m.source,
                _time(m.created_at),
                json.dumps(m.provenance, sort_keys=True),
            )
            for m in rows
        ),
    )


def _test_set(m: Measurement) -> str:
    """The test set a score is on: its name and content hash (none for other metrics)."""
    return f"{m.test_set} · {m.test_set_digest}" if m.test_set else ""


def predictions_html(rows: Sequence[Prediction]) -> str:
    if not rows:
        return "<p>None yet (an LLM or another predictor adds them).</p>"
    return _table(
        ("Metric", "Value", "Std", "Kind", "Predictor", "Prompt", "Time", "Provenance"),
        (
            (
                columns.label(p.metric),
                _number(p.metric, p.value),
                _number(p.metric, p.std),
                p.predictor_kind,
                p.predictor,
                p.prompt_version or "",
                _time(p.created_at),
                json.dumps(p.provenance, sort_keys=True),
            )
            for p in rows
        ),
    )


def architecture_html(
    arch: Architecture,
    task: str,
    measurements: Sequence[Measurement],
    predictions: Sequence[Prediction],
) -> str:
    return (
        f"<h3 style='font-family:monospace'>{escape(arch.id)}</h3>"
        f"<p>Task <b>{escape(task)}</b> · {escape(arch.summary())}</p>"
        f"<h4>Hyperparameters</h4>{hyperparameters_html(arch)}"
        f"<h4>Measurements</h4>{measurements_html(measurements)}"
        f"<h4>Predictions</h4>{predictions_html(predictions)}"
    )


class DetailPane(QWidget):
    """Shows the view state's current architecture; ``refresh`` re-reads it after the store
    changed. Translate test set… asks the window (``translate_requested``) for the dialog."""

    translate_requested = Signal(str)  # the architecture's id

    def __init__(self, view: ViewState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.browser = QTextBrowser(openLinks=False)
        self.browser.setToolTip(
            "Hyperparameters per layer, measurements and predictions with provenance"
        )
        self.translate_button = QPushButton("Translate test set…")
        self.translate_button.clicked.connect(self._ask_translate)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.translate_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(buttons)
        layout.addWidget(self.browser, 1)
        self._view = view
        self._project: Project | None = None
        self._checkpoint_root: str | None = None
        self._html = ""
        view.events.current.connect(self.refresh)
        view.events.task.connect(self.refresh)
        self._render()

    @property
    def arch_id(self) -> str | None:
        return self._view.current

    def set_project(self, project: Project | None) -> None:
        self._project = project
        self._render()

    def refresh(self, _: object = None) -> None:
        self._render()

    def set_checkpoint_root(self, root: str | None) -> None:
        """A Ray cluster's storage, where trainings run on Ray keep their checkpoints: looked
        in too, beside the project (``translate.checkpoint_files``)."""
        if root != self._checkpoint_root:
            self._checkpoint_root = root
            self._offer_translate()

    def _render(self) -> None:
        html = _EMPTY
        task, arch_id = self._view.task, self._view.current
        if self._project is not None and task and arch_id:
            try:
                arch = self._project.architecture(arch_id)
            except KeyError:
                html = f"<p>Architecture {escape(arch_id)} is no longer in the project.</p>"
            else:
                html = architecture_html(
                    arch,
                    task,
                    self._project.measurements(arch_id, task),
                    self._project.predictions(arch_id, task),
                )
        if html != self._html:  # unchanged content keeps the reader's scroll position
            self._html = html
            self.browser.setHtml(html)
        self._offer_translate()

    def _offer_translate(self) -> None:
        """Translate test set… is there for an architecture with a trained checkpoint; else
        its tooltip says why not."""
        arch_id, why_not = self._view.current, None
        if self._project is None or not self._view.task or not arch_id:
            why_not = "Select an architecture first"
        elif not checkpoint_files(self._project, arch_id, self._checkpoint_root):
            where = " or in the Ray storage" if self._checkpoint_root else ""
            why_not = (
                f"{arch_id} has no trained checkpoint beside the project{where}: train it "
                "first (Train ▸ Train selected…)"
            )
        self.translate_button.setEnabled(why_not is None)
        self.translate_button.setToolTip(
            why_not
            or f"Translate a test file with {arch_id}'s trained checkpoint and, with a "
            "reference, record its BLEU on that test set"
        )

    def _ask_translate(self) -> None:
        if self._view.current:
            self.translate_requested.emit(self._view.current)
