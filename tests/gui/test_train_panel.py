"""The Train panel: short real trainings on the synthetic demo corpus draw live curves and land
on the Pareto view; cancel keeps the checkpoint; latency and supernet runs; bad input is
explained; the panel's choices persist."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from nasstudio.gui import columns
from nasstudio.gui.main_window import MainWindow
from nasstudio.jobs import JobState
from nasstudio.train.job import checkpoint_dir

# A few seconds of training each: enough for two evaluations, not for a good model.
TINY = {
    "corpus/kind": "demo",
    "budget/kind": "max_steps",
    "budget/max_steps": 20,
    "config/eval_every": 10,
    "config/eval_sentences": 8,
    "config/beam": 1,
    "config/max_tokens": 2048,
    "config/warmup_steps": 10,
}
TRAINING_S = 90_000  # ms: generous, for a loaded 2-core machine


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the module: the demo corpus and its vocabulary are built once."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def one_thread(cache_dir: Path, monkeypatch: pytest.MonkeyPatch):
    """One torch thread (the machine is shared), and the corpus and vocabulary caches in tmp."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_dir))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def smallest_unscored(window, count: int) -> list[str]:
    """The cheapest architectures that have no BLEU yet (they train fastest)."""
    table = window.project.table("demo").loc[window.pareto.unscored_ids()]
    return table["gflops"].astype(float).nsmallest(count).index.tolist()


def test_training_from_the_panel_draws_curves_and_reaches_the_pareto_view(window, qtbot):
    panel = window.train_panel
    panel.form.set_values(TINY)
    arch_ids = smallest_unscored(window, 2)
    window.browser.select_ids(arch_ids)
    panel.train_action.trigger()
    first, second = panel.run_list()
    assert first.state == JobState.QUEUED.value and second.state == "waiting"  # one per device
    assert sorted(r.label for r in panel.run_list()) == sorted(arch_ids)
    qtbot.waitUntil(
        lambda: panel.curves.points(first.key, "train_loss")[0].size > 0, timeout=TRAINING_S
    )
    qtbot.waitUntil(lambda: second.state == JobState.DONE.value, timeout=2 * TRAINING_S)
    assert first.state == JobState.DONE.value
    for run in (first, second):
        steps, bleu = panel.curves.points(run.key, "valid_bleu")
        assert steps.tolist() == [10, 20] and (bleu >= 0).all()
        assert panel.curves.points(run.key, "valid_loss")[0].tolist() == [10, 20]

    # The trained BLEU becomes the y axis (once the table is reloaded), both architectures on it.
    def trained_on_the_plot() -> bool:
        y_key = window.pareto.axes()[1]
        table = window.project.table("demo")
        source = table.get(f"{columns.SOURCE_PREFIX}{y_key}")
        return (
            columns.split_key(y_key or "")[1] == "bleu_valid"
            and source is not None
            and (source.loc[arch_ids] == "trained").all()
            and set(arch_ids) <= set(window.pareto.plotted_ids())
        )

    qtbot.waitUntil(trained_on_the_plot, timeout=10_000)
    assert window.jobs.state(second.job_id) == JobState.DONE


def test_cancelling_a_training_keeps_its_checkpoint(window, qtbot):
    panel = window.train_panel
    panel.form.set_values({**TINY, "budget/max_steps": 100_000})
    [arch_id] = smallest_unscored(window, 1)
    window.browser.select_ids([arch_id])
    [run] = panel.train_selected()
    qtbot.waitUntil(
        lambda: panel.curves.points(run.key, "train_loss")[0].size > 0, timeout=TRAINING_S
    )
    panel.runs.topLevelItem(0).setSelected(True)
    qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: run.state == JobState.CANCELLED.value, timeout=10_000)
    assert window.jobs.state(run.job_id) == JobState.CANCELLED
    # checkpoint_every (500) was never reached: the file is the one the cancel wrote.
    folder = checkpoint_dir(window.project)
    qtbot.waitUntil(lambda: any(folder.glob(f"{arch_id}-*.pt")), timeout=10_000)
    assert not panel.cancel_button.isEnabled()


def test_cancelling_a_waiting_run_never_starts_it(window, qtbot):
    panel = window.train_panel
    panel.form.set_values({**TINY, "budget/max_steps": 100_000})
    window.browser.select_ids(smallest_unscored(window, 2))
    first, second = panel.train_selected()
    panel.cancel(second.key)
    assert second.state == JobState.CANCELLED.value and second.job_id is None
    panel.cancel(first.key)
    qtbot.waitUntil(lambda: first.state == JobState.CANCELLED.value, timeout=TRAINING_S)
    assert second.job_id is None
    panel.clear_finished()
    assert panel.run_list() == [] and panel.runs.topLevelItemCount() == 0


def test_measured_latency_becomes_the_cost_axis(window, qtbot):
    panel = window.train_panel
    panel.form.set_values({"latency/repeats": 3})
    arch_ids = smallest_unscored(window, 2)
    window.browser.select_ids(arch_ids)
    run = panel.measure_latency()
    qtbot.waitUntil(lambda: run.state == JobState.DONE.value, timeout=TRAINING_S)
    # The measured column becomes the x axis once the reloaded table has it; without BLEU,
    # the two architectures are in the strip under the plot.
    qtbot.waitUntil(
        lambda: (
            "latency_ms@" in (window.pareto.axes()[0] or "")
            and set(arch_ids) <= set(window.pareto.unscored_ids())
        ),
        timeout=10_000,
    )
    x_key = window.pareto.axes()[0]
    assert window.project.table("demo").loc[arch_ids, x_key].gt(0).all()


def test_supernet_training_has_the_same_live_view(window, qtbot):
    panel = window.train_panel
    panel.form.set_values({**TINY, "budget/max_steps": 10, "config/eval_every": 5})
    run = panel.supernet_action.trigger() or panel.run_list()[0]
    assert run.label == "supernet · demo"
    qtbot.waitUntil(lambda: run.state == JobState.DONE.value, timeout=TRAINING_S)
    for metric in ("train_loss", "valid_loss"):
        assert panel.curves.points(run.key, metric)[0].tolist() == [5, 10]


def test_a_corpus_folder_without_files_says_what_is_missing(window, qtbot, tmp_path):
    panel = window.train_panel
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "train.fr").write_text("bonjour\n")
    panel.form.set_values({"corpus/kind": "folder", "corpus/path": str(folder)})
    assert panel.form.src_combo.findText("fr") >= 0  # languages found in the folder
    panel.form.set_values({"corpus/src": "fr", "corpus/tgt": "en"})
    assert "corpus-fren" in panel.form.task_label.text()
    window.browser.select_ids(smallest_unscored(window, 1))
    assert panel.train_selected() == []
    box = next(b for b in window.findChildren(QMessageBox) if b.isVisible())
    assert box.windowTitle() == "Corpus not usable"
    assert f"{folder / 'train.en'}[.gz]: file not found" in box.text()
    box.close()
    assert panel.run_list() == []


def test_choices_persist_between_panels(qtbot, tmp_path):
    choices = {
        "corpus/kind": "multi30k",
        "corpus/path": str(tmp_path),
        "corpus/src": "de",
        "corpus/tgt": "en",
        "budget/kind": "max_minutes",
        "budget/max_minutes": 7.5,
        "config/lr": 5e-4,
        "config/schedule": "cosine",
        "config/dropout": 0.3,
        "config/patience": 4,
        "vocab/size": 8000,
    }
    first = MainWindow()
    qtbot.addWidget(first)
    first.train_panel.form.set_values(choices)
    first.train_panel.form.advanced.expand(animate=False)
    saved = first.train_panel.form.values()
    first.close()
    second = MainWindow()
    qtbot.addWidget(second)
    form = second.train_panel.form
    assert form.values() == saved and form.advanced.isExpanded()
    assert {k: saved[k] for k in choices} == choices
    config = form.config()
    assert (config["max_minutes"], config["max_steps"], config["lr"]) == (7.5, None, 5e-4)
    assert form.corpus_spec() == {
        "kind": "multi30k",
        "path": str(tmp_path),
        "src": "de",
        "tgt": "en",
    }
    second.close()
