"""Layout at the two screen sizes users have (1280x800 and 1920x1080): the window keeps its
width when docks open, and the key controls are visible, whole and apart from each other."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QRect, Qt
from PySide6.QtWidgets import QToolButton, QWidget

from nasstudio.cli import main as cli
from nasstudio.gui.llm_actions import SEEDARCHS_KEY
from nasstudio.gui.main_window import MainWindow
from nasstudio.gui.prompt_editor import SECTION_LINES
from nasstudio.gui.prompt_evaluations import TAU
from nasstudio.jobs import JobState
from tests.gui.conftest import FIXTURE_ARCHS, table_shown

SIZES = [(1280, 800), (1920, 1080)]


def whole(widget: QWidget) -> bool:
    """Shown, and no part of it cut off by a parent (a scroll area, a splitter, the window)."""
    return widget.isVisible() and widget.visibleRegion().boundingRect() == widget.rect()


def global_rect(widget: QWidget) -> QRect:
    return QRect(widget.mapToGlobal(widget.rect().topLeft()), widget.size())


def column_shown(view, column: int) -> bool:
    """The column lies inside the view's viewport and is as wide as its widest cell."""
    header = view.header() if hasattr(view, "header") else view.horizontalHeader()
    left = header.sectionViewportPosition(column)
    inside = left >= 0 and left + header.sectionSize(column) <= view.viewport().width()
    return inside and header.sectionSize(column) >= view.sizeHintForColumn(column)


@pytest.fixture
def evaluated_path(project_path, refdata):
    """The fixture project plus the llmas seed files of wmt14ende and the four stored
    baselines' evaluations on them (what `nasstudio evaluate --baselines` records)."""
    seedarchs = refdata / "llmpp" / "seedarchs"
    argv = ["--project", str(project_path), "evaluate", "--seedarchs", str(seedarchs)]
    assert cli([*argv, "--task", "wmt14ende", "--baselines"]) == 0
    return project_path, seedarchs


@pytest.fixture(params=SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
def sized_window(request, qtbot, evaluated_path):
    """The main window on the evaluated project, resized to a screen size and shown."""
    path, seedarchs = evaluated_path
    win = MainWindow()
    win.settings.setValue(SEEDARCHS_KEY, str(seedarchs))
    qtbot.addWidget(win)
    assert win.open_project(path)
    win.resize(*request.param)
    win.show()
    qtbot.waitUntil(lambda: table_shown(win, FIXTURE_ARCHS), timeout=5000)
    yield win
    win.close()


def open_dock(window, action, qtbot) -> None:
    if not action.isChecked():
        action.trigger()
    qtbot.wait(50)  # the dock layout settles on the next turns of the event loop


def test_opening_any_dock_keeps_the_window_width(sized_window, qtbot):
    window = sized_window
    width = window.width()
    actions = [
        window.jobs_dock.toggleViewAction(),
        window.train_dock.toggleViewAction(),
        window.llm.editor_action,
    ]
    for action in actions:
        open_dock(window, action, qtbot)
        assert window.width() == width, action.text()
    for action in actions:  # closed and opened again, one by one
        action.trigger()
        qtbot.wait(50)
        action.trigger()
        qtbot.wait(50)
        assert window.width() == width, action.text()


def test_browser_and_top_bar_are_readable(sized_window):
    window = sized_window
    view = window.browser.view
    for column in range(4):  # the id and the first hyperparameters
        assert column_shown(view, column), view.model().headerData(
            column, Qt.Orientation.Horizontal
        )
    count = window.browser.count_label
    y_label = next(
        label for label in window.pareto.findChildren(type(count)) if label.text() == "BLEU (y)"
    )
    for label in (count, y_label):
        assert whole(label) and label.sizeHint().width() <= label.width(), label.text()
    # The browser's count ends before the Pareto view's first label begins.
    assert global_rect(count).right() < global_rect(y_label).left()
    for combo in (window.pareto.y_combo, window.pareto.x_combo):
        assert whole(combo)
    assert "on the front" in window.pareto.plot.titleLabel.text


def test_train_form_shows_the_corpus_choice(sized_window, qtbot):
    window = sized_window
    window.train_dock.raise_()
    qtbot.waitUntil(lambda: window.train_panel.isVisible())
    form = window.train_panel.form
    corpus_group = form.corpus_combo.parentWidget()
    assert corpus_group.title() == "Corpus"
    assert whole(form.corpus_combo) and whole(form.note_label)
    assert (
        corpus_group.visibleRegion().boundingRect().height() >= form.note_label.geometry().bottom()
    )
    panel = window.train_panel
    buttons = [*panel.findChildren(QToolButton), panel.cancel_button, panel.rerun_button]
    for button in [*buttons, panel.clear_button]:  # the actions under the form and the runs
        assert whole(button), button.text()


def test_run_legend_sits_outside_the_plots(sized_window, qtbot):
    curves = sized_window.train_panel.curves
    sized_window.train_dock.raise_()
    names = ["a0c2f6e1d3b4c5a6", "b7d8e9f0a1b2c3d4", "c5a6b7d8e9f0a1b2", "d3b4c5a6b7d8e9f0"]
    for key, label in enumerate(names):
        curves.add_run(key, label)
        curves.append(key, [{"step": s, "train_loss": 5.0 - s / 100} for s in range(0, 300, 10)])
    qtbot.wait(50)
    legend = curves.legend
    assert whole(legend) and all(name in legend.text() for name in names)
    # Below the canvas, so off every plot's data area; the plots stay inside the canvas.
    assert global_rect(legend).top() > global_rect(curves.canvas).bottom()
    for plot in curves.plots.values():
        assert curves.canvas.sceneRect().contains(plot.sceneBoundingRect())


def test_prompt_editor_shows_six_lines_per_section_and_the_kendall_column(sized_window, qtbot):
    window = sized_window
    open_dock(window, window.llm.editor_action, qtbot)
    editor = window.llm.editor
    for edit in (editor.role_edit, editor.instructions_edit, editor.definitions_edit):
        lines = edit.viewport().height() / edit.fontMetrics().lineSpacing()
        assert lines >= SECTION_LINES and whole(edit)
    editor.tabs.setCurrentWidget(editor.evaluations)
    panel = editor.evaluations
    panel.task_combo.setCurrentText("wmt14ende")
    qtbot.waitUntil(lambda: len(panel.rows()) == 4)  # the four stored baselines
    assert column_shown(panel.tree, TAU)


def test_job_rows_keep_their_height_and_buttons_when_a_cancel_button_goes(sized_window, qtbot):
    window = sized_window
    jobs = window.jobs
    window.train_dock.raise_()
    window.session.runner.slots["io"] = 1
    busy = window.start_sampling("demo", 10_000_000, seed=1)
    assert jobs.isVisible()  # the Jobs tab comes to the front with a job the window starts
    quick = window.start_sampling("demo", 5, seed=2)
    qtbot.mouseClick(jobs.cancel_button(busy), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: jobs.state(quick) == JobState.DONE, timeout=10_000)
    assert jobs.progress(quick) == 100
    tree = jobs.tree
    rows = [tree.visualItemRect(tree.topLevelItem(i)) for i in range(tree.topLevelItemCount())]
    assert len({row.height() for row in rows}) == 1  # with or without a button
    again = jobs.rerun_button(busy)
    item_rect = tree.visualItemRect(tree.topLevelItem(1))  # newest first: the busy job is second
    assert item_rect.contains(again.geometry())


def test_the_first_window_fits_the_screen(qtbot):
    window = MainWindow()
    qtbot.addWidget(window)
    screen = window.screen().availableGeometry()
    assert screen.contains(window.geometry())
    window.close()
