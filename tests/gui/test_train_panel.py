"""The Train panel: short real trainings on the synthetic demo corpus, in worker processes, draw
live curves and land on the Pareto view; runs waiting for their device are queued jobs that
cancel before they start; a cancelled training runs again from its checkpoint; a reopened
project shows past runs' curves; latency and supernet runs; bad input is explained; the
panel's choices persist."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from nasstudio.gui import columns
from nasstudio.gui.main_window import MainWindow
from nasstudio.gui.train_form import TrainDialog
from nasstudio.jobs import JobState
from nasstudio.space import get_space
from nasstudio.store import KNOWN_TASKS, Project
from nasstudio.store.owners import JobOwner
from nasstudio.train.job import checkpoint_dir
from tests.gui.conftest import FIXTURE_ARCHS

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
    "config/max_len": 32,  # an untrained model decodes to max_len: keep the BLEU passes short
}
# A model of HAT's WMT space is large for a CPU: few steps, short sentences, small batches.
TINY_WMT = {
    "budget/max_steps": 2,
    "config/eval_every": 2,
    "config/max_tokens": 512,
    "config/max_len": 12,
}
TRAINING_S = 90_000  # ms: generous, for a loaded 2-core machine


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the module: the demo corpus and its vocabulary are built once."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def shared_cache(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The corpus and vocabulary caches in tmp (the worker processes inherit it)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_dir))


def one_at_a_time(window) -> None:
    """One CPU run at a time, whatever the machine: the next ones wait as queued jobs."""
    window.session.runner.slots["cpu"] = 1


def smallest_unscored(window, count: int) -> list[str]:
    """The cheapest architectures that have no BLEU yet (they train fastest)."""
    table = window.project.table("demo").loc[window.pareto.unscored_ids()]
    return table["gflops"].astype(float).nsmallest(count).index.tolist()


def test_training_from_the_panel_draws_curves_and_reaches_the_pareto_view(window, qtbot):
    panel = window.train_panel
    panel.form.set_values(TINY)
    window.session.runner.slots["cpu"] = 2  # both at once: the test waits less
    arch_ids = smallest_unscored(window, 2)
    window.browser.select_ids(arch_ids)
    panel.train_action.trigger()  # Train selected…: the form first, with the panel's settings
    dialog = window.findChild(TrainDialog)
    assert dialog.isVisible() and dialog.form.values() == panel.form.values()
    assert panel.run_list() == []
    qtbot.mouseClick(dialog.train_button, Qt.MouseButton.LeftButton)
    first, second = panel.run_list()
    assert sorted(r.label for r in panel.run_list()) == sorted(arch_ids)
    qtbot.waitUntil(
        lambda: panel.curves.points(first.job_id, "train_loss")[0].size > 0, timeout=TRAINING_S
    )
    qtbot.waitUntil(
        lambda: first.state == second.state == JobState.DONE.value, timeout=2 * TRAINING_S
    )
    record = window.project.job(first.job_id)
    assert record.executor == "process" and record.worker.startswith("process ")
    for run in (first, second):
        steps, bleu = panel.curves.points(run.job_id, "valid_bleu")
        assert steps.tolist() == [10, 20] and (bleu >= 0).all()
        assert panel.curves.points(run.job_id, "valid_loss")[0].tolist() == [10, 20]
        # The curves are in the project too.
        assert [
            p["step"] for p in window.project.curve(run.job_id) if p.get("valid_bleu") is not None
        ] == [
            10,
            20,
        ]

    # The trained BLEU becomes the y axis (once the table is reloaded), both architectures on it.
    def trained_on_the_plot() -> bool:
        y_key = window.pareto.axes()[1]
        table = window.project.table("demo")
        source = table.get(f"{columns.SOURCE_PREFIX}{y_key}")
        return (
            # The fixture's task has imported BLEU on other sentences: the run's own test set
            # gets a column of its own.
            columns.split_key(y_key or "")[1] == "bleu_valid[valid]"
            and source is not None
            and (source.loc[arch_ids] == "trained").all()
            and set(arch_ids) <= set(window.pareto.plotted_ids())
        )

    qtbot.waitUntil(trained_on_the_plot, timeout=10_000)
    assert window.jobs.state(second.job_id) == JobState.DONE


def test_queued_runs_cancel_before_they_start_and_a_cancelled_training_runs_again(window, qtbot):
    panel = window.train_panel
    panel.form.set_values({**TINY, "budget/max_steps": 100_000})
    one_at_a_time(window)
    arch_ids = smallest_unscored(window, 2)
    window.browser.select_ids(arch_ids)
    first, second = panel.train_selected()
    assert second.state == JobState.QUEUED.value  # waits for the CPU, in the runner
    assert window.project.job(second.job_id).state == "queued"
    assert window.jobs.state(second.job_id) == JobState.QUEUED
    # The queued run is a row of the jobs panel, with its Cancel button.
    qtbot.mouseClick(window.jobs.cancel_button(second.job_id), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: second.state == JobState.CANCELLED.value, timeout=5000)
    assert window.project.job(second.job_id).started_at is None
    qtbot.waitUntil(
        lambda: panel.curves.points(first.job_id, "train_loss")[0].size > 0, timeout=TRAINING_S
    )
    panel.runs.topLevelItem(0).setSelected(True)
    qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: first.state == JobState.CANCELLED.value, timeout=10_000)
    assert window.jobs.state(first.job_id) == JobState.CANCELLED
    # checkpoint_every (500) was never reached: the file is the one the cancel wrote.
    folder = checkpoint_dir(window.project)
    assert any(folder.glob(f"{first.label}-*.pt"))
    assert not panel.cancel_button.isEnabled() and panel.rerun_button.isEnabled()

    qtbot.mouseClick(panel.rerun_button, Qt.MouseButton.LeftButton)
    again = panel.run_list()[-1]
    assert again.job_id != first.job_id and again.arch_ids == first.arch_ids
    qtbot.waitUntil(
        lambda: any("resumed from step" in line for line in window.project.job_log(again.job_id)),
        timeout=TRAINING_S,
    )
    panel.cancel(again.job_id)
    qtbot.waitUntil(lambda: again.state == JobState.CANCELLED.value, timeout=10_000)
    panel.clear_finished()
    assert panel.run_list() == [] and panel.runs.topLevelItemCount() == 0


def test_a_reopened_project_lists_past_runs_with_their_curves(qtbot, project_path):
    with Project(project_path) as project:  # a run recorded earlier (made-up curve points)
        arch_id = project.table("demo").index[0]
        params = {"task": "demo", "arch_id": arch_id, "corpus": {"kind": "demo"}, "device": "cpu"}
        job_id = project.create_job(
            "train", f"Train {arch_id}", params, JobOwner(socket.gethostname(), 0, 0.0)
        )
        project.update_job(job_id, state="done", progress=1.0, message="valid_bleu 12.00")
        project.add_curve_points(
            job_id,
            [(arch_id, step, {"train_loss": 5.0 - step / 10}) for step in (1, 2, 3)]
            + [(arch_id, 3, {"valid_loss": 4.0, "valid_bleu": 12.0})],
        )
    window = MainWindow()
    qtbot.addWidget(window)
    window.open_project(project_path)
    panel = window.train_panel
    [run] = panel.run_list()
    assert (run.job_id, run.label, run.state) == (job_id, arch_id, "done")
    assert panel.curves.points(job_id, "train_loss")[0].tolist() == [1, 2, 3]
    assert panel.curves.points(job_id, "valid_bleu")[1].tolist() == [12.0]
    assert panel.runs.topLevelItem(0).text(5) == "12.00"
    window.close()


def test_measured_latency_becomes_the_cost_axis(window, qtbot):
    panel = window.train_panel
    panel.form.set_values({"latency/repeats": 3, "latency/beam": 1, "executor": "thread"})
    arch_ids = smallest_unscored(window, 2)
    window.browser.select_ids(arch_ids)
    run = panel.measure_latency()
    qtbot.waitUntil(lambda: run.state == JobState.DONE.value, timeout=TRAINING_S)
    assert window.project.job(run.job_id).executor == "thread"
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
    panel.supernet_action.trigger()
    [run] = panel.run_list()
    assert run.label == "supernet · demo"
    qtbot.waitUntil(lambda: run.state == JobState.DONE.value, timeout=TRAINING_S)
    for metric in ("train_loss", "valid_loss"):
        assert panel.curves.points(run.job_id, metric)[0].tolist() == [5, 10]


def open_train_dialog(window, qtbot) -> TrainDialog:
    """Train selected… with its shortcut, as a user opens it."""
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    qtbot.keyClick(window, Qt.Key.Key_T, Qt.KeyboardModifier.ControlModifier)
    [dialog] = [d for d in window.findChildren(TrainDialog) if d.isVisible()]
    return dialog


def test_train_selected_says_why_not_before_any_run_starts(window, qtbot, tmp_path):
    panel = window.train_panel
    window.browser.select_ids([])
    dialog = open_train_dialog(window, qtbot)
    assert "Select architectures in the table first" in dialog.problem_label.text()
    assert dialog.problem_label.isVisible() and not dialog.train_button.isEnabled()
    dialog.reject()
    # A corpus folder without the files of the chosen languages.
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "train.fr").write_text("bonjour\n")
    window.browser.select_ids(smallest_unscored(window, 1))
    dialog = open_train_dialog(window, qtbot)
    form = dialog.form
    form.corpus_combo.setCurrentIndex(form.corpus_combo.findData("folder"))
    qtbot.keyClicks(form.path_edit, str(folder))
    qtbot.keyClick(form.path_edit, Qt.Key.Key_Return)
    assert form.src_combo.findText("fr") >= 0  # languages found in the folder
    form.src_combo.setCurrentText("fr")
    form.tgt_combo.setCurrentText("en")
    assert "corpus-fren" in form.task_label.text()
    assert dialog.problem_label.text().startswith("Corpus not usable: ")
    assert f"{folder / 'train.en'}[.gz]: file not found" in dialog.problem_label.text()
    assert not dialog.train_button.isEnabled()
    qtbot.keyClick(dialog, Qt.Key.Key_Return)  # Enter does not start it either
    assert dialog.isVisible()
    # Back to the demo corpus: nothing stands in the way any more.
    form.corpus_combo.setCurrentIndex(form.corpus_combo.findData("demo"))
    assert dialog.train_button.isEnabled() and not dialog.problem_label.isVisible()
    dialog.reject()
    assert panel.run_list() == [] and window.project.jobs() == []
    assert window.project.count_architectures() == FIXTURE_ARCHS


def test_a_wmt_architecture_trains_on_the_synthetic_corpus_from_the_form(
    window, qtbot, project_path
):
    """Any architecture trains on any corpus the form offers: here one of HAT's WMT space,
    its results in a task whose space and vocabulary agree with the corpus."""
    with Project(project_path) as project:
        task = project.ensure_task(KNOWN_TASKS["wmt14ende"])
        archs = get_space(task.space).sample_many(20, seed=4)
        project.add_architectures(task.name, archs, origin="test")
        arch_id = project.table(task.name)["gflops"].astype(float).idxmin()
    # The window finds the other writer's task by its poll.
    qtbot.waitUntil(lambda: window.task_combo.findData("wmt14ende") >= 0, timeout=5000)
    window.task_combo.setCurrentIndex(window.task_combo.findData("wmt14ende"))
    qtbot.waitUntil(lambda: window.browser.model.total_count() == 20, timeout=5000)
    window.browser.select_ids([arch_id])
    panel = window.train_panel
    dialog = open_train_dialog(window, qtbot)
    dialog.form.set_values({**TINY, **TINY_WMT})
    assert "wmt14ende" in dialog.summary.text()
    said = dialog.form.task_label.text()  # where the form says the results go
    qtbot.mouseClick(dialog.train_button, Qt.MouseButton.LeftButton)
    [run] = panel.run_list()
    assert panel.form.values()["budget/max_steps"] == 2  # the panel keeps the form's choices
    qtbot.waitUntil(lambda: run.finished, timeout=3 * TRAINING_S)
    record = window.project.job(run.job_id)
    assert run.state == JobState.DONE.value, f"{record.message}\n{record.error}"
    result = window.project.task(run.result_task)
    assert result.space == "hat-wmt" and f"<b>{result.name}</b>" in said
    assert window.project.table(result.name).loc[arch_id, "bleu_valid"] >= 0
    qtbot.waitUntil(lambda: window.current_task() == result.name, timeout=5000)  # followed


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
        "executor": "ray",
        "ray_address": "ray://head:10001",
        "ray_storage": str(tmp_path / "shared"),
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
    assert (form.executor(), form.ray_address()) == ("ray", "ray://head:10001")
    assert form.ray_edit.isVisibleTo(form)
    config = form.config()
    assert (config["max_minutes"], config["max_steps"], config["lr"]) == (7.5, None, 5e-4)
    assert form.corpus_spec() == {
        "kind": "multi30k",
        "path": str(tmp_path),
        "src": "de",
        "tgt": "en",
    }
    second.close()
