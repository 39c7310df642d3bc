"""The main window: opening projects, browser and Pareto view in step, jobs, import, export."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QMessageBox

from nasstudio.gui import settings
from nasstudio.gui.main_window import POLL_MS, MainWindow
from nasstudio.jobs import JobState, sample_job
from nasstudio.store import Project
from nasstudio.store.owners import JobOwner
from tests.gui.conftest import FIXTURE_ARCHS, SCORED, table_shown


def progress_only_job(handle, project, seconds=1.2):
    """Reports progress for a while (the runner stores some of it) and records nothing."""
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds:
        handle.progress(elapsed / seconds, f"{elapsed:.2f} s")
        handle.sleep(0.01)
    yield {"note": "not a record"}


def count_table_requests(window, monkeypatch) -> list[tuple]:
    """The window's table reads from now on, as the tasks asked for."""
    loader = window.session.loader
    asked, request = [], loader.request
    monkeypatch.setattr(loader, "request", lambda *a, **k: (asked.append(a), request(*a, **k)))
    return asked


def test_opening_a_project_shows_its_architectures(window, project_path):
    assert window.current_task() == "demo"
    assert len(window.pareto.plotted_ids()) == SCORED
    assert str(project_path) in window.path_label.text()
    assert f"{FIXTURE_ARCHS:,} architectures" in window.counts_label.text()
    assert project_path.name in window.windowTitle()
    assert settings.recent_projects(window.settings) == [str(project_path.resolve())]


def test_a_project_without_tasks_opens_empty(qtbot, tmp_path):
    win = MainWindow()
    qtbot.addWidget(win)
    assert win.open_project(tmp_path / "empty.nasproj")
    assert win.current_task() is None and win.browser.model.rowCount() == 0
    assert "no tasks yet" in win.counts_label.text()
    assert "No architectures" in win.pareto.empty_message()
    win.close()


def test_clicking_a_point_selects_its_row(window, qtbot):
    arch_id = window.pareto.front_ids()[0]
    position = window.pareto.point_position(arch_id)
    qtbot.mouseClick(window.pareto.canvas.viewport(), Qt.MouseButton.LeftButton, pos=position)
    assert window.browser.selected_ids() == [arch_id]
    assert window.detail.arch_id == arch_id
    shown = window.detail.browser.toPlainText()
    assert "Decoder layer" in shown
    assert "fixture-a" in shown or "fixture-b" in shown


def test_selecting_rows_highlights_points(window):
    chosen = window.pareto.plotted_ids()[:3]
    window.browser.select_ids(chosen)
    assert window.pareto.highlighted_ids() == sorted(chosen, key=window.pareto.plotted_ids().index)
    assert "3 selected" in window.counts_label.text()


def test_sampling_shows_progress_and_results_in_both_views(window, qtbot):
    job_id = window.start_sampling("demo", 120, seed=11)
    qtbot.waitUntil(lambda: window.jobs.state(job_id) == JobState.DONE, timeout=10_000)
    assert window.jobs.progress(job_id) == 100
    assert window.jobs.cancel_button(job_id) is None
    total = FIXTURE_ARCHS + 120
    qtbot.waitUntil(lambda: window.browser.model.rowCount() == total, timeout=5000)
    # New architectures have a cost but no BLEU yet: they join the strip under the plot.
    qtbot.waitUntil(lambda: len(window.pareto.unscored_ids()) == total - SCORED, timeout=5000)
    window.jobs.select_job(job_id)
    assert window.jobs.tree.currentItem().text(2) == "done"


def test_cancelling_a_large_sampling_job_keeps_what_it_sampled(window, qtbot, project_path):
    job_id = window.start_sampling("demo", 200_000, seed=5)
    qtbot.waitUntil(lambda: window.browser.model.rowCount() > FIXTURE_ARCHS, timeout=10_000)
    assert window.jobs.progress(job_id) is not None
    qtbot.mouseClick(window.jobs.cancel_button(job_id), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.jobs.state(job_id) == JobState.CANCELLED, timeout=2000)
    stored = window.project.count_architectures("demo")
    assert FIXTURE_ARCHS < stored < FIXTURE_ARCHS + 200_000
    qtbot.waitUntil(lambda: table_shown(window, stored), timeout=5000)
    assert len(window.pareto.unscored_ids()) == stored - SCORED
    assert window.project.job(job_id).state == "cancelled"


def test_sampling_into_a_new_known_task_switches_to_it(window, qtbot):
    job_id = window.start_sampling("wmt14ende", 30, seed=1)
    qtbot.waitUntil(lambda: window.jobs.state(job_id) == JobState.DONE, timeout=10_000)
    qtbot.waitUntil(lambda: window.current_task() == "wmt14ende", timeout=5000)
    qtbot.waitUntil(lambda: table_shown(window, 30), timeout=5000)
    assert "BLEU" in window.pareto.empty_message()


def test_bad_import_file_shows_the_error(window, qtbot, tmp_path):
    bad = tmp_path / "wmt14ende.jsonl"
    bad.write_text('{"scratch": {"arch_info": []}}\nnot json\n')
    job_id = window.import_paths([bad])
    qtbot.waitUntil(lambda: window.jobs.state(job_id) == JobState.FAILED, timeout=5000)
    qtbot.waitUntil(lambda: any(b.isVisible() for b in window.findChildren(QMessageBox)))
    box = next(b for b in window.findChildren(QMessageBox) if b.isVisible())
    assert box.windowTitle() == "Import failed"
    assert "wmt14ende.jsonl:1: arch_info" in box.text()
    box.close()
    assert window.project.count_architectures() == FIXTURE_ARCHS


def test_export_selected_writes_files(window, qtbot, tmp_path):
    chosen = window.pareto.front_ids()[:2]
    window.browser.select_ids(chosen)
    target = tmp_path / "chosen.json"
    job_id = window.export_selected_to("json", target)
    qtbot.waitUntil(lambda: window.jobs.state(job_id) == JobState.DONE, timeout=5000)
    assert sorted(r["id"] for r in json.loads(target.read_text())) == sorted(chosen)
    # YAML files are named by the cost on the Pareto view's x axis, here the parameter count.
    window.pareto.x_combo.setCurrentIndex(window.pareto.x_combo.findData("params"))
    folder = tmp_path / "yaml"
    job_id = window.export_selected_to("yaml", folder)
    qtbot.waitUntil(lambda: window.jobs.state(job_id) == JobState.DONE, timeout=5000)
    table = window.project.table("demo")
    assert sorted(p.name for p in folder.glob("*.yml")) == sorted(
        f"demo@{table.at[i, 'params'] / 1e6:.1f}Mparams_bleu@{table.at[i, 'bleu_valid']:.2f}.yml"
        for i in chosen
    )


def test_choices_persist_between_windows(qtbot, project_path):
    first = MainWindow()
    qtbot.addWidget(first)
    first.open_project(project_path)
    qtbot.waitUntil(lambda: table_shown(first, FIXTURE_ARCHS), timeout=5000)
    first.pareto.x_combo.setCurrentIndex(first.pareto.x_combo.findData("params"))
    first.close()
    assert settings.start_project(QSettings(), None) == project_path.resolve()
    second = MainWindow()
    qtbot.addWidget(second)
    second.open_project(settings.start_project(second.settings, None))
    qtbot.waitUntil(lambda: table_shown(second, FIXTURE_ARCHS), timeout=5000)
    assert second.pareto.axes() == ("params", "bleu_valid")
    assert second.current_task() == "demo"
    second.close()


def test_another_process_writing_shows_up(window, qtbot, project_path):
    from nasstudio.space import get_space

    with Project(project_path) as other:  # a second connection, like the CLI
        other.add_architectures("demo", get_space("tiny-cpu").sample_many(5, seed=99), "cli")
    qtbot.waitUntil(lambda: window.browser.model.rowCount() == FIXTURE_ARCHS + 5, timeout=5000)


def test_jobs_waiting_for_their_resource_are_queued_rows_with_cancel(window, qtbot):
    window.session.runner.slots["io"] = 1
    busy = window.start_sampling("demo", 10_000_000, seed=1)
    waiting = window.start_sampling("demo", 10, seed=2)
    assert window.jobs.state(waiting) == JobState.QUEUED
    assert "Waiting for a free slot" in window.jobs.tree.currentItem().toolTip(2)
    assert "queued or running" in window.counts_label.text()
    qtbot.mouseClick(window.jobs.cancel_button(waiting), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.jobs.state(waiting) == JobState.CANCELLED, timeout=5000)
    assert window.project.job(waiting).started_at is None
    assert window.jobs.rerun_button(waiting) is not None  # its function and parameters are kept
    qtbot.mouseClick(window.jobs.cancel_button(busy), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.jobs.state(busy) == JobState.CANCELLED, timeout=5000)


@pytest.fixture
def interrupted_job(project_path) -> int:
    """A sampling job whose process died while it ran (as after kill -9)."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    with Project(project_path) as project:
        job_id = project.create_job(
            "sample",
            "Sample 25 into demo",
            {"task": "demo", "count": 25, "seed": 4},
            JobOwner(socket.gethostname(), gone.pid, 0.0),
            "nasstudio.jobs.sampling:sample_job",
            "io",
            "thread",
        )
        project.update_job(job_id, state="running", started_at=time.time())
    return job_id


def test_an_interrupted_job_is_shown_as_such_and_runs_again(interrupted_job, window, qtbot):
    jobs = window.jobs
    assert jobs.state(interrupted_job) == JobState.INTERRUPTED
    assert jobs.running_count() == 0 and jobs.cancel_button(interrupted_job) is None
    jobs.select_job(interrupted_job)
    tip = jobs.tree.currentItem().toolTip(2)
    assert "the process running it ended" in tip and "Run again" in tip
    qtbot.mouseClick(jobs.rerun_button(interrupted_job), Qt.MouseButton.LeftButton)
    again = int(jobs.tree.currentItem().text(0))  # the new job is shown and selected
    assert again != interrupted_job
    qtbot.waitUntil(lambda: jobs.state(again) == JobState.DONE, timeout=10_000)
    assert window.project.job(again).params == window.project.job(interrupted_job).params
    qtbot.waitUntil(lambda: window.browser.model.rowCount() == FIXTURE_ARCHS + 25, timeout=5000)


def test_progress_alone_reloads_no_table(window, qtbot, monkeypatch):
    asked = count_table_requests(window, monkeypatch)
    with qtbot.assertNotEmitted(window.session.loader.loaded, wait=2 * POLL_MS):
        job_id = window.session.submit("test", "Progress only", progress_only_job)
        qtbot.waitUntil(lambda: window.jobs.state(job_id) == JobState.DONE, timeout=10_000)
        assert window.jobs.progress(job_id) == 100
    assert asked == []


def test_records_of_another_task_do_not_reload_the_shown_one(window, qtbot, monkeypatch):
    asked = count_table_requests(window, monkeypatch)
    job_id = window.session.submit(
        "sample", "Sample into wmt14ende", sample_job, task="wmt14ende", count=30, seed=1
    )
    qtbot.waitUntil(lambda: window.jobs.state(job_id) == JobState.DONE, timeout=10_000)
    qtbot.waitUntil(lambda: window.task_combo.findData("wmt14ende") >= 0, timeout=5000)
    qtbot.wait(2 * POLL_MS)  # the poll sees the write too
    assert window.current_task() == "demo" and asked == []
    window.view.task = "wmt14ende"
    qtbot.waitUntil(lambda: window.browser.model.rowCount() == 30, timeout=5000)
    assert asked == [("wmt14ende",)]


def test_a_killed_worker_fails_its_job_and_the_window_and_next_job_carry_on(window, qtbot):
    from tests import jobfns

    window.session.runner.slots["cpu"] = 1
    pids = {}
    window.session.bridge.job_event.connect(
        lambda e: e.kind == "partial" and pids.setdefault(e.job_id, e.payload)
    )
    submit = window.session.submit
    doomed = submit("test", "Doomed", jobfns.pid_then_wait_job, executor="process", resource="cpu")
    after = submit(
        "test", "After", jobfns.pid_then_wait_job, executor="process", resource="cpu", seconds=0.1
    )
    qtbot.waitUntil(lambda: doomed in pids, timeout=60_000)
    assert window.jobs.state(after) == JobState.QUEUED
    os.kill(pids[doomed], signal.SIGKILL)
    qtbot.waitUntil(lambda: window.jobs.state(doomed) == JobState.FAILED, timeout=30_000)
    window.jobs.select_job(doomed)
    assert "killed by SIGKILL" in window.jobs.tree.currentItem().text(4)  # the Message column
    qtbot.waitUntil(lambda: window.jobs.state(after) == JobState.DONE, timeout=60_000)
    sampled = window.start_sampling("demo", 5, seed=9)  # the window still takes work
    qtbot.waitUntil(lambda: window.jobs.state(sampled) == JobState.DONE, timeout=10_000)


def click_job(window, job_id: int, qtbot) -> str:
    """Click the job's row in the Jobs panel; returns the log pane's text."""
    window.jobs_dock.raise_()  # the Jobs tab, in front of the Train panel's
    tree = window.jobs.tree
    item = next(
        tree.topLevelItem(i)
        for i in range(tree.topLevelItemCount())
        if tree.topLevelItem(i).text(0) == str(job_id)
    )
    tree.scrollToItem(item)
    qtbot.waitUntil(tree.isVisible, timeout=5000)
    qtbot.mouseClick(
        tree.viewport(), Qt.MouseButton.LeftButton, pos=tree.visualItemRect(item).center()
    )
    assert tree.currentItem() is item
    return window.jobs.log.toPlainText()


def test_a_user_error_is_one_line_and_a_bugs_traceback_waits_behind_details(window, qtbot):
    from tests import jobfns

    jobs = window.jobs
    # The user's mistake: sampling into a task the project does not have.
    told = []  # the status bar's messages (a mouse moving over a tool tip clears one)
    window.statusBar().messageChanged.connect(told.append)
    mistake = window.start_sampling("nosuch", 10, seed=1)
    qtbot.waitUntil(lambda: jobs.state(mistake) == JobState.FAILED, timeout=10_000)
    # The status bar hears of it on a later turn of the event loop than the jobs panel.
    said = "Sampling: failed: no task 'nosuch' in the project"
    qtbot.waitUntil(lambda: said in told, timeout=10_000)
    log = click_job(window, mistake, qtbot)
    assert log.splitlines()[-1] == "failed: no task 'nosuch' in the project"
    assert "Traceback" not in log and not jobs.details_button.isVisible()
    assert jobs.tree.currentItem().text(4) == "failed: no task 'nosuch' in the project"
    # A bug: one line too, its traceback one click away.
    bug = window.session.submit(
        "test", "Buggy", jobfns.failing_job, executor="thread", message="boom"
    )
    qtbot.waitUntil(lambda: jobs.state(bug) == JobState.FAILED, timeout=10_000)
    log = click_job(window, bug, qtbot)
    assert log.splitlines()[-1] == "failed unexpectedly: RuntimeError: boom"
    assert "Traceback" not in log and jobs.details_button.isVisible()
    qtbot.mouseClick(jobs.details_button, Qt.MouseButton.LeftButton)
    log = jobs.log.toPlainText()
    assert "Traceback (most recent call last):" in log and "raise RuntimeError(message)" in log
    # Another job's log starts without its details again.
    assert "Traceback" not in click_job(window, mistake, qtbot)
    assert "Traceback" not in click_job(window, bug, qtbot)
