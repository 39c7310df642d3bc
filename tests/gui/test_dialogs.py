"""The window's dialogs driven as a user does: Sample architectures (Ctrl+Shift+S) and the task
chooser of an import default to the open task and file architectures under task names; an
import into another task says so or switches to it; the first start makes the README's demo."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QDialog, QDialogButtonBox, QFileDialog

from nasstudio.gui.dialogs import SampleDialog, TaskDialog
from nasstudio.gui.main_window import MainWindow
from nasstudio.space import get_space
from nasstudio.space.hat import to_yaml
from nasstudio.store import KNOWN_TASKS, Project
from tests.gui.conftest import FIXTURE_ARCHS, table_shown

WMT_ARCHS = 12  # made-up wmt14ende architectures beside the fixture's demo task


def answer_dialog(dialog_type: type[QDialog], answer: Callable[[QDialog], None]) -> list:
    """Call ``answer(dialog)`` once a modal dialog of ``dialog_type`` shows (the window waits
    in its ``exec()`` meanwhile). Returns a list that holds the dialog once answered."""
    answered: list[QDialog] = []

    def poll(tries_left: int = 500) -> None:
        dialog = QApplication.activeModalWidget()
        if isinstance(dialog, dialog_type):
            answered.append(dialog)
            try:
                answer(dialog)
            finally:
                if dialog.isVisible():  # a failed check: close it, or the test waits forever
                    dialog.reject()
        elif tries_left:
            QTimer.singleShot(10, lambda: poll(tries_left - 1))

    QTimer.singleShot(0, poll)
    return answered


def click_ok(dialog: QDialog) -> None:
    button = dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok)
    button.click()


@pytest.fixture
def two_task_path(project_path: Path) -> Path:
    """The fixture project with a wmt14ende task of a few sampled architectures besides."""
    with Project(project_path) as project:
        task = project.ensure_task(KNOWN_TASKS["wmt14ende"])
        archs = get_space(task.space).sample_many(WMT_ARCHS, seed=99)
        project.add_architectures(task.name, archs, origin="test")
    return project_path


@pytest.fixture
def wmt_window(qtbot, two_task_path):
    """The window with wmt14ende open (the task chosen in the toolbar), its table shown."""
    window = MainWindow()
    qtbot.addWidget(window)
    assert window.open_project(two_task_path)
    window.show()
    qtbot.waitUntil(lambda: table_shown(window, FIXTURE_ARCHS), timeout=5000)
    window.task_combo.setCurrentIndex(window.task_combo.findData("wmt14ende"))
    qtbot.waitUntil(lambda: table_shown(window, WMT_ARCHS), timeout=5000)
    yield window
    window.close()


def yaml_file(folder: Path, seed: int = 5) -> Path:
    """A HAT SubTransformer YAML file of one hat-wmt architecture (it names no task)."""
    [arch] = get_space("hat-wmt").sample_many(1, seed)
    path = folder / "subtransformer.yml"
    path.write_text(to_yaml(arch))
    return path


def test_sample_dialog_lists_task_names_and_samples_into_the_open_task(wmt_window, qtbot):
    window = wmt_window

    def sample_25(dialog: SampleDialog) -> None:
        combo = dialog.task_combo
        # Names as data, descriptions as tooltips; the open task is chosen.
        assert combo.currentData() == "wmt14ende" and combo.currentText() == "wmt14ende"
        assert combo.itemData(combo.currentIndex(), Qt.ItemDataRole.ToolTipRole) == (
            "WMT'14 English-German"
        )
        assert [combo.itemData(i) for i in range(combo.count())][:2] == ["demo", "wmt14ende"]
        dialog.count_spin.setValue(25)
        dialog.seed_spin.setValue(1)
        click_ok(dialog)

    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    answered = answer_dialog(SampleDialog, sample_25)
    qtbot.keyClick(
        window,
        Qt.Key.Key_S,
        Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
    )
    assert answered, "Ctrl+Shift+S opened no Sample dialog"
    qtbot.waitUntil(lambda: table_shown(window, WMT_ARCHS + 25), timeout=10_000)
    assert window.current_task() == "wmt14ende"
    assert window.project.count_architectures("wmt14ende") == WMT_ARCHS + 25
    assert window.project.count_architectures("demo") == FIXTURE_ARCHS


def test_import_task_chooser_defaults_to_the_open_task(wmt_window, qtbot, tmp_path, monkeypatch):
    window = wmt_window
    path = yaml_file(tmp_path)
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *a, **k: ([str(path)], ""))
    chosen = []

    def accept(dialog: TaskDialog) -> None:
        chosen.append(dialog.task_combo.currentText())
        assert not dialog.vocab_spin.isEnabled()  # a task of the project: its vocabulary
        click_ok(dialog)

    answered = answer_dialog(TaskDialog, accept)
    window.import_action.trigger()  # Project ▸ Import…
    assert answered and chosen == ["wmt14ende"]
    qtbot.waitUntil(lambda: table_shown(window, WMT_ARCHS + 1), timeout=10_000)
    assert window.project.count_architectures("wmt14ende") == WMT_ARCHS + 1
    assert [t.name for t in window.project.tasks()] == ["demo", "wmt14ende"]


def import_yaml_into(window, qtbot, path: Path, task: str, monkeypatch) -> None:
    """Project ▸ Import… of ``path``, choosing ``task`` in the task chooser."""
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *a, **k: ([str(path)], ""))

    def choose(dialog: TaskDialog) -> None:
        dialog.task_combo.setCurrentIndex(dialog.task_combo.findData(task))
        click_ok(dialog)

    answered = answer_dialog(TaskDialog, choose)
    window.import_action.trigger()
    assert answered
    qtbot.waitUntil(lambda: window.project.count_architectures(task) == 1, timeout=10_000)


def test_an_import_into_another_task_offers_to_show_it(window, qtbot, tmp_path, monkeypatch):
    told = []  # the status bar's messages (a mouse moving over a tool tip clears one)
    window.statusBar().messageChanged.connect(told.append)
    import_yaml_into(window, qtbot, yaml_file(tmp_path), "wmt14ende", monkeypatch)
    button = window.show_task_button
    qtbot.waitUntil(button.isVisible, timeout=5000)
    assert button.text() == "Show wmt14ende"
    assert any("into task wmt14ende; the view shows demo" in message for message in told)
    assert window.current_task() == "demo"  # the shown task had architectures: it stays
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert window.current_task() == "wmt14ende"
    qtbot.waitUntil(lambda: table_shown(window, 1), timeout=5000)
    assert not button.isVisible()


def test_an_import_into_an_empty_project_shows_the_imported_task(qtbot, tmp_path, monkeypatch):
    window = MainWindow()
    qtbot.addWidget(window)
    assert window.open_project(tmp_path / "empty.nasproj")
    window.show()
    assert window.current_task() is None
    import_yaml_into(window, qtbot, yaml_file(tmp_path), "wmt14ende", monkeypatch)
    qtbot.waitUntil(lambda: window.current_task() == "wmt14ende", timeout=5000)
    qtbot.waitUntil(lambda: table_shown(window, 1), timeout=5000)
    assert not window.show_task_button.isVisible()
    window.close()


def test_switching_task_drops_the_previous_bleu_range(wmt_window, qtbot):
    window = wmt_window
    box = window.pareto.plot.getViewBox()
    window.task_combo.setCurrentIndex(window.task_combo.findData("demo"))
    qtbot.waitUntil(lambda: table_shown(window, FIXTURE_ARCHS), timeout=5000)
    bleu = window.project.table("demo")["bleu_valid"].dropna()
    qtbot.waitUntil(
        lambda: box.viewRange()[1][0] <= bleu.min() < bleu.max() <= box.viewRange()[1][1]
    )
    demo_range = box.viewRange()[1]
    box.setYRange(bleu.min(), (bleu.min() + bleu.max()) / 2)  # the user zooms in
    # wmt14ende has no BLEU: nothing of demo's range may stay on its axis.
    window.task_combo.setCurrentIndex(window.task_combo.findData("wmt14ende"))
    qtbot.waitUntil(lambda: table_shown(window, WMT_ARCHS), timeout=5000)
    low, high = box.viewRange()[1]
    assert high < demo_range[0] or low > demo_range[1]
    # Back on demo, every BLEU is in view again (the zoom belonged to the earlier visit).
    window.task_combo.setCurrentIndex(window.task_combo.findData("demo"))
    qtbot.waitUntil(lambda: table_shown(window, FIXTURE_ARCHS), timeout=5000)
    qtbot.waitUntil(
        lambda: box.viewRange()[1][0] <= bleu.min() < bleu.max() <= box.viewRange()[1][1]
    )


def test_the_first_start_makes_the_readmes_sixty_demo_architectures(qtbot):
    window = MainWindow()
    qtbot.addWidget(window)
    assert window.open_project(None)  # the default project, created on the first start
    window.show()
    # README, "Open the app": "a demo task: 60 architectures sampled from a small CPU-sized space"
    qtbot.waitUntil(lambda: table_shown(window, 60), timeout=5000)
    assert window.project.count_architectures("demo") == 60
    window.close()
