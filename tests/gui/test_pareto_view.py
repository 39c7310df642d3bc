"""The Pareto view: points, front, strip of unscored architectures, picking, export."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from nasstudio.gui.pareto_view import ParetoView
from nasstudio.gui.view_state import ViewState
from nasstudio.search import pareto_front_2d
from nasstudio.store import Project
from tests.gui.conftest import FIXTURE_ARCHS, SCORED


@pytest.fixture
def table(project_path):
    with Project(project_path) as project:
        return project.table("demo"), project.value_columns("demo")


@pytest.fixture
def view(qtbot, table):
    widget = ParetoView(ViewState())
    qtbot.addWidget(widget)
    widget.resize(800, 600)
    widget.show()
    widget.set_table(*table)
    qtbot.waitExposed(widget)
    return widget


def test_axes_come_from_value_columns(view):
    x_keys = [view.x_combo.itemData(i) for i in range(view.x_combo.count())]
    y_keys = [view.y_combo.itemData(i) for i in range(view.y_combo.count())]
    assert x_keys == ["gflops", "params", "params_no_emb"]
    assert y_keys == ["bleu_valid"]
    assert view.axes() == ("gflops", "bleu_valid")


def test_points_front_and_strip(view, table):
    df = table[0]
    assert sorted(view.plotted_ids()) == sorted(df.index[:SCORED])
    assert sorted(view.unscored_ids()) == sorted(df.index[SCORED:])
    scored = df.iloc[:SCORED]
    front = pareto_front_2d(scored["gflops"].to_numpy(), scored["bleu_valid"].to_numpy())
    assert view.front_ids() == scored.index[front].tolist()
    legend = [label.text for _, label in view.legend.items]
    assert legend == ["fixture-a (20)", "fixture-b (10)", f"Pareto front ({front.size})"]
    assert view.empty_message() is None


def test_empty_state_without_bleu(view, table):
    df = table[0]
    view.set_table(df.drop(columns=["bleu_valid", "source:bleu_valid"]), None)
    assert "BLEU" in view.empty_message() and "Import" in view.empty_message()
    assert view.plotted_ids() == []
    assert len(view.unscored_ids()) == FIXTURE_ARCHS  # still shown in the strip


def test_click_on_a_point_reports_its_id(view, qtbot):
    arch_id = view.front_ids()[0]
    position = view.point_position(arch_id)
    with qtbot.waitSignal(view.points_clicked) as signal:
        qtbot.mouseClick(view.canvas.viewport(), Qt.MouseButton.LeftButton, pos=position)
    assert signal.args == [[arch_id], False]


def test_click_in_the_strip_reports_an_unscored_id(view, qtbot):
    arch_id = view.unscored_ids()[0]
    position = view.point_position(arch_id)
    with qtbot.waitSignal(view.points_clicked) as signal:
        qtbot.mouseClick(view.canvas.viewport(), Qt.MouseButton.LeftButton, pos=position)
    assert signal.args[0] == [arch_id]


def test_the_view_states_selection_is_marked(view, table):
    df = table[0]
    chosen = [df.index[0], df.index[-1], "not-an-id"]
    view._view.selection = chosen
    assert view.highlighted_ids() == [df.index[0], df.index[-1]]
    x, _ = view._highlight.getData()
    assert x.tolist() == [df["gflops"].iloc[0]]


def test_large_table_draws_from_arrays(qtbot):
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 100_000
    ids = np.array([f"{i:016x}" for i in range(n)], dtype=object)
    df = pd.DataFrame(  # synthetic numbers, only to exercise the drawing path
        {
            "gflops": rng.random(n),
            "bleu_valid": rng.random(n) * 30,
            "source:bleu_valid": "synthetic",
        },
        index=pd.Index(ids, name="id"),
    )
    widget = ParetoView(ViewState())
    qtbot.addWidget(widget)
    widget.set_table(df)
    assert len(widget.plotted_ids()) == n
    assert widget._source_items["synthetic"].count() == n


def test_axes_follow_the_view_state_and_write_to_it(view):
    state = view._view
    state.x_axis = "params"
    assert view.axes() == ("params", "bleu_valid")
    view.x_combo.setCurrentIndex(view.x_combo.findData("gflops"))
    assert state.x_axis == "gflops"
    state.y_axis = "bleu_test"  # not in this table: kept for a later one, the shown one stays
    assert view.axes() == ("gflops", "bleu_valid") and state.y_axis == "bleu_test"


def test_png_export(view, tmp_path):
    path = tmp_path / "plot.png"
    view.export_png(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
