"""The architecture browser: sorting, filtering, selection by id."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PySide6.QtCore import Qt

from nasstudio.gui.browser import BrowserPanel
from nasstudio.gui.view_state import ViewState
from nasstudio.store import Project


@pytest.fixture
def table(project_path):
    with Project(project_path) as project:
        return project.table("demo")


@pytest.fixture
def browser(qtbot, table):
    panel = BrowserPanel(ViewState())
    qtbot.addWidget(panel)
    panel.set_table(table)
    return panel


def shown_ids(panel: BrowserPanel) -> list[str]:
    model = panel.model
    return [model.index(row, 0).data() for row in range(model.rowCount())]


def shown_values(panel: BrowserPanel, key: str) -> list[float]:
    column = panel.model.column_of(key)
    model = panel.model
    return [
        model.index(row, column).data(Qt.ItemDataRole.UserRole) for row in range(model.rowCount())
    ]


def test_columns_have_readable_headers(browser, table):
    model = browser.model
    headers = [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())]
    assert headers[:3] == ["ID", "Origin", "Enc\nembed"]
    assert "BLEU valid" in headers and "Params\nM" in headers
    assert not any(h.startswith("source:") or "_" in h for h in headers)
    assert sorted(shown_ids(browser)) == sorted(table.index)


def test_sorting_by_a_column_header(browser, table):
    column = browser.model.column_of("bleu_valid")
    browser.view.sortByColumn(column, Qt.SortOrder.DescendingOrder)
    values = shown_values(browser, "bleu_valid")
    scored = [v for v in values if not np.isnan(v)]
    assert scored == sorted(table["bleu_valid"].dropna(), reverse=True)
    assert all(np.isnan(v) for v in values[len(scored) :])  # missing values last
    browser.view.sortByColumn(browser.model.column_of("id"), Qt.SortOrder.AscendingOrder)
    assert shown_ids(browser) == sorted(table.index)


def test_filter_by_number_comparison_and_by_text(browser, table):
    threshold = float(table["bleu_valid"].median())
    browser.set_filter("bleu_valid", f">{threshold}")
    assert sorted(shown_ids(browser)) == sorted(table.index[table["bleu_valid"] > threshold])
    assert "of 40 shown" in browser.count_label.text()
    prefix = table.index[0][:3]
    browser.set_filter("id", prefix.upper())
    assert shown_ids(browser) == [i for i in table.index if i.startswith(prefix)]
    browser.set_filter("id", "")
    assert browser.visible_count() == len(table)


def test_unreadable_filter_keeps_rows_and_says_why(browser, table):
    browser.set_filter("gflops", "<abc")
    assert browser.visible_count() == len(table)
    assert "expected a number" in browser.count_label.text()


def test_select_ids_maps_through_sort_and_filter(browser, table):
    browser.view.sortByColumn(browser.model.column_of("gflops"), Qt.SortOrder.DescendingOrder)
    browser.set_filter("bleu_valid", ">0")
    wanted = list(table.index[[3, 7, 12]])
    with_hidden = [*wanted, table.index[-1]]  # the last has no BLEU: filtered out
    assert browser.select_ids(with_hidden) == 3
    assert sorted(browser.selected_ids()) == sorted(wanted)
    rows = browser.view.selectionModel().selectedRows()
    assert sorted(i.data() for i in rows) == sorted(wanted)
    assert browser.current_id() == wanted[0]


def test_selection_and_sort_survive_a_reload(browser, table, qtbot):
    browser.view.sortByColumn(browser.model.column_of("bleu_valid"), Qt.SortOrder.AscendingOrder)
    wanted = list(table.index[:2])
    browser.select_ids(wanted)
    with qtbot.assertNotEmitted(browser.selection_changed):
        browser.set_table(table.iloc[::-1])
    assert sorted(browser.selected_ids()) == sorted(wanted)
    values = [v for v in shown_values(browser, "bleu_valid") if not np.isnan(v)]
    assert values == sorted(values)


def test_selection_signal_carries_ids(browser, table, qtbot):
    with qtbot.waitSignal(browser.selection_changed) as signal:
        browser.view.selectRow(0)
    assert signal.args[0] == [shown_ids(browser)[0]]


def test_selection_is_the_view_states(browser, table):
    state = browser._view
    browser.view.selectRow(0)
    assert state.selection == (shown_ids(browser)[0],) and state.current == shown_ids(browser)[0]
    browser.set_filter("bleu_valid", ">0")
    hidden = table.index[-1]  # no BLEU: filtered out
    state.selection = [table.index[2], hidden]  # as another panel would
    assert browser.selected_ids() == [table.index[2]]
    assert state.selection == (table.index[2],)  # what the table could select


def test_a_table_with_changed_and_added_rows_updates_them_in_place(browser, table, qtbot):
    browser.set_filter("bleu_valid", ">0")  # keeps the 30 scored rows
    chosen = [table.index[1], table.index[2]]
    browser.select_ids(chosen)
    newer = table.copy()
    newer.loc[table.index[2], "bleu_valid"] = 99.0
    extra = table.iloc[:2].copy()  # two rows more at the end, one passing the filter
    extra.index = ["new-scored", "new-unscored"]
    extra["bleu_valid"] = [50.0, np.nan]
    newer = pd.concat([newer, extra])
    with (
        qtbot.assertNotEmitted(browser.model.modelReset),
        qtbot.waitSignal(browser.model.dataChanged),
        qtbot.waitSignal(browser.model.rowsInserted),
    ):
        browser.set_table(newer)
    assert browser.visible_count() == 31 and shown_ids(browser)[-1] == "new-scored"
    assert browser.selected_ids() == chosen  # the selection was left alone
    row = browser.model.rows_of([table.index[2]])[0]
    column = browser.model.column_of("bleu_valid")
    assert browser.model.index(int(row), column).data() == "99.00"
    assert "31 of 42 shown" in browser.count_label.text()
    # A new column is a new table: the model resets, the filter still applies.
    with qtbot.waitSignal(browser.model.modelReset):
        browser.set_table(newer.assign(bleu_test=1.0))
    assert browser.visible_count() == 31


def test_a_reload_without_the_sort_column_keeps_the_rows_and_updates_them(browser, table):
    # Sorted by a prediction column, then the task is reloaded without it (another task, or
    # the predictions deleted): the rows stay in table order and later reloads still apply.
    browser.set_table(table.assign(**{"pred:bleu_valid@X": np.arange(len(table), 0, -1.0)}))
    browser.view.sortByColumn(
        browser.model.column_of("pred:bleu_valid@X"), Qt.SortOrder.AscendingOrder
    )
    browser.set_table(table)
    browser.set_table(table.assign(gflops=table["gflops"] + 1.0))
    assert shown_ids(browser) == list(table.index)
    assert shown_values(browser, "gflops") == pytest.approx(list(table["gflops"] + 1.0))
