"""The Pareto view: BLEU (measured or predicted) against a cost, the front as a step line.

Points are drawn from numpy arrays, per source, in chunks of consecutive table rows
(``_PointGroup``): a reload that changes a few points re-sends only their chunks to pyqtgraph,
so the window stays responsive while a job records results into a task of 30,000 architectures.
Hover and click find the nearest point with numpy in pixel space (pyqtgraph's own point
picking builds a Python object per point).
Architectures with a cost but no value on the chosen BLEU axis (freshly sampled ones) appear
in a strip under the plot, on the same cost axis.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyqtgraph as pg
from pyqtgraph.exporters import ImageExporter
from pyqtgraph.GraphicsScene.mouseEvents import MouseClickEvent
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QAction, QCursor
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QToolTip,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import signals_blocked

from nasstudio.gui import columns
from nasstudio.gui.view_state import ViewState
from nasstudio.search import pareto_front_2d

PICK_RADIUS_PX = 6
# Table rows per plot item of a point group: pyqtgraph spends about 3 µs a point on setData.
CHUNK_ROWS = 2048
EMPTY_Y_RANGE = (0.0, 1.0)  # the BLEU axis while no point has a BLEU
# Okabe-Ito colours, distinguishable with the common colour-vision deficiencies.
_PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
_FRONT_COLOR = "#C00000"
_HIGHLIGHT_COLOR = "#FF00FF"
_UNSCORED_COLOR = (90, 90, 90, 140)
_NO_SOURCE = "unknown"
_EMPTY_TASK = (
    "No architectures in this task yet.\n"
    "Import files (Ctrl+I) or sample architectures (Ctrl+Shift+S)."
)
_NO_BLEU = (
    "No architecture in this task has a BLEU score yet.\n"
    "Import ground truth (Project ▸ Import…, e.g. the llmas seed files)\n"
    "or train architectures to see BLEU against cost."
)


@dataclass
class _Layer:
    """Points drawn on one plot: table positions (ascending) and their coordinates."""

    positions: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.intp))
    x: np.ndarray = field(default_factory=lambda: np.empty(0))
    y: np.ndarray = field(default_factory=lambda: np.empty(0))

    def indices_of(self, positions: np.ndarray) -> np.ndarray:
        """Indices into this layer of the table ``positions`` that it holds."""
        found = np.searchsorted(self.positions, positions)
        inside = found < self.positions.size
        inside[inside] = self.positions[found[inside]] == positions[inside]
        return found[inside]


class _PointGroup:
    """Points of one look, at ascending table positions, drawn by one ScatterPlotItem per
    ``CHUNK_ROWS`` rows of the table. For the legend it is one entry: pyqtgraph's ItemSample
    reads its ``opts`` and toggles its visibility."""

    def __init__(self, size: float, brush: object, z: float = 0.0) -> None:
        self.opts = {"pen": None, "brush": brush, "size": size, "symbol": "o"}
        self._z = z
        self._visible = True
        self._items: list[pg.ScatterPlotItem] = []

    def set_points(
        self, plot: pg.PlotItem, positions: np.ndarray, x: np.ndarray, y: np.ndarray
    ) -> None:
        chunks = int(positions[-1]) // CHUNK_ROWS + 1 if positions.size else 0
        while len(self._items) < chunks:
            item = pg.ScatterPlotItem(size=self.opts["size"], pen=None, brush=self.opts["brush"])
            item.setZValue(self._z)
            item.setVisible(self._visible)
            plot.addItem(item)
            self._items.append(item)
        ends = np.searchsorted(positions, CHUNK_ROWS * np.arange(1, len(self._items) + 1))
        start = 0
        for item, end in zip(self._items, ends, strict=True):
            _set_points(item, x[start:end], y[start:end])
            start = end

    def remove(self, plot: pg.PlotItem) -> None:
        for item in self._items:
            plot.removeItem(item)
        self._items.clear()

    def count(self) -> int:
        return sum(item.data.size for item in self._items)

    # pyqtgraph's ItemSample (the legend) calls these two.
    def isVisible(self) -> bool:
        return self._visible

    def setVisible(self, visible: bool) -> None:
        self._visible = visible
        for item in self._items:
            item.setVisible(visible)


class _XExtent(pg.GraphicsObject):
    """Invisible item that widens the plot's automatic x range (not y) to [low, high], so the
    linked strip's points are in view even when the plot itself has none."""

    def __init__(self) -> None:
        super().__init__()
        self._range: tuple[float, float] | None = None

    def set_range(self, values: np.ndarray) -> None:
        self._range = (float(values.min()), float(values.max())) if values.size else None
        self.informViewBoundsChanged()

    def dataBounds(self, ax: int, frac: float = 1.0, orthoRange: object = None) -> object:
        return self._range if ax == 0 and self._range else None

    def boundingRect(self) -> QRectF:
        return QRectF()

    def paint(self, *args: object) -> None:
        pass


class ParetoView(QWidget):
    """Scatter of the current task's table with its Pareto front (minimise x, maximise y).

    Its axes are the view state's ``x_axis`` and ``y_axis`` (a key the table lacks is kept for
    later tables), and it marks the view state's ``selection``.
    A benchmark times ``set_table(df)`` (or ``redraw()`` after it) with ``df`` shaped like
    ``Project.table``: an id index, metric columns and ``source:<column>`` columns.
    """

    points_clicked = Signal(list, bool)  # ids, extend the selection (Ctrl held)

    def __init__(self, view: ViewState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._view = view
        self._table = pd.DataFrame()
        self._index = pd.Index([], dtype=object)
        self._drawn_axes: tuple[str | None, str | None] = (None, None)
        self._highlighted: list[str] = list(view.selection)
        self._colors: dict[str, str] = {}
        self._source_items: dict[str, _PointGroup] = {}
        self._scored = _Layer()
        self._unscored = _Layer()
        self._codes = np.empty(0, dtype=np.intp)  # source of each scored point
        self._code_items: list[_PointGroup] = []  # the points of each source code
        self._front = np.empty(0, dtype=np.intp)  # indices into the scored layer
        self._tip_shown = False
        self.x_combo = QComboBox(toolTip="Cost on the x axis (minimised): latency, GFLOPs, size")
        self.y_combo = QComboBox(toolTip="BLEU on the y axis (maximised): measured or predicted")
        self.canvas = pg.GraphicsLayoutWidget()
        self.message = QLabel(alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        self._build_plots()
        self._layout_widgets()
        self.x_combo.currentIndexChanged.connect(self._on_axis_chosen)
        self.y_combo.currentIndexChanged.connect(self._on_axis_chosen)
        view.events.x_axis.connect(self._follow_view_axes)
        view.events.y_axis.connect(self._follow_view_axes)
        view.events.selection.connect(self.highlight)
        view.events.task.connect(self._on_task)

    # --- construction -------------------------------------------------------------------------

    def _build_plots(self) -> None:
        self.canvas.setBackground("w")
        self.plot = self.canvas.addPlot(row=0, col=0)
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.legend = self.plot.addLegend(offset=(-10, -10), labelTextColor="k")
        self.legend.setBrush(pg.mkBrush(255, 255, 255, 210))
        self._extent = _XExtent()
        self.plot.addItem(self._extent)
        self._front_line = pg.PlotCurveItem(pen=pg.mkPen(_FRONT_COLOR, width=2))
        self._front_marks = pg.ScatterPlotItem(
            size=10, pen=pg.mkPen(_FRONT_COLOR, width=1.5), brush=None
        )
        self._highlight = self._highlight_item()
        for item in (self._front_line, self._front_marks, self._highlight):
            item.setZValue(10)
            self.plot.addItem(item)
        self.strip = pg.PlotItem()
        self.strip.getAxis("left").setStyle(showValues=False)
        for plot in (self.plot, self.strip):
            plot.getAxis("left").setWidth(60)  # equal widths keep the two x axes aligned
            for side in ("left", "bottom"):
                plot.getAxis(side).setPen("#444")
                plot.getAxis(side).setTextPen("#222")
                # Values in the units the label names: an SI factor like "(x0.001)" on one
                # plot and not on the strip under it would read as different numbers.
                plot.getAxis(side).enableAutoSIPrefix(False)
        self.strip.setMouseEnabled(x=True, y=False)
        self.strip.setYRange(-0.1, 1.1, padding=0)
        self.strip.setMaximumHeight(110)
        self.strip.setXLink(self.plot)
        self._strip_points = _PointGroup(5, pg.mkBrush(_UNSCORED_COLOR))
        self._strip_highlight = self._highlight_item()
        self.strip.addItem(self._strip_highlight)
        self._strip_shown = False
        scene = self.canvas.scene()
        export = QAction("Export plot as PNG…", self)
        export.triggered.connect(self._choose_png)
        # Replaces pyqtgraph's export dialog, whose SVG exporter fails with Qt 6.12.
        scene.contextMenu = [export]
        scene.sigMouseMoved.connect(self._on_mouse_moved)
        scene.sigMouseClicked.connect(self._on_mouse_clicked)

    @staticmethod
    def _highlight_item() -> pg.ScatterPlotItem:
        item = pg.ScatterPlotItem(size=13, pen=pg.mkPen(_HIGHLIGHT_COLOR, width=2.5), brush=None)
        item.setZValue(20)
        return item

    def _layout_widgets(self) -> None:
        row = QHBoxLayout()
        row.setContentsMargins(8, 0, 0, 0)  # apart from the browser's count beside it
        for combo in (self.y_combo, self.x_combo):
            # Long column names must not widen the window: the combo shrinks, its list does not.
            combo.setSizeAdjustPolicy(
                QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
            )
            combo.setMinimumContentsLength(6)
        row.addWidget(QLabel("BLEU (y)"))
        row.addWidget(self.y_combo, 1)
        row.addSpacing(6)
        row.addWidget(QLabel("Cost (x)"))
        row.addWidget(self.x_combo, 1)
        self.message.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.message.setStyleSheet(
            "QLabel { background: rgba(255,255,255,225); color: #333; padding: 12px;"
            " border: 1px solid #ccc; border-radius: 6px; }"
        )
        stack = QGridLayout()
        stack.addWidget(self.canvas, 0, 0)
        stack.addWidget(self.message, 0, 0, Qt.AlignmentFlag.AlignCenter)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addLayout(stack, 1)

    # --- public API ---------------------------------------------------------------------------

    def set_table(
        self, table: pd.DataFrame, value_columns: dict[str, list[str]] | None = None
    ) -> None:
        """Show ``table`` (``Project.table``); ``value_columns`` (``Project.value_columns``)
        fills the axis choices, which otherwise come from the table's columns."""
        self._table = table
        self._index = pd.Index(table.index.to_numpy(dtype=object))
        if value_columns is None:
            keys = columns.metric_columns(table.columns)
            value_columns = {"measured": keys, "predicted": []}
        self._fill_axes(value_columns)
        self.redraw()

    def set_axes(self, x: str | None, y: str | None) -> None:
        """Choose the axes by column key (None keeps that axis), in the view state."""
        if x:
            self._view.x_axis = x
        if y:
            self._view.y_axis = y

    def axes(self) -> tuple[str | None, str | None]:
        return self.x_combo.currentData(), self.y_combo.currentData()

    def redraw(self) -> None:
        """Rebuild every plot item from the table for the chosen axes."""
        x_key, y_key = self._drawn_axes = self.axes()
        x = self._values(x_key)
        y = self._values(y_key)
        has_x = np.isfinite(x)
        scored, unscored = has_x & np.isfinite(y), has_x & ~np.isfinite(y)
        self._scored = self._layer(np.flatnonzero(scored), x, y)
        jitter = (np.arange(x.size) * 0.6180339887) % 1.0  # stable per table row
        self._unscored = self._layer(np.flatnonzero(unscored), x, jitter)
        self._extent.set_range(x[has_x])
        if not scored.any():
            # Nothing bounds BLEU: a neutral range, not the one of the previous table.
            self.plot.getViewBox().setRange(yRange=EMPTY_Y_RANGE, padding=0, disableAutoRange=False)
        self._draw_sources(y_key)
        self._draw_front()
        self._draw_strip(y_key)
        self._draw_highlight()
        self._set_labels(x_key, y_key)
        self._show_message(self._empty_message(x_key, y_key))

    def highlight(self, ids: Iterable[str]) -> None:
        """Mark these architectures (the view state's selection)."""
        self._highlighted = list(ids)
        self._draw_highlight()

    def plotted_ids(self) -> list[str]:
        """Ids of the points on the plot (those with both an x and a y value)."""
        return self._index[self._scored.positions].tolist()

    def plotted_count(self) -> int:
        return int(self._scored.positions.size)

    def unscored_ids(self) -> list[str]:
        """Ids in the strip: a cost but no value on the chosen y axis."""
        return self._index[self._unscored.positions].tolist()

    def front_ids(self) -> list[str]:
        """Ids on the Pareto front, best x first."""
        return self._index[self._scored.positions[self._front]].tolist()

    def highlighted_ids(self) -> list[str]:
        """Selected ids that are drawn (on the plot or the strip)."""
        positions = self._positions_of(self._highlighted)
        drawn = [
            layer.positions[layer.indices_of(positions)] for layer in (self._scored, self._unscored)
        ]
        return self._index[np.sort(np.concatenate(drawn))].tolist()

    def point_position(self, arch_id: str) -> QPoint | None:
        """Where ``arch_id`` is drawn, in canvas widget coordinates (for tests and tools)."""
        positions = self._positions_of([arch_id])
        for layer, plot in ((self._scored, self.plot), (self._unscored, self.strip)):
            found = layer.indices_of(positions)
            if found.size:
                i = int(found[0])
                scene = plot.vb.mapViewToScene(QPointF(layer.x[i], layer.y[i]))
                return self.canvas.mapFromScene(scene)
        return None

    def empty_message(self) -> str | None:
        return self.message.text() if self.message.isVisibleTo(self) else None

    def export_png(self, path: str | Path) -> None:
        ImageExporter(self.canvas.scene()).export(str(path))

    def _on_task(self, _: object = None) -> None:
        """Another task: its ranges follow its own data, whatever the user zoomed to before."""
        self.plot.enableAutoRange()

    # --- axes ---------------------------------------------------------------------------------

    def _fill_axes(self, value_columns: dict[str, list[str]]) -> None:
        measured, predicted = value_columns["measured"], value_columns["predicted"]
        xs = [k for k in columns.metric_columns(measured) if columns.is_cost(k)]
        ys = [k for k in columns.metric_columns(measured + predicted) if columns.is_bleu(k)]
        with signals_blocked(self.x_combo), signals_blocked(self.y_combo):
            self._refill(self.x_combo, xs, self._view.x_axis, _default_x(xs))
            self._refill(self.y_combo, ys, self._view.y_axis, _default_y(ys))

    def _refill(
        self, combo: QComboBox, keys: list[str], preferred: str | None, default: str | None
    ) -> None:
        current = combo.currentData()
        if [combo.itemData(i) for i in range(combo.count())] != keys:
            combo.clear()
            for key in keys:
                combo.addItem(columns.label(key), key)
                combo.setItemData(
                    combo.count() - 1, columns.tooltip(key), Qt.ItemDataRole.ToolTipRole
                )
        for choice in (preferred, current, default):
            if self._choose(combo, choice):
                return

    @staticmethod
    def _choose(combo: QComboBox, key: str | None) -> bool:
        index = combo.findData(key) if key else -1
        if index >= 0:
            combo.setCurrentIndex(index)
        return index >= 0

    def _on_axis_chosen(self) -> None:
        x, y = self.axes()
        self.set_axes(x, y)
        if self.axes() != self._drawn_axes:
            self.redraw()

    def _follow_view_axes(self, _: object = None) -> None:
        with signals_blocked(self.x_combo), signals_blocked(self.y_combo):
            self._choose(self.x_combo, self._view.x_axis)
            self._choose(self.y_combo, self._view.y_axis)
        if self.axes() != self._drawn_axes:
            self.redraw()

    # --- drawing ------------------------------------------------------------------------------

    def _values(self, key: str | None) -> np.ndarray:
        if key is None or key not in self._table.columns:
            return np.full(len(self._table), np.nan)
        return self._table[key].to_numpy(dtype=np.float64) * columns.scale(key)

    @staticmethod
    def _layer(positions: np.ndarray, x: np.ndarray, y: np.ndarray) -> _Layer:
        return _Layer(positions, x[positions], y[positions])

    def _positions_of(self, ids: Iterable[str]) -> np.ndarray:
        positions = self._index.get_indexer(list(ids))
        return np.sort(positions[positions >= 0])

    def _draw_sources(self, y_key: str | None) -> None:
        source_key = f"{columns.SOURCE_PREFIX}{y_key}"
        if source_key in self._table.columns:
            sources = self._table[source_key].to_numpy(dtype=object)[self._scored.positions]
        else:
            sources = np.full(self._scored.positions.size, _NO_SOURCE, dtype=object)
        codes, names = pd.factorize(pd.Series(sources).fillna(_NO_SOURCE), sort=True)
        self._codes = codes
        self._code_items = [self._source_item(name) for name in names]
        self.legend.clear()
        for name in set(self._source_items) - set(names):
            self._source_items.pop(name).remove(self.plot)
        layer = self._scored
        for code, (name, group) in enumerate(zip(names, self._code_items, strict=True)):
            members = codes == code
            group.set_points(
                self.plot, layer.positions[members], layer.x[members], layer.y[members]
            )
            self.legend.addItem(group, f"{name} ({int(members.sum()):,})")

    def _source_item(self, name: str) -> _PointGroup:
        if name not in self._source_items:
            color = pg.mkColor(
                self._colors.setdefault(name, _PALETTE[len(self._colors) % len(_PALETTE)])
            )
            color.setAlpha(200)
            self._source_items[name] = _PointGroup(7, pg.mkBrush(color))
        return self._source_items[name]

    def _draw_front(self) -> None:
        layer = self._scored
        self._front = pareto_front_2d(layer.x, layer.y)
        fx, fy = layer.x[self._front], layer.y[self._front]
        # Staircase: from each front point right to the next one's x, then up to its y.
        self._front_line.setData(np.repeat(fx, 2)[1:], np.repeat(fy, 2)[:-1])
        _set_points(self._front_marks, fx, fy)
        if self._front.size:
            self.legend.addItem(self._front_line, f"Pareto front ({self._front.size:,})")

    def _draw_strip(self, y_key: str | None) -> None:
        layer = self._unscored
        self._strip_points.set_points(self.strip, layer.positions, layer.x, layer.y)
        show = layer.positions.size > 0
        if show != self._strip_shown:
            if show:
                self.canvas.addItem(self.strip, row=1, col=0)
            else:
                self.canvas.removeItem(self.strip)
            self._strip_shown = show
        what = columns.label(y_key) if y_key else "BLEU"
        self.strip.setTitle(
            f"{layer.positions.size:,} architectures without {what} (cost only)",
            size="9pt",
            color="#444",
        )

    def _draw_highlight(self) -> None:
        positions = self._positions_of(self._highlighted)
        for layer, item in (
            (self._scored, self._highlight),
            (self._unscored, self._strip_highlight),
        ):
            found = layer.indices_of(positions)
            _set_points(item, layer.x[found], layer.y[found])

    def _set_labels(self, x_key: str | None, y_key: str | None) -> None:
        self.plot.setLabel("bottom", columns.label(x_key) if x_key else "")
        self.plot.setLabel("left", columns.label(y_key) if y_key else "BLEU")
        # In the plot's title, where it has the plot's width, not in the crowded row of combos.
        self.plot.setTitle(self.info_text(), size="9pt", color="#444")

    def info_text(self) -> str:
        return f"{self._scored.positions.size:,} points · {self._front.size:,} on the front"

    def _empty_message(self, x_key: str | None, y_key: str | None) -> str | None:
        if self._table.empty:
            return _EMPTY_TASK
        if y_key is None:
            return _NO_BLEU
        if x_key is None:
            return "No cost (latency, GFLOPs, size) is known for this task's architectures."
        if self._scored.positions.size == 0:
            return (
                f"No architecture has both {columns.label(y_key)} and {columns.label(x_key)}.\n"
                "Choose other axes, import ground truth or train architectures."
            )
        return None

    def _show_message(self, text: str | None) -> None:
        self.message.setText(text or "")
        self.message.setVisible(text is not None)

    # --- hover and click ----------------------------------------------------------------------

    def _nearest(self, scene_pos: QPointF) -> int | None:
        """Table position of the point within PICK_RADIUS_PX of ``scene_pos``, if any."""
        for layer, plot, codes in (
            (self._scored, self.plot, self._codes),
            (self._unscored, self.strip, None),
        ):
            if layer.positions.size == 0 or not plot.isVisible() or plot.scene() is None:
                continue
            if not plot.vb.sceneBoundingRect().contains(scene_pos):
                continue
            point = plot.vb.mapSceneToView(scene_pos)
            px, py = plot.vb.viewPixelSize()
            d2 = ((layer.x - point.x()) / px) ** 2 + ((layer.y - point.y()) / py) ** 2
            if codes is not None:  # sources hidden through the legend cannot be picked
                shown = np.array([item.isVisible() for item in self._code_items], dtype=bool)
                d2[~shown[codes]] = np.inf
            best = int(np.argmin(d2))
            if d2[best] <= PICK_RADIUS_PX**2:
                return int(layer.positions[best])
        return None

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        position = self._nearest(scene_pos)
        if position is not None:
            QToolTip.showText(QCursor.pos(), self._describe(position), self.canvas)
            self._tip_shown = True
        elif self._tip_shown:
            QToolTip.hideText()
            self._tip_shown = False

    def _on_mouse_clicked(self, event: MouseClickEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton or event.double():
            return
        position = self._nearest(event.scenePos())
        if position is not None:
            extend = bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier)
            self.points_clicked.emit([self._index[position]], extend)
            event.accept()

    def _describe(self, position: int) -> str:
        row = self._table.iloc[position]
        x_key, y_key = self.axes()
        keys = [k for k in (y_key, x_key, "gflops", "params") if k and k in row.index]
        lines = [str(self._index[position]), f"origin: {row.get('origin', '')}"]
        for key in dict.fromkeys(keys):
            value = columns.format_value(key, float(row[key]) * columns.scale(key))
            lines.append(f"{columns.label(key)}: {value or '—'}")
        source = row.get(f"{columns.SOURCE_PREFIX}{y_key}")
        if isinstance(source, str):
            lines.append(f"source: {source}")
        return "\n".join(lines)

    def _choose_png(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export plot", "pareto.png", "PNG image (*.png)"
        )
        if path:
            self.export_png(path if path.lower().endswith(".png") else f"{path}.png")


def _set_points(item: pg.ScatterPlotItem, x: np.ndarray, y: np.ndarray) -> None:
    """``setData`` unless the item already shows these points: a reload while a job adds
    architectures without BLEU leaves the plotted ones as they are, and pyqtgraph spends
    about 3 µs per point on ``setData``."""
    old_x, old_y = item.getData()
    if not (np.array_equal(old_x, x) and np.array_equal(old_y, y)):
        item.setData(x, y)


def _default_x(keys: list[str]) -> str | None:
    latency = [k for k in keys if columns.split_key(k)[1] == "latency_ms"]
    return (latency or [k for k in keys if k == "gflops"] or keys or [None])[0]


def _default_y(keys: list[str]) -> str | None:
    return "bleu_valid" if "bleu_valid" in keys else (keys or [None])[0]
