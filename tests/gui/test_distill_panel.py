"""The Distill panel: choose a profile and how many architectures to label (the cost estimate
shows before anything starts), Fit; the LLM labels them through the loopback server, the
regressor is fitted in a worker process, its row joins the evaluation table and its predictions
become a column. Fast settings (32 units, 200 steps at 3e-3) instead of llmas's."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from nasstudio.predict.evaluate import SeedScores, evaluate_predictions, read_seedarchs
from nasstudio.predict.llm import LLMProfile
from nasstudio.space import get_space
from nasstudio.store import Project
from tests.llm_server import add_wmt_architectures, write_seedarchs

FIT_MS = 120_000  # labelling, then a worker process starts, on a loaded 2-core machine
TASK = "wmt14ende"
ARCHS = 8 + 150


@pytest.fixture
def seedarchs(tmp_path: Path) -> Path:
    archs = get_space("hat-wmt").sample_many(12, seed=99)
    bleu = [20.0 + 0.5 * i for i in range(12)]
    folder = tmp_path / "seedarchs"
    write_seedarchs(folder, TASK, archs, bleu, {1: (range(4), range(4, 12))})
    return folder


@pytest.fixture
def window(qtbot, tmp_path: Path, seedarchs: Path):
    """The main window on a wmt14ende project of 158 architectures, 8 with measured BLEU, and
    one baseline's evaluation on the seedarchs folder already recorded."""
    from nasstudio.gui.main_window import MainWindow

    path = tmp_path / "wmt.nasproj"
    with Project(path) as project:
        add_wmt_architectures(project, measured=8, unmeasured=150)
        benchmark = read_seedarchs(seedarchs, TASK)
        baseline = _size_baseline(benchmark)
        for split in baseline.splits:
            SeedScores(TASK, benchmark.folder, "size", "size", split).write(project, None)
    win = MainWindow()
    qtbot.addWidget(win)
    assert win.open_project(path)
    win.show()
    qtbot.waitUntil(lambda: win.browser.model.total_count() == ARCHS, timeout=10_000)
    yield win
    win.close()


def _size_baseline(benchmark):
    """A baseline that predicts each architecture's encoder width, scored by the evaluator."""
    values = {i: float(a.encoder_embed_dim) for i, a in benchmark.known.archs.items()}
    return evaluate_predictions(benchmark, benchmark.known.bleu, {1: values}, "size")


def type_into(qtbot, widget, text: str) -> None:
    edit = widget.lineEdit() if hasattr(widget, "lineEdit") else widget
    edit.selectAll()
    qtbot.keyClicks(edit, text)


def test_label_fit_and_see_the_evaluation_and_the_column(window, qtbot, server, seedarchs):
    assert window.distill_dock in window.tabifiedDockWidgets(window.train_dock)
    width = window.width()
    window.distill_dock.show()
    window.distill_dock.raise_()  # its tab in front of the Train panel's
    qtbot.wait(50)
    assert window.width() == width
    panel = window.distill_panel
    profile = LLMProfile("fake", base_url=server.base_url, model="fake-llm", concurrency=4)
    panel.profiles.save(profile)
    panel.refresh()
    panel.profile_combo.setCurrentIndex(panel.profile_combo.findText("fake"))
    assert panel.prompt_combo.currentText().startswith("current: ")
    type_into(qtbot, panel.seedarchs_edit, str(seedarchs))
    qtbot.keyClick(panel.seedarchs_edit, Qt.Key.Key_Return)
    assert [row[0] for row in panel.evaluations.rows()] == ["size"]  # the baseline so far

    type_into(qtbot, panel.label_spin, "60")
    assert "60 requests" in panel.estimate_label.text()
    assert server.requests == 0  # an estimate sends nothing
    assert panel.name_edit.text() == "fake-llm-fake"  # from the labels' predictor
    type_into(qtbot, panel.name_edit, "fake")
    type_into(qtbot, panel.steps_spin, "200")
    type_into(qtbot, panel.rate_spin, "0.003")
    type_into(qtbot, panel.hidden_spin, "32")
    type_into(qtbot, panel.ensemble_spin, "2")
    qtbot.mouseClick(panel.mean_check, Qt.MouseButton.LeftButton)
    assert panel.fit_button.isEnabled()
    qtbot.mouseClick(panel.fit_button, Qt.MouseButton.LeftButton)

    predictors = lambda: [row[0] for row in panel.evaluations.rows()]  # noqa: E731
    qtbot.waitUntil(lambda: "distilled:fake" in predictors(), timeout=FIT_MS)
    assert predictors() == ["size", "distilled:fake"]
    assert server.requests == 60
    assert panel.state_label.text() == "'fake': done"
    column = "pred:bleu_valid@distilled:fake"
    qtbot.waitUntil(lambda: column in window.browser.model.keys, timeout=10_000)
    choices = lambda: [  # noqa: E731
        panel.labels_combo.itemText(i) for i in range(panel.labels_combo.count())
    ]
    qtbot.waitUntil(lambda: "pred:bleu_valid@fake-llm@fake (60 labels)" in choices())
