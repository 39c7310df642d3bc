"""A search's live view: each generation's front (the constrained cost against the predicted
score) with older fronts fading, the best score per generation, and the time spent in each
predictor. It draws ``SearchGeneration`` records as they arrive or as the store gives them back.

Scores of different predictors are on different scales (BLEU, minus a validation loss): the
fronts drawn are those ranked by the latest generation's predictor, and the best scores of
HS-NAS's second predictor have a plot of their own, under the first's, on the same generations.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from nasstudio.jobs.records import SearchGeneration
from nasstudio.store import GFLOPS, LATENCY_MS, PARAMS

# Okabe-Ito: one colour per predictor of the search, in the order they ranked.
_SCORER_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7")
_POPULATION_COLOR = (120, 120, 120, 90)
FADE = 0.8  # each older generation's front keeps this share of the next one's opacity
MIN_ALPHA = 0.08
MAX_FRONTS = 30  # older fronts are not drawn: faded out, and a long search stays quick to draw
# The cost axis when the search has no constraint: the first of these its members carry.
_COST_KEYS = (GFLOPS, PARAMS)


def x_metric(generation: SearchGeneration) -> str | None:
    """The cost the fronts are drawn against: the constrained metric, else latency or GFLOPs."""
    metrics = generation.members[0].metrics if generation.members else {}
    if generation.constraint:
        return generation.constraint
    latency = [key for key in metrics if key.startswith(f"{LATENCY_MS}@")]
    return next(iter([*latency, *(k for k in _COST_KEYS if k in metrics)]), None)


def front_alpha(age: int) -> float:
    """Opacity of the front ``age`` generations older than the newest (which has 1)."""
    return max(MIN_ALPHA, FADE**age)


def _styled(plot: pg.PlotItem, bottom: str) -> None:
    plot.showGrid(x=True, y=True, alpha=0.2)
    plot.setLabel("bottom", bottom)
    for side in ("left", "bottom"):
        plot.getAxis(side).setPen("#444")
        plot.getAxis(side).setTextPen("#222")
        plot.getAxis(side).enableAutoSIPrefix(False)


class _Front:
    """One curve of the fronts plot and what it shows. A redraw touches only what changed:
    in PySide6 6.12 every call of a Qt method that returns nothing releases a reference to
    None it never took, so a window that redrew everything per generation would, after some
    thousand generations, free None and crash ("deallocating None")."""

    def __init__(self, plot: pg.PlotItem, width: float, size: int, z: float = 0.0) -> None:
        self.item = pg.PlotDataItem()
        self.item.setZValue(z)
        self.item.setVisible(False)
        plot.addItem(self.item)
        self._style = {"width": width, "size": size}
        self.shown: tuple | None = None  # (generation, score label, cost metric, colour)
        self.opacity = 1.0

    def show(self, generation: SearchGeneration, metric: str | None, color: str) -> None:
        key = (generation.generation, generation.score_label, metric, color)
        if key != self.shown:
            self.item.setData(
                *_front_xy(generation, metric),
                pen=pg.mkPen(color, width=self._style["width"]),
                symbol="o",
                symbolSize=self._style["size"],
                symbolBrush=color,
                symbolPen=None,
            )
            if self.shown is None:
                self.item.setVisible(True)
            self.shown = key

    def fade(self, opacity: float) -> None:
        if opacity != self.opacity:
            self.item.setOpacity(opacity)
            self.opacity = opacity

    def hide(self) -> None:
        if self.shown is not None:
            self.item.setVisible(False)
            self.shown = None


class SearchPlot(QWidget):
    """Fronts on the left, best score per generation on the right, times and counts below."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._generations: list[SearchGeneration] = []
        self._scorers: list[str] = []  # in the order they first ranked a generation
        self._texts: dict[tuple, str] = {}  # axis labels and titles set, by (plot, place)
        fronts_widget = pg.PlotWidget(background="w")
        best_widget = pg.GraphicsLayoutWidget()
        best_widget.setBackground("w")
        fronts_widget.setToolTip(
            "Each generation's front, older ones fading, the newest in bold; grey dots are "
            "the newest population. Drag to pan, wheel to zoom"
        )
        best_widget.setToolTip("The best score of each generation, per predictor")
        self.fronts = fronts_widget.getPlotItem()
        _styled(self.fronts, "cost")
        self._population = pg.ScatterPlotItem(
            size=5, pen=None, brush=pg.mkBrush(*_POPULATION_COLOR)
        )
        self.fronts.addItem(self._population)
        # Made once and reused, a generation's front in the slot of its number modulo
        # MAX_FRONTS: items made and dropped per generation would also be left to the cyclic
        # garbage collector, which may run in a job's thread (DESIGN.md).
        self._ring = [_Front(self.fronts, 1.5, 5) for _ in range(MAX_FRONTS)]
        self._newest = _Front(self.fronts, 3.0, 8, z=1.0)
        self._by_age: list[_Front] = []  # the ring's fronts drawn, newest first
        # One plot per predictor that ranks a search (HS-NAS has two at most), x-linked; the
        # second is in the layout only while a search has a second predictor.
        self._best_layout = best_widget.ci
        self._best_plots = [pg.PlotItem(), pg.PlotItem()]
        self._best_curves = [pg.PlotDataItem(), pg.PlotDataItem()]
        for plot, curve in zip(self._best_plots, self._best_curves, strict=True):
            _styled(plot, "generation")
            plot.getAxis("left").setWidth(55)  # equal widths keep the generations aligned
            plot.addItem(curve)
        self._best_plots[1].setXLink(self._best_plots[0])
        self._best_plots[0].setTitle("Best score per generation", color="#222", size="10pt")
        self._best_layout.addItem(self._best_plots[0], row=0, col=0)
        self._best_drawn: list[tuple] = [(), ()]  # what each curve shows
        self._two_plots = False
        self.summary = QLabel(wordWrap=True)
        self.summary.setToolTip("Generations drawn, the newest front and best, time per predictor")
        # As wide as the plots, whatever its text: it wraps, the panel does not widen.
        self.summary.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        plots = QHBoxLayout()
        plots.addWidget(fronts_widget, 3)
        plots.addWidget(best_widget, 2)
        layout.addLayout(plots, 1)
        layout.addWidget(self.summary)
        self.clear()

    # --- what is drawn ------------------------------------------------------------------------

    def set_generations(self, generations: Iterable[SearchGeneration]) -> None:
        """Draw these generations (a stored search) instead of those drawn."""
        self._generations = sorted(generations, key=lambda g: g.generation)
        self._scorers = list(dict.fromkeys(g.scorer for g in self._generations))
        self._redraw()

    def clear(self) -> None:
        self.set_generations([])

    def generations(self) -> list[SearchGeneration]:
        return list(self._generations)

    def drawn_fronts(self) -> int:
        """How many fronts the left plot shows (the newest counted once)."""
        return len(self._by_age)

    def front_points(self, age: int = 0) -> tuple[np.ndarray, np.ndarray, float]:
        """(cost, score, opacity) of the front ``age`` generations before the newest drawn."""
        item = self._by_age[age].item
        x, y = item.getData()
        return x, y, item.opacity()

    def best_points(self, scorer: str) -> tuple[np.ndarray, np.ndarray]:
        """(generation, best score) of the generations ``scorer`` ranked."""
        x, y = self._best_curves[self._scorers.index(scorer)].getData()
        return (np.empty(0), np.empty(0)) if x is None else (x, y)

    # --- drawing ------------------------------------------------------------------------------

    def _redraw(self) -> None:
        self._draw_fronts()
        self._draw_best()
        text = self._summary()
        if text != self.summary.text():
            self.summary.setText(text)

    def _draw_fronts(self) -> None:
        newest = self._generations[-1] if self._generations else None
        same_scale = [g for g in self._generations if g.score_label == newest.score_label]
        drawn = same_scale[-MAX_FRONTS:][::-1]  # newest first
        metric = x_metric(newest) if newest else None
        color = self._color_of(newest.scorer) if newest else ""
        slots = {g.generation % MAX_FRONTS: g for g in drawn}
        for slot, front in enumerate(self._ring):
            if slot in slots:
                front.show(slots[slot], metric, color)
            else:
                front.hide()
        self._by_age = [self._ring[g.generation % MAX_FRONTS] for g in drawn]
        for age, front in enumerate(self._by_age):
            front.fade(front_alpha(age))
        if newest is None:
            self._newest.hide()
            self._population.setData([], [])
            self._set_text(self.fronts, "title", "No search shown")
            return
        self._newest.show(newest, metric, color)
        population = [m for m in newest.members if metric in m.metrics]
        self._population.setData(
            [m.metrics[metric] for m in population], [m.score for m in population]
        )
        self._set_text(self.fronts, "bottom", _axis_title(metric))
        self._set_text(self.fronts, "left", newest.score_label)
        self._set_text(self.fronts, "title", f"Fronts of the last {len(drawn)} generation(s)")

    def _draw_best(self) -> None:
        for index, curve in enumerate(self._best_curves):
            scorer = self._scorers[index] if index < len(self._scorers) else None
            ranked = [g for g in self._generations if g.scorer == scorer]
            points = tuple((g.generation, max(m.score for m in g.members)) for g in ranked)
            if points == self._best_drawn[index]:
                continue
            self._best_drawn[index] = points
            color = self._color_of(scorer) if scorer else "#000"
            curve.setData(
                [x for x, _ in points],
                [y for _, y in points],
                pen=pg.mkPen(color, width=2),
                symbol="o",
                symbolSize=5,
                symbolBrush=color,
                symbolPen=None,
            )
            if ranked:
                self._set_text(self._best_plots[index], "left", ranked[0].score_label, color)
        two = len(self._scorers) > 1
        if two != self._two_plots:
            if two:
                self._best_layout.addItem(self._best_plots[1], row=1, col=0)
            else:
                self._best_layout.removeItem(self._best_plots[1])
            self._two_plots = two
        if two:  # the linked x axis spans both predictors' generations
            generations = [g.generation for g in self._generations]
            self._best_plots[0].setXRange(min(generations), max(generations))

    def _set_text(self, plot: pg.PlotItem, place: str, text: str, color: str = "#222") -> None:
        """An axis label or the title, set only when it changes."""
        if self._texts.get((id(plot), place)) == (text, color):
            return
        self._texts[(id(plot), place)] = (text, color)
        if place == "title":
            plot.setTitle(html.escape(text), color=color, size="10pt")
        else:
            plot.setLabel(place, text, color=color)

    def _color_of(self, scorer: str) -> str:
        return _SCORER_COLORS[self._scorers.index(scorer) % len(_SCORER_COLORS)]

    def _summary(self) -> str:
        if not self._generations:
            return "No generation yet."
        newest = self._generations[-1]
        best = max(newest.members, key=lambda m: m.score, default=None)
        parts = [
            f"<b>{len(self._generations)}</b> generation(s)",
            f"front of generation {newest.generation}: {len(newest.front)} architecture(s)",
        ]
        other_scale = sum(g.score_label != newest.score_label for g in self._generations)
        if other_scale:
            parts.append(f"{other_scale} ranked by another predictor: fronts not drawn")
        if best is not None:
            parts.append(f"best {best.score:.4g} ({html.escape(best.arch.id)})")
        return " · ".join(parts) + "<br>Time per predictor: " + self.time_text()

    def time_text(self) -> str:
        """Seconds spent in each predictor, in its colour: "distilled:x 0.8 s · supernet:y 41 s"."""
        entries = (
            f"<span style='color:{self._color_of(s)}'>■</span>&nbsp;{html.escape(s)}&nbsp;"
            f"{_seconds(sum(g.seconds for g in self._generations if g.scorer == s))}"
            for s in self._scorers
        )
        return " · ".join(entries)


def _front_xy(generation: SearchGeneration, metric: str | None) -> tuple[np.ndarray, np.ndarray]:
    """The front's members as points sorted by cost (a step-free polyline reads as a front)."""
    front = set(generation.front)
    points = sorted(
        (m.metrics[metric], m.score)
        for m in generation.members
        if m.arch.id in front and metric in m.metrics
    )
    if not points:
        return np.empty(0), np.empty(0)
    x, y = zip(*points, strict=True)
    return np.asarray(x, dtype=float), np.asarray(y, dtype=float)


def _axis_title(metric: str | None) -> str:
    if metric is None:
        return "cost"
    if metric.startswith(f"{LATENCY_MS}@"):
        return f"predicted latency (ms) on {metric.split('@', 1)[1]}"
    return {GFLOPS: "GFLOPs", PARAMS: "parameters"}.get(metric, metric)


def _seconds(value: float) -> str:
    if value < 1:
        return f"{value * 1000:.0f}&nbsp;ms"
    return f"{value:.1f}&nbsp;s" if value < 600 else f"{value / 60:.1f}&nbsp;min"
