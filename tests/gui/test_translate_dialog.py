"""Translate test set… in the detail pane: offered for a trained architecture only (the tooltip
says why not), a dialog that refuses files that cannot be scored, and a translate job whose
BLEU shows in the detail pane's measurements with its test set, and in the job's log; the
dialog's beam and length penalty reach the job; with the Train panel on Ray, checkpoints in
its storage count too."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from sacrebleu.metrics import BLEU

from nasstudio.gui.main_window import MainWindow
from nasstudio.gui.translate_dialog import TranslateDialog
from nasstudio.space import get_space
from nasstudio.store import BLEU_TEST, Project
from nasstudio.train.job import checkpoint_dir
from tests.test_translate import TASK, TINY, own_cache, scored_files, trained_project, write

JOB_MS = 60_000  # generous, for a loaded 2-core machine


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Iterator[Path]:
    with own_cache(tmp_path_factory.mktemp("cache")):
        yield trained_project(tmp_path_factory.mktemp("trained"))


@pytest.fixture
def window(qtbot, trained: Path):
    """The main window on the trained project, showing the task TINY's BLEU is recorded in."""
    with Project(trained) as project:
        untrained = get_space("tiny-cpu").sample_many(1, seed=11)
        project.add_architectures(TASK, untrained, origin="test")
    win = MainWindow()
    qtbot.addWidget(win)
    assert win.open_project(trained)
    win.show()
    win.task_combo.setCurrentIndex(win.task_combo.findData(TASK))
    qtbot.waitUntil(lambda: win.browser.model.total_count() == 2, timeout=5000)
    win.untrained_id = untrained[0].id
    yield win
    win.close()


def open_dialog(window, qtbot) -> TranslateDialog:
    button = window.detail.translate_button
    assert button.isEnabled(), button.toolTip()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    [dialog] = [d for d in window.findChildren(TranslateDialog) if d.isVisible()]
    return dialog


def test_only_a_trained_architecture_can_be_translated(window):
    button = window.detail.translate_button
    assert not button.isEnabled() and "Select an architecture" in button.toolTip()
    window.browser.select_ids([window.untrained_id])
    assert not button.isEnabled()
    assert f"{window.untrained_id} has no trained checkpoint" in button.toolTip()
    assert "train it first" in button.toolTip()
    window.browser.select_ids([TINY.id])
    assert button.isEnabled()


def test_files_that_cannot_be_scored_keep_translate_disabled(window, qtbot, tmp_path):
    source, reference = scored_files(tmp_path, "uneven", seed=12, count=3)
    write(reference, reference.read_text().splitlines()[:2])
    window.browser.select_ids([TINY.id])
    dialog = open_dialog(window, qtbot)
    assert not dialog.translate_button.isEnabled()
    assert "Choose the file to translate" in dialog.problem_label.text()
    qtbot.keyClicks(dialog.input_edit, str(source))
    assert dialog.translate_button.isEnabled()
    qtbot.keyClicks(dialog.reference_edit, str(reference))
    assert "has 3 lines but the reference" in dialog.problem_label.text()
    assert not dialog.translate_button.isEnabled()
    qtbot.keyClick(dialog, Qt.Key.Key_Return)  # Enter does not start it either
    assert dialog.isVisible()
    dialog.reject()


def test_a_translation_records_bleu_on_its_test_set(window, qtbot, tmp_path):
    source, reference = scored_files(tmp_path, "gui-set", seed=13, count=6)
    output = tmp_path / "gui-set.hyp"
    window.browser.select_ids([TINY.id])
    dialog = open_dialog(window, qtbot)
    qtbot.keyClicks(dialog.input_edit, str(source))
    qtbot.keyClicks(dialog.reference_edit, str(reference))
    assert dialog.name_edit.placeholderText() == "gui-set"  # the input file's stem
    qtbot.keyClicks(dialog.output_edit, str(output))
    qtbot.mouseClick(dialog.translate_button, Qt.MouseButton.LeftButton)
    shown = window.detail.browser
    qtbot.waitUntil(lambda: "gui-set ·" in shown.toPlainText(), timeout=JOB_MS)
    [job] = [j for j in window.project.jobs() if j.kind == "translate"]
    assert job.title == f"Translate {source.name} with {TINY.id}"
    hypotheses = output.read_text(encoding="utf-8").split("\n")[:-1]
    references = reference.read_text(encoding="utf-8").split("\n")[:-1]
    expected = BLEU().corpus_score(hypotheses, [references]).score
    [score] = [
        m
        for m in window.project.measurements(TINY.id, TASK)
        if m.metric == BLEU_TEST and m.test_set == "gui-set"
    ]
    assert score.value == pytest.approx(expected, abs=1e-9)
    assert f"gui-set · {score.test_set_digest}" in shown.toPlainText()
    window.jobs.select_job(job.id)
    assert f"BLEU on gui-set ({score.test_set_digest}): bleu_test" in window.jobs.log.toPlainText()


def test_a_length_penalty_typed_in_the_dialog_reaches_the_translation(window, qtbot, tmp_path):
    source, reference = scored_files(tmp_path, "lp-set", seed=14, count=4)
    window.browser.select_ids([TINY.id])
    dialog = open_dialog(window, qtbot)
    # TINY was trained with --beam 1 and the default length penalty, 1.0: the hints say so.
    assert dialog.length_penalty_edit.placeholderText() == "as recorded (1.0)"
    assert dialog.beam_spin.specialValueText() == "as recorded (1)"
    qtbot.keyClicks(dialog.input_edit, str(source))
    qtbot.keyClicks(dialog.reference_edit, str(reference))
    qtbot.keyClicks(dialog.length_penalty_edit, "0.6x")
    assert "Length penalty: expected a number" in dialog.problem_label.text()
    assert not dialog.translate_button.isEnabled()
    qtbot.keyClick(dialog.length_penalty_edit, Qt.Key.Key_Backspace)
    dialog.beam_spin.setFocus()
    dialog.beam_spin.selectAll()
    qtbot.keyClicks(dialog.beam_spin, "4")
    qtbot.mouseClick(dialog.translate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "lp-set ·" in window.detail.browser.toPlainText(), timeout=JOB_MS)
    [job] = [j for j in window.project.jobs() if j.title.startswith(f"Translate {source.name}")]
    assert (job.params["beam"], job.params["length_penalty"]) == (4, 0.6)
    scores = [m for m in window.project.measurements(TINY.id, TASK) if m.test_set == "lp-set"]
    assert {(m.provenance["beam"], m.provenance["length_penalty"]) for m in scores} == {(4, 0.6)}


def test_checkpoints_in_the_ray_storage_count_when_the_train_panel_runs_on_ray(
    qtbot, trained, tmp_path
):
    # The trained project again, its checkpoints only in a Ray storage folder.
    copy, storage = tmp_path / trained.name, tmp_path / "ray-storage"
    with closing(sqlite3.connect(trained)) as src, closing(sqlite3.connect(copy)) as dst:
        src.backup(dst)
    with Project(trained) as project:
        shutil.copytree(checkpoint_dir(project), storage / f"{trained.name}.checkpoints")
    win = MainWindow()
    qtbot.addWidget(win)
    assert win.open_project(copy)
    win.show()
    win.task_combo.setCurrentIndex(win.task_combo.findData(TASK))
    qtbot.waitUntil(lambda: win.browser.model.total_count() > 0, timeout=5000)
    win.browser.select_ids([TINY.id])
    button = win.detail.translate_button
    assert not button.isEnabled() and "no trained checkpoint beside the project" in button.toolTip()
    form = win.train_panel.form  # Run in: Ray cluster, with its storage
    form.executor_combo.setCurrentIndex(form.executor_combo.findData("ray"))
    qtbot.keyClicks(form.ray_storage_edit, str(storage))
    assert button.isEnabled(), button.toolTip()
    source, reference = scored_files(tmp_path, "ray-set", seed=15, count=3)
    dialog = open_dialog(win, qtbot)
    qtbot.keyClicks(dialog.input_edit, str(source))
    qtbot.keyClicks(dialog.reference_edit, str(reference))
    assert dialog.params()["checkpoint_root"] == str(storage)
    qtbot.mouseClick(dialog.translate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "ray-set ·" in win.detail.browser.toPlainText(), timeout=JOB_MS)
    scores = [m for m in win.project.measurements(TINY.id, TASK) if m.test_set == "ray-set"]
    assert scores and all(m.provenance["checkpoint"].startswith(str(storage)) for m in scores)
    win.close()
