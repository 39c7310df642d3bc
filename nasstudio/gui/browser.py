"""The architecture browser: a filtering table model over ``Project.table``, and the
panel (filter row plus table view) that keeps selection across reloads."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
from PySide6.QtCore import (
    QAbstractTableModel,
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
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
from nasstudio.gui.view_state import ViewState

_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_ROOT = QModelIndex()
# More separate runs of changed rows than this are announced as one range.
_MAX_CHANGED_RUNS = 64


class ArchitectureTableModel(QAbstractTableModel):
    """One row per architecture the filter keeps, in display units (parameters in millions).

    Columns are held as numpy arrays in the table's order; ``order`` maps a model row to a
    position in them, so filtering is one numpy mask, sorting one argsort, and cells are
    formatted only when shown. (A QSortFilterProxyModel would call Python once per row on every
    reset, and once per comparison when sorting: seconds for large tables.) A new table that
    only changes some rows or adds rows at the end (a job recording its results) updates those
    rows alone. ``about_to_sort`` and ``sorted`` let the view drop and restore a large
    selection around a sort: Qt would otherwise move every selected cell's persistent index
    (seconds for 7,000).
    """

    about_to_sort = Signal()
    sorted = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._keys: list[str] = []
        self._values: dict[str, np.ndarray] = {}
        self._ids = pd.Index([], dtype=object)
        self._order = np.arange(0)
        self._sort_key: str | None = None
        self._sort_order = Qt.SortOrder.AscendingOrder
        self._filter: tuple[str | None, str] = (None, "")
        self._mask: np.ndarray | None = None  # rows the filter keeps, in table order
        self._mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)

    # --- data ---------------------------------------------------------------------------------

    def set_table(self, table: pd.DataFrame) -> bool:
        """Show ``table`` (from ``Project.table``), keeping the sort column and the filter;
        whether the model was reset (else only changed and added rows were updated)."""
        keys = columns.table_columns(table.columns)
        ids = pd.Index(table.index.to_numpy(dtype=object))
        values = {key: self._column(table, key) for key in keys}
        try:
            mask = self._compute_mask(keys, values, *self._filter)
        except FilterError:  # the filter does not read on the new columns: shown unfiltered
            mask = None
        if self._update(keys, ids, values, mask):
            return False
        self.beginResetModel()
        self._keys, self._ids, self._values, self._mask = keys, ids, values, mask
        self._order = self._sorted_order()
        self.endResetModel()
        return True

    def _update(
        self,
        keys: list[str],
        ids: pd.Index,
        values: dict[str, np.ndarray],
        mask: np.ndarray | None,
    ) -> bool:
        """Apply a table with the same columns whose first rows are the current ones, when the
        rows shown stay where they are: no new row in a sorted table, no change in its sort
        column, none in what the filter keeps of the old rows."""
        old = len(self._ids)
        if old == 0 or keys != self._keys or not ids[:old].equals(self._ids):
            return False
        if (mask is None) != (self._mask is None) or (
            mask is not None and not np.array_equal(mask[:old], self._mask)
        ):
            return False
        changed = {key: _differs(self._values[key], values[key][:old]) for key in keys}
        # A sort column absent from the table leaves the rows in table order (unsorted).
        if self._sort_key in changed and (len(ids) > old or changed[self._sort_key].any()):
            return False
        self._ids, self._values, self._mask = ids, values, mask
        added = np.arange(old, len(ids))
        if mask is not None:
            added = added[mask[old:]]
        if added.size:  # unsorted: rows in table order, the new ones last
            shown = self._order.size
            self.beginInsertRows(_ROOT, shown, shown + added.size - 1)
            self._order = np.concatenate([self._order, added])
            self.endInsertRows()
        changed_positions = np.flatnonzero(np.logical_or.reduce(list(changed.values())))
        runs = list(_runs(np.unique(self.rows_of_positions(changed_positions))))
        if len(runs) > _MAX_CHANGED_RUNS:
            runs = [(runs[0][0], runs[-1][1])]
        for first, last in runs:
            self.dataChanged.emit(self.index(first, 0), self.index(last, len(keys) - 1))
        return True

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
    def sort_key(self) -> str | None:
        return self._sort_key

    @property
    def sort_order(self) -> Qt.SortOrder:
        return self._sort_order

    @property
    def filter_key(self) -> str | None:
        return self._filter[0]

    def total_count(self) -> int:
        """Architectures in the table, shown or not."""
        return len(self._ids)

    def column_of(self, key: str) -> int:
        return self._keys.index(key) if key in self._keys else -1

    def values(self, key: str) -> np.ndarray:
        """A whole column in table order (displayed units), filtered out rows included."""
        return self._values[key]

    def ids_at(self, rows: np.ndarray) -> list[str]:
        return self._ids[self._order[rows]].tolist()

    def rows_of(self, ids: Iterable[str]) -> np.ndarray:
        """Model rows of the ``ids`` shown, in no particular order."""
        positions = self._ids.get_indexer(list(ids))
        return self.rows_of_positions(positions[positions >= 0])

    def rows_of_positions(self, positions: np.ndarray) -> np.ndarray:
        """Model rows of the table positions shown."""
        rows = np.full(len(self._ids), -1)
        rows[self._order] = np.arange(self._order.size)
        found = rows[positions]
        return found[found >= 0]

    def set_filter(self, key: str | None, text: str) -> None:
        """Keep rows whose ``key`` column matches ``text``; raises FilterError if unreadable
        (and then keeps the current filter)."""
        mask = self._compute_mask(self._keys, self._values, key, text)
        self.beginResetModel()
        self._filter, self._mask = (key, text), mask
        self._order = self._sorted_order()
        self.endResetModel()

    @staticmethod
    def _compute_mask(
        keys: list[str], values: dict[str, np.ndarray], key: str | None, text: str
    ) -> np.ndarray | None:
        if key is None or key not in keys:
            return None
        formatter = None if columns.is_text(key) else lambda v: columns.format_value(key, v)
        return filter_mask(values[key], text, formatter)

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
        self.about_to_sort.emit()
        self._sort_key = self._keys[column] if 0 <= column < len(self._keys) else None
        self._sort_order = order
        self.layoutAboutToBeChanged.emit()
        old = self.persistentIndexList()
        positions = self._order[[index.row() for index in old]]
        self._order = self._sorted_order()
        rows = self.rows_of_positions(positions)
        new = [self.index(int(r), i.column()) for r, i in zip(rows, old, strict=True)]
        self.changePersistentIndexList(old, new)
        self.layoutChanged.emit()
        self.sorted.emit()

    def _sorted_order(self) -> np.ndarray:
        """The positions shown, in the sort order."""
        n = len(self._ids)
        if self._sort_key not in self._values:
            order = np.arange(n)
        else:
            values = self._values[self._sort_key]
            descending = self._sort_order == Qt.SortOrder.DescendingOrder
            if columns.is_text(self._sort_key):
                order = np.argsort(values.astype(str), kind="stable")
                order = order[::-1] if descending else order
            else:
                # Negating keeps NaN (missing) at the end and ties in table order.
                order = np.argsort(-values if descending else values, kind="stable")
        return order if self._mask is None else order[self._mask[order]]


class BrowserPanel(QWidget):
    """Filter row and architecture table. Its selection and current row are the view state's
    ``selection`` and ``current``: it writes them, and selects what others set there."""

    selection_changed = Signal(list)  # ids, in display order
    table_changed = Signal()  # after each new table, whether reset or updated in place

    def __init__(self, view: ViewState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._view = view
        self.model = ArchitectureTableModel(self)
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
        self._debouncer = QSignalDebouncer(parent=self)
        self._debouncer.setTimeout(200)
        self._layout_widgets()
        self._connect()

    def _make_view(self) -> QTableView:
        view = QTableView(self)
        view.setModel(self.model)
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
        self.model.about_to_sort.connect(self._hold_selection)
        self.model.sorted.connect(self._restore_selection)
        self.model.rowsInserted.connect(self._update_count)
        self.model.modelReset.connect(self._update_count)
        self._view.events.selection.connect(self._follow_view_selection)

    # --- public API ---------------------------------------------------------------------------

    def set_table(self, table: pd.DataFrame) -> None:
        """Show a new table; selection, current row, sort and filter carry over by id/column."""
        selected, current = self.selected_ids(), self.current_id()
        scroll = self.view.verticalScrollBar().value()
        keys_before = self.model.keys
        widths = {key: self.view.columnWidth(i) for i, key in enumerate(keys_before)}
        with self._quietly():
            reset = self.model.set_table(table)
            if self.model.keys != keys_before:
                self._refill_filter_columns()
                # Widths stay with their columns; only new columns are measured (slow).
                for column, key in enumerate(self.model.keys):
                    if key in widths:
                        self.view.setColumnWidth(column, widths[key])
                    else:
                        self.view.resizeColumnToContents(column)
            if reset:
                self._show_sort_indicator()
                self._select(selected, current, scroll_to=False)
        if reset:
            self.view.verticalScrollBar().setValue(scroll)
        self._update_count()
        self._report_changes()
        self.table_changed.emit()

    def selected_ids(self) -> list[str]:
        ranges = self.view.selectionModel().selection()
        if ranges.isEmpty():
            return []
        rows = np.unique(np.concatenate([np.arange(r.top(), r.bottom() + 1) for r in ranges]))
        return self.model.ids_at(rows)

    def current_id(self) -> str | None:
        index = self.view.selectionModel().currentIndex()
        if not index.isValid():
            return None
        return self.model.ids_at(np.array([index.row()]))[0]

    def select_ids(self, ids: Iterable[str], extend: bool = False) -> int:
        """Select the rows of ``ids`` that the filter shows and scroll to the first; returns
        how many were selected."""
        ids = list(ids)
        if extend:
            ids = list(dict.fromkeys([*self.selected_ids(), *ids]))
        count = self._select(ids, ids[0] if ids else None, scroll_to=True)
        self._report_changes()
        return count

    def select_random(self, count: int) -> int:
        """Select ``count`` rows at random among those the filter shows."""
        pool = self.model.ids_at(np.arange(self.model.rowCount()))
        return self.select_ids(random.sample(pool, min(count, len(pool))))

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
        return self.model.rowCount()

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
        rows = np.unique(self.model.rows_of(ids))
        selection = QItemSelection()
        last_column = max(self.model.columnCount() - 1, 0)
        for start, stop in _runs(rows):
            selection.select(self.model.index(start, 0), self.model.index(stop, last_column))
        flags = (
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows
        )
        model = self.view.selectionModel()
        with self._quietly():
            model.select(selection, flags)
            current_rows = self.model.rows_of([current]) if current else rows[:0]
            if current_rows.size:
                index = self.model.index(int(current_rows[0]), 0)
                model.setCurrentIndex(index, QItemSelectionModel.SelectionFlag.NoUpdate)
                if scroll_to:
                    self.view.scrollTo(index)
        return int(rows.size)

    def _show_sort_indicator(self) -> None:
        header = self.view.horizontalHeader()
        with signals_blocked(header):
            column = self.model.column_of(self.model.sort_key) if self.model.sort_key else -1
            header.setSortIndicator(column, self.model.sort_order)

    def _refill_filter_columns(self) -> None:
        key = self.filter_column.currentData() or self.model.filter_key or columns.ID
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
                self.model.set_filter(key, text)
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
        shown, total = self.model.rowCount(), self.model.total_count()
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
            self._view.selection = selected
            self.selection_changed.emit(selected)
        if current != self._last_current:
            self._last_current = current
            self._view.current = current

    def _follow_view_selection(self, ids: tuple[str, ...]) -> None:
        """Another panel chose a selection: select what the filter shows of it (and say so
        in the view state)."""
        if list(ids) != self._last_selection:
            self.select_ids(ids)
            self._view.selection = self._last_selection


def _differs(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Element-wise: the value changed (missing and missing are the same)."""
    if old.dtype.kind == "f":
        return ~((old == new) | (np.isnan(old) & np.isnan(new)))
    differs = old != new
    if differs.any():  # None against NaN, say: both missing
        differs[differs] = ~(pd.isna(old[differs]) & pd.isna(new[differs]))
    return differs


def _runs(rows: np.ndarray) -> Iterator[tuple[int, int]]:
    """(first, last) of each run of consecutive values in the sorted array ``rows``."""
    if rows.size == 0:
        return
    breaks = np.flatnonzero(np.diff(rows) != 1)
    starts = rows[np.concatenate(([0], breaks + 1))]
    stops = rows[np.concatenate((breaks, [rows.size - 1]))]
    yield from zip(starts.tolist(), stops.tolist(), strict=True)
