"""The Latency panel: it lists the project's imported latency tables and measured latency, fits a
predictor on the one chosen as a job (a few Adam steps at 1e-3 instead of HAT's 5,000 at 1e-5),
lists it with its held-out MAPE and tau, and draws its held-out rows against the y = x line."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from scipy.stats import kendalltau

from nasstudio.space import average_features
from nasstudio.store import LATENCY_MS, Measurement, Project
from nasstudio.store.importers import HAT_LATENCY_COLUMNS, read_hat_latency

FIT_MS = 60_000  # generous: a worker process starts, on a loaded 2-core machine
TABLE_ROWS = 40  # the fixture project's architectures
DEVICE = "cpu:Hand-made CPU"


def hand_made_ms(arch) -> float:
    """A latency without noise: 10 ms a decoder layer, plus widths."""
    return (
        1 + arch.decoder_layers * (10 + arch.decoder_embed_dim / 16) + arch.encoder_embed_dim / 32
    )


@pytest.fixture
def project_path(project_path, tmp_path):
    """The fixture project with a HAT latency table of its architectures' hand-made latency,
    and the same latency recorded as measured on a device."""
    with Project(project_path) as project:
        archs = project.architectures("demo")
        table = tmp_path / "demo_cpu_hand_all.csv"
        with open(table, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(HAT_LATENCY_COLUMNS)
            for arch in archs:
                writer.writerow([*average_features(arch), 0.5, hand_made_ms(arch) - 0.5, 0, 0])
        read_hat_latency(table).write(project)
        project.add_measurements(
            Measurement(a.id, "demo", LATENCY_MS, 2 * hand_made_ms(a), "measured", device=DEVICE)
            for a in archs
        )
    return project_path


def source_rows(panel) -> list[list[str]]:
    tree = panel.sources
    return [
        [tree.topLevelItem(i).text(c) for c in range(tree.columnCount())]
        for i in range(tree.topLevelItemCount())
    ]


def type_into(qtbot, spin, text: str) -> None:
    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin, text)


def fit(window, qtbot, source_row: int) -> str:
    """Choose a source, fit fast with the suggested name, wait for it to be listed."""
    panel = window.latency_panel
    window.latency_dock.raise_()  # its tab in front of the Train panel's
    qtbot.waitUntil(panel.sources.isVisible)
    item = panel.sources.topLevelItem(source_row)
    at = QPoint(10, panel.sources.visualItemRect(item).center().y())  # on the row's name
    qtbot.mouseClick(panel.sources.viewport(), Qt.MouseButton.LeftButton, pos=at)
    assert panel.sources.currentItem() is item
    type_into(qtbot, panel.steps_spin, "60")
    type_into(qtbot, panel.rate_spin, "0.001")
    name = panel.name_edit.text()
    assert panel.train_button.isEnabled()
    qtbot.mouseClick(panel.train_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.chosen_predictor() == name, timeout=FIT_MS)
    return name


def test_the_panel_sits_beside_the_train_panel_and_lists_the_sources(window):
    assert window.latency_dock in window.tabifiedDockWidgets(window.train_dock)
    panel = window.latency_panel
    assert source_rows(panel) == [
        ["demo_cpu_hand", "demo", "cpu_hand", str(TABLE_ROWS)],
        ["demo measurements", "demo", DEVICE, ""],
    ]
    assert panel.predictors.topLevelItemCount() == 0
    assert panel.name_edit.text() == "demo_cpu_hand"  # suggested from the chosen source


def test_fit_on_a_table_lists_the_predictor_and_draws_its_held_out_rows(window, qtbot):
    panel = window.latency_panel
    name = fit(window, qtbot, 0)
    row = panel.predictors.currentItem()
    measured, predicted = panel.scatter_points()
    # 10 % of the table is held out: measured values are rows of the table written above.
    assert len(measured) == TABLE_ROWS // 10
    table = {round(hand_made_ms(a), 6) for a in window.project.architectures("demo")}
    assert {round(m, 6) for m in measured} <= table
    # The row and the text under the plot state the scores of the points drawn.
    mape = float(np.mean(np.abs(predicted - measured) / measured) * 100)
    tau = kendalltau(predicted, measured).statistic
    assert [row.text(c) for c in range(6)] == [
        name,
        "demo",
        "cpu_hand",
        f"{mape:.2f}",
        f"{tau:.3f}",
        "demo_cpu_hand",
    ]
    assert f"MAPE <b>{mape:.2f} %</b>" in panel.scores_label.text()
    # The y = x line spans every point.
    x, y = panel.diagonal()
    assert x.tolist() == y.tolist()
    assert x[0] == min(measured.min(), predicted.min())
    assert x[1] == max(measured.max(), predicted.max())


def test_fit_on_the_projects_measurements(window, qtbot):
    panel = window.latency_panel
    name = fit(window, qtbot, 1)
    assert name == "demo-cpu-Hand-made-CPU"
    row = panel.predictors.currentItem()
    assert (row.text(2), row.text(5)) == (DEVICE, f"demo measurements on {DEVICE}")
    measured, _ = panel.scatter_points()
    doubled = {round(2 * hand_made_ms(a), 6) for a in window.project.architectures("demo")}
    assert len(measured) == 4 and {round(m, 6) for m in measured} <= doubled
