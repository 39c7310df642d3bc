"""Live training curves: train loss, validation loss and validation BLEU against the step,
one curve per run in the same colour on the three plots, the run's name in the legend."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

# What a progress report may carry, and the plot it goes to.
METRICS = {"train_loss": "Train loss", "valid_loss": "Valid loss", "valid_bleu": "Valid BLEU"}
# Colour-blind-safe (Okabe-Ito, then Paul Tol's bright), dark enough on white.
_PALETTE = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#000000",
    "#AA3377",
    "#228833",
    "#4477AA",
)


class _Run:
    """The points of one run, and its curve on each plot."""

    def __init__(self, color: QColor, label: str) -> None:
        self.label = label
        self.color = color
        self.shown = True
        self.steps: dict[str, list[int]] = {key: [] for key in METRICS}
        self.values: dict[str, list[float]] = {key: [] for key in METRICS}
        pen = pg.mkPen(color, width=2)
        # Valid figures come every eval_every steps: markers show where they were taken.
        self.curves = {
            key: pg.PlotDataItem(
                pen=pen,
                symbol=None if key == "train_loss" else "o",
                symbolSize=5,
                symbolBrush=color,
                symbolPen=None,
            )
            for key in METRICS
        }


class RunCurves(QWidget):
    """Three linked plots against the training step. Runs are keyed by their job id."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._runs: dict[int, _Run] = {}
        self._colors = 0
        self.canvas = pg.GraphicsLayoutWidget()
        self.canvas.setBackground("w")
        self.plots: dict[str, pg.PlotItem] = {}
        for column, (key, title) in enumerate(METRICS.items()):
            plot = self.canvas.addPlot(row=0, col=column, title=title)
            plot.setTitle(title, color="#222", size="10pt")
            plot.showGrid(x=True, y=True, alpha=0.2)
            plot.setLabel("bottom", "step")
            for side in ("left", "bottom"):
                plot.getAxis(side).setPen("#444")
                plot.getAxis(side).setTextPen("#222")
            if self.plots:
                plot.setXLink(self.plots["train_loss"])
            self.plots[key] = plot
        # Under the plots, not on them: a legend inside a plot covers the curves it names, and
        # a label wraps its names where a legend in the canvas would push the plots out of it.
        self.legend = QLabel(wordWrap=True, toolTip="The runs drawn, in their colours")
        # As wide as the plots, whatever its text: the names wrap, the panel does not widen.
        self.legend.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.canvas.setToolTip(
            "Curves of the runs ticked in the run list; drag to pan, wheel to zoom"
        )
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.legend)

    def add_run(self, key: int, label: str) -> QColor:
        """A new run with the next colour; returns that colour (for the run list)."""
        color = QColor(_PALETTE[self._colors % len(_PALETTE)])
        self._colors += 1
        run = self._runs[key] = _Run(color, label)
        for metric, curve in run.curves.items():
            self.plots[metric].addItem(curve)
        self._show_legend()
        return color

    def append(self, key: int, reports: Iterable[Mapping[str, object]]) -> None:
        """Add the figures of progress reports (those each has) at their steps."""
        run = self._runs[key]
        changed = set()
        for report in reports:
            for metric in METRICS:
                value = report.get(metric)
                if value is not None:
                    run.steps[metric].append(int(report["step"]))
                    run.values[metric].append(float(value))
                    changed.add(metric)
        for metric in changed:  # one setData per curve: stored runs bring thousands of points
            run.curves[metric].setData(run.steps[metric], run.values[metric])

    def set_points(self, key: int, reports: Iterable[Mapping[str, object]]) -> None:
        """Replace a run's points with those of ``reports`` (its stored curve)."""
        run = self._runs[key]
        for metric, curve in run.curves.items():
            run.steps[metric].clear()
            run.values[metric].clear()
            curve.setData([], [])
        self.append(key, reports)

    def set_shown(self, key: int, shown: bool) -> None:
        run = self._runs[key]
        for curve in run.curves.values():
            curve.setVisible(shown)
        run.shown = shown  # a hidden run leaves the legend too: it lists what is drawn
        self._show_legend()

    def remove(self, key: int) -> None:
        run = self._runs.pop(key)
        self._show_legend()
        for metric, curve in run.curves.items():
            self.plots[metric].removeItem(curve)

    def clear(self) -> None:
        for key in list(self._runs):
            self.remove(key)
        self._colors = 0

    def _show_legend(self) -> None:
        """Each drawn run's colour and name; names wrap, never break (non-breaking spaces)."""
        entries = (
            f"<span style='color:{run.color.name()}'>━━</span>&nbsp;{html.escape(run.label)}"
            for run in self._runs.values()
            if run.shown
        )
        self.legend.setText("&nbsp;&nbsp; ".join(entries))

    def points(self, key: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """The drawn (steps, values) of a run's curve."""
        x, y = self._runs[key].curves[metric].getData()
        return (np.empty(0), np.empty(0)) if x is None else (x, y)

    def has_run(self, key: int) -> bool:
        return key in self._runs
