"""GUI test fixtures: offscreen Qt, settings and data folders under tmp, small made-up projects."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path

import numpy as np
import pytest

from nasstudio.store import BLEU_VALID, GFLOPS, Measurement, Project
from nasstudio.store.defaults import add_demo

FIXTURE_ARCHS = 40
SCORED = 30  # the first 30 get a made-up BLEU, the last 10 have none


@pytest.fixture(scope="package", autouse=True)
def event_loop(qapp):
    """One qasync event loop for all GUI tests, running as in the app: Qt's event processing
    (the tests' waits) runs its callbacks, so LLM coroutines run on the GUI thread. It is
    released after the GUI tests, so that the headless tests may run loops of their own."""
    import asyncio

    from qasync import QEventLoop

    loop = QEventLoop(qapp, already_running=True)
    asyncio.set_event_loop(loop)
    yield loop
    qapp.processEvents()  # the last callbacks (cancelled jobs unwinding)
    loop.stop()
    asyncio.events._set_running_loop(None)
    asyncio.set_event_loop(None)
    loop.close()


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, qapp) -> None:
    """QSettings and the platformdirs data folder point into tmp_path, so a test never reads
    or writes the user's settings or default project."""
    from PySide6.QtCore import QSettings

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(
        QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings")
    )
    qapp.setOrganizationName("nasstudio-tests")
    qapp.setApplicationName("nasstudio-tests")


def fake_bleu(project: Project, task: str, ids: list[str], source: str) -> None:
    """Test fixture only: BLEU values made up from GFLOPs plus noise, not real measurements."""
    table = project.table(task).loc[ids]
    rng = np.random.default_rng(7)
    values = 20 + 40 * table[GFLOPS].to_numpy() + rng.normal(0, 0.5, len(ids))
    project.add_measurements(
        Measurement(arch_id, task, BLEU_VALID, float(v), source, provenance={"fixture": True})
        for arch_id, v in zip(ids, values, strict=True)
    )


@pytest.fixture
def project_path(tmp_path: Path) -> Path:
    """A demo-task project: 40 sampled architectures, 30 with made-up BLEU from two sources."""
    path = tmp_path / "fixture.nasproj"
    with Project(path) as project:
        add_demo(project, FIXTURE_ARCHS, seed=3)
        ids = project.table("demo").index.tolist()
        fake_bleu(project, "demo", ids[:20], "fixture-a")
        fake_bleu(project, "demo", ids[20:SCORED], "fixture-b")
    return path


def table_shown(window, count: int) -> bool:
    """Both views show a table of ``count`` architectures (the Pareto view takes it one turn
    of the event loop after the browser)."""
    pareto = window.pareto
    return (
        window.browser.model.total_count() == count
        and pareto.plotted_count() + len(pareto.unscored_ids()) == count
    )


@pytest.fixture
def window(qtbot, project_path: Path):
    """The main window on the fixture project, its table loaded."""
    from nasstudio.gui.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    assert win.open_project(project_path)
    win.show()
    qtbot.waitUntil(lambda: table_shown(win, FIXTURE_ARCHS), timeout=5000)
    yield win
    win.close()
