"""BLEU on another test set gets a column of its own, with a readable title, in the browser
and among the Pareto view's y axes."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from nasstudio.gui.browser import BrowserPanel
from nasstudio.gui.pareto_view import ParetoView
from nasstudio.gui.view_state import ViewState
from nasstudio.store import BLEU_TEST, BLEU_TEST_TOKENIZED, Measurement, Project
from nasstudio.store.defaults import add_demo


@pytest.fixture
def table(tmp_path):
    with Project(tmp_path / "p.nasproj") as project:
        add_demo(project, 4)
        ids = project.architecture_ids("demo")
        project.add_measurements(
            Measurement(
                arch_id,
                "demo",
                metric,
                20.0 + i + offset,
                "trained",
                test_set=name,
                test_set_digest=digest,
            )
            for i, arch_id in enumerate(ids)
            for metric, name, digest, offset in (
                (BLEU_TEST, "test2016", "1111111111111111", 0.0),
                (BLEU_TEST_TOKENIZED, "test2016", "1111111111111111", 0.5),
                (BLEU_TEST, "newstest2014", "2222222222222222", 5.0),
            )
        )
        return project.table("demo"), project.value_columns("demo")


def test_the_pareto_view_offers_each_test_sets_bleu_by_a_readable_name(qtbot, table):
    view = ParetoView(ViewState())
    qtbot.addWidget(view)
    view.resize(800, 600)
    view.show()
    view.set_table(*table)
    combo = view.y_combo
    choices = [(combo.itemText(i), combo.itemData(i)) for i in range(combo.count())]
    assert choices == [
        ("BLEU test", "bleu_test"),
        ("BLEU test [newstest2014]", "bleu_test[newstest2014]"),
        ("BLEU test tok.", "bleu_test_tok"),
    ]
    view.y_combo.setCurrentIndex(view.y_combo.findText("BLEU test [newstest2014]"))
    assert view.axes()[1] == "bleu_test[newstest2014]"
    assert view.plot.getAxis("left").labelText == "BLEU test [newstest2014]"
    assert len(view.plotted_ids()) == 4


def test_the_browser_shows_both_test_sets_columns(qtbot, table):
    panel = BrowserPanel(ViewState())
    qtbot.addWidget(panel)
    panel.set_table(table[0])
    model = panel.model
    headers = [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())]
    bleu = headers.index("BLEU test")
    assert headers[bleu : bleu + 3] == ["BLEU test", "BLEU test [newstest2014]", "BLEU test tok."]
    column = model.column_of("bleu_test[newstest2014]")
    values = sorted(
        model.index(row, column).data(Qt.ItemDataRole.UserRole) for row in range(model.rowCount())
    )
    assert values == [25.0, 26.0, 27.0, 28.0]
