"""Closing the main window frees it, its panels and their pyqtgraph items (in the style of
napari's leak tests): on the GUI thread, by reference counting, at once. Qt objects left for the
cyclic garbage collector would be destroyed in whatever thread it happens to run in, a job's
worker thread included, and deadlock there against the GUI thread."""

from __future__ import annotations

import gc
import socket
import weakref
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from PySide6.QtCore import QCoreApplication, QEvent, QObject, Qt
from PySide6.QtWidgets import QApplication, QGraphicsItem

from nasstudio.gui.main_window import MainWindow
from nasstudio.jobs import JobState
from nasstudio.store import Project
from nasstudio.store.owners import JobOwner
from tests.gui.conftest import FIXTURE_ARCHS

WINDOWS = 3


def qt_objects() -> list[object]:
    """Python wrappers of QObjects and graphics items (pyqtgraph's plots and points)."""
    return [o for o in gc.get_objects() if issubclass(type(o), QObject | QGraphicsItem)]


@contextmanager
def no_cyclic_collection() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.fixture
def past_run(project_path) -> int:
    """A finished training with stored curve points (made up), so the Train panel draws."""
    with Project(project_path) as project:
        arch_id = project.table("demo").index[0]
        params = {"task": "demo", "arch_id": arch_id, "corpus": {"kind": "demo"}}
        job_id = project.create_job(
            "train", "Train", params, JobOwner(socket.gethostname(), 0, 0.0)
        )
        project.update_job(job_id, state="done", progress=1.0)
        points = [(arch_id, step, {"train_loss": 5.0 / step}) for step in range(1, 30)]
        project.add_curve_points(job_id, points)
    return job_id


def use_the_window(window: MainWindow, qtbot, seed: int, run: int) -> None:
    """What a user does: sample (a job), select, change an axis, toggle and clear a run."""
    qtbot.waitUntil(lambda: window.browser.model.rowCount() >= FIXTURE_ARCHS, timeout=5000)
    job_id = window.start_sampling("demo", 30, seed=seed)
    qtbot.waitUntil(lambda: window.jobs.state(job_id) == JobState.DONE, timeout=10_000)
    qtbot.waitUntil(lambda: len(window.pareto.unscored_ids()) > 10, timeout=5000)
    window.browser.select_ids(window.pareto.front_ids()[:3])
    window.pareto.x_combo.setCurrentIndex(1)
    window.jobs.select_job(job_id)
    item = window.train_panel.runs.topLevelItem(0)
    assert window.train_panel.curves.points(run, "train_loss")[0].size == 29
    item.setCheckState(0, Qt.CheckState.Unchecked)
    window.train_panel.clear_finished()


def test_closed_windows_free_their_panels_and_plots_at_once(qtbot, project_path, past_run):
    # The application's style belongs to the process, not to a window: wrap it beforehand.
    app_style = QApplication.style()
    before = weakref.WeakSet(qt_objects())
    kept: list[weakref.ref] = []
    with no_cyclic_collection():
        for seed in range(WINDOWS):
            window = MainWindow()
            window.open_project(project_path)
            window.show()
            use_the_window(window, qtbot, seed, past_run)
            kept += [
                weakref.ref(o)
                for o in (
                    window,
                    window.browser,
                    window.detail,
                    window.pareto,
                    window.pareto.plot,
                    window.pareto.canvas,
                    window.jobs,
                    window.train_panel,
                    window.train_panel.curves,
                    window.view,
                )
            ]
            window.close()
            del window
            QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
            QCoreApplication.processEvents()
        alive = [type(ref()).__name__ for ref in kept if ref() is not None]
        left = Counter(type(o).__name__ for o in qt_objects() if o not in before)
    assert alive == [], "freed only by the cyclic collector, or never"
    assert left == Counter(), "Qt objects outlive their window"
    assert app_style is QApplication.style()
    gc.collect()
    assert [ref for ref in kept if ref() is not None] == []
