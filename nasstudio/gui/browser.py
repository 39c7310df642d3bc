"""The architecture browser: a table model over ``Project.table``, a filter proxy, and the
panel (filter row plus table view) that keeps selection across reloads."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
from PySide6.QtCore import (
    QAbstractTableModel,
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import QSignalDebouncer, signals_blocked

from nasstudio.gui import columns
from nasstudio.gui.filtering import FilterError, filter_mask

_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_ROOT = QModelIndex()


class ArchitectureTableModel(QAbstractTableModel):
    """One row per architecture, in display units (parameters in millions).

    Columns are held as numpy arrays in the table's order; ``order`` maps a model row to a
    position in them, so sorting is one argsort and cells are formatted only when shown.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._keys: list[str] = []
        self._values: dict[str, np.ndarray] = {}
        self._ids = pd.Index([], dtype=object)
        self._order = np.arange(0)
        self._sort_key: str | None = None
        self._sort_order = Qt.SortOrder.AscendingOrder
        self._mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self.generation = 0  # bumped on every new table, for caches that depend on it

    # --- data ---------------------------------------------------------------------------------

    def set_table(self, table: pd.DataFrame) -> None:
        """Show ``table`` (from ``Project.table``), keeping the current sort column."""
        self.beginResetModel()
        self._keys = columns.table_columns(table.columns)
        self._ids = pd.Index(table.index.to_numpy(dtype=object))
        self._values = {key: self._column(table, key) for key in self._keys}
        self._order = self._sorted_order()
        self.generation += 1
        self.endResetModel()

    @staticmethod
    def _column(table: pd.DataFrame, key: str) -> np.ndarray:
        if key == columns.ID:
            return table.index.to_numpy(dtype=object)
        if columns.is_text(key):
            return table[key].to_numpy(dtype=object)
        return table[key].to_numpy(dtype=np.float64) * columns.scale(key)

    @property
    def keys(self) -> list[str]:
        return list(self._keys)

    @property
    def order(self) -> np.ndarray:
        """Table position of each model row."""
        return self._order

    @property
    def sort_key(self) -> str | None:
        return self._sort_key

    @property
    def sort_order(self) -> Qt.SortOrder:
        return self._sort_order

    def column_of(self, key: str) -> int:
        return self._keys.index(key) if key in self._keys else -1

    def values(self, key: str) -> np.ndarray:
        """A whole column in table order (displayed units)."""
        return self._values[key]

    def ids_at(self, rows: np.ndarray) -> list[str]:
        return self._ids[self._order[rows]].tolist()

    def rows_of(self, ids: Iterable[str]) -> np.ndarray:
        """Model rows of ``ids`` (those in the table), in no particular order."""
        positions = self._ids.get_indexer(list(ids))
        positions = positions[positions >= 0]
        rows = np.empty_like(self._order)
        rows[self._order] = np.arange(self._order.size)
        return rows[positions]

    # --- Qt model interface -------------------------------------------------------------------

    def rowCount(self, parent: QModelIndex = _ROOT) -> int:
        return 0 if parent.isValid() else int(self._order.size)

    def columnCount(self, parent: QModelIndex = _ROOT) -> int:
        return 0 if parent.isValid() else len(self._keys)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        key = self._keys[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            value = self._values[key][self._order[index.row()]]
            return value if columns.is_text(key) else columns.format_value(key, value)
        if role == Qt.ItemDataRole.TextAlignmentRole and not columns.is_text(key):
            return _RIGHT
        if role == Qt.ItemDataRole.FontRole and key == columns.ID:
            return self._mono
        if role == Qt.ItemDataRole.UserRole:  # the raw (displayed-unit) value
            value = self._values[key][self._order[index.row()]]
            return value if columns.is_text(key) else float(value)
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> object:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(self._keys):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return columns.header(self._keys[section])
        if role == Qt.ItemDataRole.ToolTipRole:
            return columns.tooltip(self._keys[section])
        return None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sort by a column with numpy (missing values last in both directions)."""
        self._sort_key = self._keys[column] if 0 <= column < len(self._keys) else None
        self._sort_order = order
        self.layoutAboutToBeChanged.emit()
        old = self.persistentIndexList()
        positions = self._order[[index.row() for index in old]]
        self._order = self._sorted_order()
        rows = np.empty_like(self._order)
        rows[self._order] = np.arange(self._order.size)
        new = [self.index(int(r), i.column()) for r, i in zip(rows[positions], old, strict=True)]
        self.changePersistentIndexList(old, new)
        self.layoutChanged.emit()

    def _sorted_order(self) -> np.ndarray:
        n = len(self._ids)
        if self._sort_key not in self._values:
            return np.arange(n)
        values = self._values[self._sort_key]
        descending = self._sort_order == Qt.SortOrder.DescendingOrder
        if columns.is_text(self._sort_key):
            order = np.argsort(values.astype(str), kind="stable")
            return order[::-1] if descending else order
        # Negating keeps NaN (missing) at the end and ties in table order.
        return np.argsort(-values if descending else values, kind="stable")


class ArchitectureFilterProxy(QSortFilterProxyModel):
    """Filters rows with a numpy mask and hands sorting to the source model.

    Qt's own proxy sort calls back into Python for every comparison (about 3 s for 8,500
    rows), so ``sort`` asks the source for its numpy sort instead. The proxy never sorts
    itself and therefore keeps the source's row order, which ``visible_source_rows`` uses.
    ``about_to_sort`` and ``sorted`` let the view drop and restore a large selection around a
    sort: Qt would otherwise move every selected cell's persistent index (seconds for 7,000).
    """

    about_to_sort = Signal()
    sorted = Signal()

    def __init__(self, model: ArchitectureTableModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._model = model
        self._key: str | None = None
        self._text = ""
        self._mask: np.ndarray | None = None
        self._mask_generation = -1
        self.setSourceModel(model)

    @property
    def filter_key(self) -> str | None:
        return self._key

    @property
    def filter_text(self) -> str:
        return self._text

    def set_filter(self, key: str | None, text: str) -> None:
        """Keep rows whose ``key`` column matches ``text``; raises FilterError if unreadable."""
        mask = self._compute_mask(key, text)
        # Qt 6.9 added begin/endFilterChange; 6.12 deprecates invalidateRowsFilter.
        modern = hasattr(self, "beginFilterChange")
        if modern:
            self.beginFilterChange()
        self._key, self._text = key, text
        self._mask, self._mask_generation = mask, self._model.generation
        if modern:
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self.invalidateRowsFilter()

    def _compute_mask(self, key: str | None, text: str) -> np.ndarray | None:
        if key is None or key not in self._model.keys:
            return None
        formatter = None if columns.is_text(key) else lambda v: columns.format_value(key, v)
        return filter_mask(self._model.values(key), text, formatter)

    def _current_mask(self) -> np.ndarray | None:
        # After the source loads a new table, the same filter is applied to the new values.
        if self._mask_generation != self._model.generation:
            try:
                self._mask = self._compute_mask(self._key, self._text)
            except FilterError:
                self._mask = None
            self._mask_generation = self._model.generation
        return self._mask

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex) -> bool:
        mask = self._current_mask()
        return mask is None or bool(mask[self._model.order[source_row]])

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self.about_to_sort.emit()
        self._model.sort(column, order)
        self.sorted.emit()

    def visible_source_rows(self) -> np.ndarray:
        """Source row of each proxy row, ascending (proxy row i shows the i-th entry)."""
        mask = self._current_mask()
        if mask is None:
            return np.arange(self._model.rowCount())
        return np.flatnonzero(mask[self._model.order])


class BrowserPanel(QWidget):
    """Filter row and architecture table; reports the selected and current architectures."""

    selection_changed = Signal(list)  # ids, in display order
    current_changed = Signal(object)  # id or None

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = ArchitectureTableModel(self)
        self.proxy = ArchitectureFilterProxy(self.model, self)
        self.view = self._make_view()
        self.filter_column = QComboBox(toolTip="Column to filter by")
        self.filter_edit = QLineEdit(
            placeholderText="Filter: text, or >25, <=3.2, >=25 <26 for numbers (Ctrl+F)",
            clearButtonEnabled=True,
        )
        self.filter_edit.setToolTip(
            "Rows whose chosen column contains this text; for number columns also "
            "comparisons such as >25, <3.2, =6, or several at once: >=25 <26"
        )
        self.count_label = QLabel()
        self._quiet = False
        self._last_selection: list[str] = []
        self._last_current: str | None = None
        self._held: tuple[list[str], str | None] = ([], None)  # selection during a sort
        self._debouncer = QSignalDebouncer(self)
        self._debouncer.setTimeout(200)
        self._layout_widgets()
        self._connect()

    def _make_view(self) -> QTableView:
        view = QTableView(self)
        view.setModel(self.proxy)
        view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        view.setAlternatingRowColors(True)
        view.verticalHeader().hide()
        view.verticalHeader().setDefaultSectionSize(view.fontMetrics().height() + 6)
        view.horizontalHeader().setResizeContentsPrecision(200)
        view.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        view.setSortingEnabled(True)
        view.setToolTip(
            "Architectures of the task: click a header to sort, Ctrl/Shift-click to select"
        )
        return view

    def _layout_widgets(self) -> None:
        row = QHBoxLayout()
        row.addWidget(QLabel("Filter"))
        row.addWidget(self.filter_column)
        row.addWidget(self.filter_edit, 1)
        row.addWidget(self.count_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.view, 1)

    def _connect(self) -> None:
        self.filter_edit.textChanged.connect(self._debouncer.throttle)
        self._debouncer.triggered.connect(self._apply_filter)
        self.filter_edit.returnPressed.connect(self._debouncer.flush)
        self.filter_column.currentIndexChanged.connect(self._apply_filter)
        selection = self.view.selectionModel()
        selection.selectionChanged.connect(self._on_selection_changed)
        selection.currentRowChanged.connect(self._on_current_changed)
        self.proxy.about_to_sort.connect(self._hold_selection)
        self.proxy.sorted.connect(self._restore_selection)
        self.proxy.rowsInserted.connect(self._update_count)
        self.proxy.rowsRemoved.connect(self._update_count)
        self.proxy.modelReset.connect(self._update_count)
        self.proxy.layoutChanged.connect(self._update_count)

    # --- public API ---------------------------------------------------------------------------

    def set_table(self, table: pd.DataFrame) -> None:
        """Show a new table; selection, current row, sort and filter carry over by id/column."""
        selected, current = self.selected_ids(), self.current_id()
        scroll = self.view.verticalScrollBar().value()
        keys_before = self.model.keys
        with self._quietly():
            self.model.set_table(table)
            if self.model.keys != keys_before:
                self._refill_filter_columns()
                self.view.resizeColumnsToContents()
            self._show_sort_indicator()
            self._select(selected, current, scroll_to=False)
        self.view.verticalScrollBar().setValue(scroll)
        self._update_count()
        self._report_changes()

    def selected_ids(self) -> list[str]:
        ranges = self.view.selectionModel().selection()
        if ranges.isEmpty():
            return []
        rows = np.unique(np.concatenate([np.arange(r.top(), r.bottom() + 1) for r in ranges]))
        return self.model.ids_at(self.proxy.visible_source_rows()[rows])

    def current_id(self) -> str | None:
        index = self.view.selectionModel().currentIndex()
        if not index.isValid():
            return None
        source_row = self.proxy.mapToSource(index).row()
        return self.model.ids_at(np.array([source_row]))[0]

    def select_ids(self, ids: Iterable[str], extend: bool = False) -> int:
        """Select the rows of ``ids`` that the filter shows and scroll to the first; returns
        how many were selected."""
        ids = list(ids)
        if extend:
            ids = list(dict.fromkeys([*self.selected_ids(), *ids]))
        count = self._select(ids, ids[0] if ids else None, scroll_to=True)
        self._report_changes()
        return count

    def set_filter(self, key: str, text: str) -> None:
        """Filter by column ``key`` at once (no typing delay)."""
        with signals_blocked(self.filter_column), signals_blocked(self.filter_edit):
            self.filter_column.setCurrentIndex(self.filter_column.findData(key))
            self.filter_edit.setText(text)
        self._apply_filter()

    def focus_filter(self) -> None:
        self.filter_edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.filter_edit.selectAll()

    def visible_count(self) -> int:
        return self.proxy.rowCount()

    # --- internals ----------------------------------------------------------------------------

    @contextmanager
    def _quietly(self) -> Iterator[None]:
        """Hold selection signals while rows are rebuilt; ``_report_changes`` sends one after."""
        self._quiet = True
        try:
            yield
        finally:
            self._quiet = False

    def _hold_selection(self) -> None:
        self._held = (self.selected_ids(), self.current_id())
        with self._quietly():
            self.view.selectionModel().clear()

    def _restore_selection(self) -> None:
        selected, current = self._held
        self._select(selected, current, scroll_to=False)

    def _select(self, ids: list[str], current: str | None, scroll_to: bool) -> int:
        proxy_rows = self._proxy_rows(ids)
        selection = QItemSelection()
        last_column = max(self.proxy.columnCount() - 1, 0)
        for start, stop in _runs(proxy_rows):
            selection.select(self.proxy.index(start, 0), self.proxy.index(stop, last_column))
        flags = (
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows
        )
        model = self.view.selectionModel()
        with self._quietly():
            model.select(selection, flags)
            current_rows = self._proxy_rows([current]) if current else proxy_rows[:0]
            if current_rows.size:
                index = self.proxy.index(int(current_rows[0]), 0)
                model.setCurrentIndex(index, QItemSelectionModel.SelectionFlag.NoUpdate)
                if scroll_to:
                    self.view.scrollTo(index)
        return int(proxy_rows.size)

    def _proxy_rows(self, ids: list[str]) -> np.ndarray:
        source_rows = self.model.rows_of(ids)
        visible = self.proxy.visible_source_rows()
        rows = np.searchsorted(visible, source_rows)
        shown = rows < visible.size
        shown[shown] = visible[rows[shown]] == source_rows[shown]
        return np.unique(rows[shown])

    def _show_sort_indicator(self) -> None:
        header = self.view.horizontalHeader()
        with signals_blocked(header):
            column = self.model.column_of(self.model.sort_key) if self.model.sort_key else -1
            header.setSortIndicator(column, self.model.sort_order)

    def _refill_filter_columns(self) -> None:
        key = self.filter_column.currentData() or self.proxy.filter_key or columns.ID
        with signals_blocked(self.filter_column):
            self.filter_column.clear()
            for column_key in self.model.keys:
                self.filter_column.addItem(columns.label(column_key), column_key)
                tip = columns.tooltip(column_key)
                self.filter_column.setItemData(
                    self.filter_column.count() - 1, tip, Qt.ItemDataRole.ToolTipRole
                )
            self.filter_column.setCurrentIndex(max(self.filter_column.findData(key), 0))

    def _apply_filter(self) -> None:
        key, text = self.filter_column.currentData(), self.filter_edit.text()
        selected = self.selected_ids()
        try:
            with self._quietly():
                self.proxy.set_filter(key, text)
                self._select(selected, self._last_current, scroll_to=False)
        except FilterError as exc:
            self._show_filter_error(str(exc))
            return
        self._show_filter_error(None)
        self._update_count()
        self._report_changes()

    def _show_filter_error(self, message: str | None) -> None:
        self.filter_edit.setStyleSheet("QLineEdit { color: #b00020; }" if message else "")
        if message:
            self.count_label.setText(f"<span style='color:#b00020'>{message}</span>")

    def _update_count(self) -> None:
        shown, total = self.proxy.rowCount(), self.model.rowCount()
        text = f"{total:,} architectures" if shown == total else f"{shown:,} of {total:,} shown"
        self.count_label.setText(text)

    def _on_selection_changed(self) -> None:
        if not self._quiet:
            self._report_changes()

    def _on_current_changed(self) -> None:
        if not self._quiet:
            self._report_changes()

    def _report_changes(self) -> None:
        selected, current = self.selected_ids(), self.current_id()
        if selected != self._last_selection:
            self._last_selection = selected
            self.selection_changed.emit(selected)
        if current != self._last_current:
            self._last_current = current
            self.current_changed.emit(current)


def _runs(rows: np.ndarray) -> Iterator[tuple[int, int]]:
    """(first, last) of each run of consecutive values in the sorted array ``rows``."""
    if rows.size == 0:
        return
    breaks = np.flatnonzero(np.diff(rows) != 1)
    starts = rows[np.concatenate(([0], breaks + 1))]
    stops = rows[np.concatenate((breaks, [rows.size - 1]))]
    yield from zip(starts.tolist(), stops.tolist(), strict=True)
