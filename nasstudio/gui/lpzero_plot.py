"""An LPZero search's live view: best and median fitness per iteration, the best formula, its
proxy values against the ground truth with rho and tau, and the classic proxies' rho and tau
on the same architectures. It draws ``ProxySample`` and ``ProxyIteration`` records as they
arrive or as the store gives them back.

The scatter shows the best candidate of the newest iteration that carries its values (an
iteration carries them when the best changed); architectures the proxy failed on are left out.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from nasstudio.jobs.records import ProxyIteration, ProxySample

BEST_COLOR = "#0072B2"  # Okabe-Ito blue and vermilion, as in the search plot
MEDIAN_COLOR = "#D55E00"
FOUND = "found proxy"  # the classic table's first row: the search's best, for comparison
_CLASSIC_HEADERS = ("Proxy", "ρ", "τ")


def _styled(plot: pg.PlotItem, bottom: str, left: str) -> None:
    plot.showGrid(x=True, y=True, alpha=0.2)
    plot.setLabel("bottom", bottom, color="#222")
    plot.setLabel("left", left, color="#222")
    for side in ("left", "bottom"):
        plot.getAxis(side).setPen("#444")
        plot.getAxis(side).setTextPen("#222")
        plot.getAxis(side).enableAutoSIPrefix(False)


def best_values_of(iterations: Iterable[ProxyIteration]) -> ProxyIteration | None:
    """The newest iteration that carries its best candidate's proxy values."""
    carrying = [i for i in iterations if i.best_values is not None]
    return max(carrying, key=lambda i: i.index, default=None)


class LPZeroPlot(QWidget):
    """Fitness curve and scatter side by side, the classic table beside them, the best
    formula and its correlations below."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._sample: ProxySample | None = None
        self._iterations: list[ProxyIteration] = []
        self._note = ""
        self._drawn: dict[str, object] = {}  # what each part shows: redraw only what changed
        self._titles: dict[int, str] = {}
        self.fitness = self._fitness_plot()
        self.scatter = self._scatter_plot()
        self.formula_edit = QLineEdit(readOnly=True, placeholderText="No search shown")
        self.formula_edit.setFont(QFont("monospace"))
        self.formula_edit.setToolTip("The best formula so far: select it to copy")
        self.summary = QLabel(wordWrap=True)
        self.summary.setToolTip("The best candidate's correlations with the ground truth")
        # As wide as the plots, whatever its text: it wraps, the panel does not widen.
        self.summary.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.classic_table = self._classic_table()
        plots = QHBoxLayout()
        plots.addWidget(self._fitness_widget, 1)
        plots.addWidget(self._scatter_widget, 1)
        plots.addWidget(self.classic_table)
        formula = QHBoxLayout()
        formula.addWidget(QLabel("Best"))
        formula.addWidget(self.formula_edit, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(plots, 1)
        layout.addLayout(formula)
        layout.addWidget(self.summary)
        self.clear()

    # --- construction -------------------------------------------------------------------------

    def _fitness_plot(self) -> pg.PlotItem:
        self._fitness_widget = widget = pg.PlotWidget(background="w")
        widget.setToolTip("Best and median fitness of the population after each iteration")
        plot = widget.getPlotItem()
        _styled(plot, "iteration", "fitness (|ρ|)")
        plot.setTitle("Best and median fitness", color="#222", size="9pt")
        plot.addLegend(offset=(-10, -10), labelTextColor="#222")
        self._best_curve = plot.plot(name="best", pen=pg.mkPen(BEST_COLOR, width=2))
        self._median_curve = plot.plot(
            name="median", pen=pg.mkPen(MEDIAN_COLOR, width=2, style=Qt.PenStyle.DashLine)
        )
        return plot

    def _scatter_plot(self) -> pg.PlotItem:
        self._scatter_widget = widget = pg.PlotWidget(background="w")
        widget.setToolTip(
            "The best candidate's proxy value of each architecture against its ground truth"
        )
        plot = widget.getPlotItem()
        _styled(plot, "ground truth", "proxy value")
        self._points = pg.ScatterPlotItem(size=6, pen=None, brush=pg.mkBrush(BEST_COLOR))
        plot.addItem(self._points)
        return plot

    def _classic_table(self) -> QTableWidget:
        table = QTableWidget(0, len(_CLASSIC_HEADERS))
        table.setHorizontalHeaderLabels(_CLASSIC_HEADERS)
        table.verticalHeader().hide()
        table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 6)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setToolTip(
            "Spearman ρ and Kendall τ of each classic proxy on the same architectures, the "
            "found proxy first; click a header to sort"
        )
        header = table.horizontalHeader()
        header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)  # in order until one is clicked
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        table.setMinimumWidth(100)  # the panel must fit beside the prompt editor at 1280
        table.setMaximumWidth(260)
        return table

    # --- what is drawn ------------------------------------------------------------------------

    def set_run(
        self,
        sample: ProxySample | None,
        iterations: Iterable[ProxyIteration] = (),
        note: str = "",
    ) -> None:
        """Draw this run (its sample, its iterations so far) instead of the one drawn; ``note``
        (what its job is doing) stands in the summary until the sample arrives."""
        self._sample = sample
        self._iterations = sorted(iterations, key=lambda i: i.index)
        self._note = note
        self._redraw()

    def clear(self) -> None:
        self.set_run(None)

    def iterations(self) -> list[ProxyIteration]:
        return list(self._iterations)

    def fitness_points(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(iteration, best fitness, median fitness) as drawn."""
        x, best = self._best_curve.getData()
        _, median = self._median_curve.getData()
        if x is None:
            return np.empty(0), np.empty(0), np.empty(0)
        return x, best, median

    def scatter_points(self) -> tuple[np.ndarray, np.ndarray]:
        """(ground truth, proxy value) of the architectures the best proxy scored."""
        x, y = self._points.getData()
        return np.asarray(x), np.asarray(y)

    def classic_rows(self) -> dict[str, tuple[float, float]]:
        """Proxy -> (rho, tau) as the table shows them."""
        table = self.classic_table
        return {
            table.item(row, 0).text(): (table.item(row, 1).value, table.item(row, 2).value)
            for row in range(table.rowCount())
        }

    # --- drawing ------------------------------------------------------------------------------

    def _redraw(self) -> None:
        newest = self._iterations[-1] if self._iterations else None
        self._draw_fitness()
        self._draw_scatter()
        self._draw_classic(newest)
        formula = newest.best if newest else ""
        if self.formula_edit.text() != formula:
            self.formula_edit.setText(formula)
            self.formula_edit.setCursorPosition(0)
        text = self._summary(newest)
        if text != self.summary.text():
            self.summary.setText(text)

    def _draw_fitness(self) -> None:
        points = tuple((i.index, i.best_fitness, i.median_fitness) for i in self._iterations)
        if self._changed("fitness", points):
            x = [p[0] for p in points]
            self._best_curve.setData(x, [p[1] for p in points])
            self._median_curve.setData(x, [p[2] for p in points])

    def _draw_scatter(self) -> None:
        carrying = best_values_of(self._iterations)
        sample = self._sample
        key = (sample, carrying.index if carrying else None)
        if not self._changed("scatter", key):
            return
        if sample is None or carrying is None:
            self._points.setData([], [])
            self._set_title(self.scatter, "No proxy values yet")
            return
        pairs = [
            (truth, value)
            for truth, value in zip(sample.truth, carrying.best_values, strict=False)
            if math.isfinite(value)
        ]
        self._points.setData([t for t, _ in pairs], [v for _, v in pairs])
        self.scatter.setLabel("bottom", html.escape(sample.truth_label), color="#222")
        self._set_title(self.scatter, f"ρ {carrying.best_rho:.3f} · τ {carrying.best_tau:.3f}")

    def _draw_classic(self, newest: ProxyIteration | None) -> None:
        rows = dict(self._sample.classic) if self._sample else {}
        if newest is not None:
            rows = {FOUND: (newest.best_rho, newest.best_tau), **rows}
        if not self._changed("classic", tuple(rows.items())):
            return
        table = self.classic_table
        table.setSortingEnabled(False)  # rows filled in place would move while sorted
        table.setRowCount(len(rows))
        bold = QFont()
        bold.setBold(True)
        for row, (name, (rho, tau)) in enumerate(rows.items()):
            cells = [QTableWidgetItem(name), _NumberItem(rho), _NumberItem(tau)]
            cells[0].setToolTip(name)  # a long name is elided in its cell
            for column, cell in enumerate(cells):
                if name == FOUND:
                    cell.setFont(bold)
                table.setItem(row, column, cell)
        table.setSortingEnabled(True)

    def _summary(self, newest: ProxyIteration | None) -> str:
        if self._sample is None:
            return html.escape(self._note) or "No search shown."
        sample = self._sample
        parts = [
            f"{html.escape(sample.benchmark)}: {len(sample.arch_ids):,} architectures "
            f"against {html.escape(sample.truth_label)}"
        ]
        if newest is None:
            parts.append("scoring the first population…")
        else:
            parts.append(f"<b>{newest.index + 1:,}</b> iteration(s)")
            parts.append(f"best ρ {newest.best_rho:.3f}, τ {newest.best_tau:.3f}")
        return " · ".join(parts)

    def _changed(self, part: str, key: object) -> bool:
        if self._drawn.get(part) == key:
            return False
        self._drawn[part] = key
        return True

    def _set_title(self, plot: pg.PlotItem, text: str) -> None:
        if self._titles.get(id(plot)) != text:
            self._titles[id(plot)] = text
            plot.setTitle(html.escape(text), color="#222", size="9pt")


class _NumberItem(QTableWidgetItem):
    """A correlation: shown with three decimals, sorted as a number (NaN, undefined, first)."""

    def __init__(self, value: float) -> None:
        super().__init__(f"{value:.3f}")
        self.value = float(value)
        self.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        mine, theirs = self.value, getattr(other, "value", math.nan)
        return (not math.isnan(mine), mine) < (not math.isnan(theirs), theirs)
