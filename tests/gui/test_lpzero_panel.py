"""The LPZero panel: a proxy search started with Run draws its fitness curve iteration by
iteration and Cancel stops it with the iterations done kept and drawn; a past search is drawn
again from the store; Use as predictor stores its formula and the Search panel offers it; a
bad archs file says what is wrong in one line; the choices persist.

The benchmark is a file of tiny GPT-2 decoders (tests/lpzero_archs.py) built so that their
parameter count ranks them exactly as their -valid ppl does: #params has rho = tau = 1."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QInputDialog, QLineEdit

from nasstudio.gui.lpzero_panel import LPZeroPanel, default_proxy_name
from nasstudio.gui.lpzero_plot import FOUND
from nasstudio.gui.view_state import ViewState
from nasstudio.jobs import JobRunner, JobState
from nasstudio.lpzero.jobs import LPZeroSpec, lpzero_search_job
from nasstudio.lpzero.proxies import CLASSIC_PROXIES
from nasstudio.lpzero.search import GPSettings
from tests.gui.test_layout import whole
from tests.lpzero_archs import write_archs

ARCHS = 8
TRUTH = [-(200.0 - 10 * i) for i in range(ARCHS)]  # -valid ppl of tests/lpzero_archs.py
SEARCH_MS = 60_000  # generous: a worker process starts, on a loaded 2-core machine
TINY = {"sample": 0, "gp/population": 6, "gp/chain_length": 2, "gp/seed": 0}


@pytest.fixture
def archs_file(tmp_path):
    return write_archs(tmp_path / "archs.jsonl", ARCHS)


@pytest.fixture
def searched_path(project_path, archs_file):
    """The fixture project with a finished 5-iteration search on the tiny archs file, run in
    a thread by a runner of its own (the runner records it as the window's would)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a worker process: more threads crawl on a busy machine
    spec = LPZeroSpec(str(archs_file), settings=GPSettings(population=6, iterations=5))
    runner = JobRunner(project_path)
    job_id = runner.submit(
        "lpzero", "LPZero tiny", lpzero_search_job, executor="thread", spec=spec.as_params()
    )
    runner.wait(job_id, timeout=60)
    runner.shutdown()
    torch.set_num_threads(previous)
    return project_path


def drawn_iterations(panel) -> int:
    return len(panel.plot.fitness_points()[0])


def test_run_draws_the_fitness_curve_and_cancel_keeps_it(window, qtbot, archs_file):
    panel = window.lpzero_panel
    panel.form.set_values(
        {**TINY, "benchmark": "file", "archs_file": str(archs_file), "gp/iterations": 1_000_000}
    )
    assert panel.run_button.isEnabled(), panel.problem_label.text()
    qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    job_id = panel.shown_run()
    assert job_id in panel.run_ids()
    seen = []  # iterations drawn at each look

    def updated_three_times() -> bool:
        seen.append(drawn_iterations(panel))
        return len({n for n in seen if n}) >= 3

    qtbot.waitUntil(updated_three_times, timeout=SEARCH_MS)
    drawn = [n for n in seen if n]
    assert drawn == sorted(drawn)  # the curve only ever grows
    # The classic proxies on the same architectures, the found proxy first: #params ranks
    # the tiny decoders exactly as their ground truth (by construction).
    rows = panel.plot.classic_rows()
    assert next(iter(rows)) == FOUND and set(rows) == {FOUND, *CLASSIC_PROXIES}
    assert rows["num_parameters"] == pytest.approx((1.0, 1.0))
    assert panel.cancel_button.isEnabled()
    qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.jobs.state(job_id) == JobState.CANCELLED, timeout=SEARCH_MS)

    stored = window.project.lpzero_iterations(job_id)
    assert 3 <= len(stored) < 1_000_000
    # The iterations done stay drawn: the curves, the best formula, its scatter.
    iterations, best, median = panel.plot.fitness_points()
    assert iterations.tolist() == list(range(len(stored)))
    assert best.tolist() == pytest.approx([i.best_fitness for i in stored])
    assert median.tolist() == pytest.approx([i.median_fitness for i in stored])
    assert (best[1:] >= best[:-1]).all()  # steady state: the best is never lost
    assert panel.plot.formula_edit.text() == stored[-1].best
    truth, _ = panel.plot.scatter_points()
    assert set(truth.tolist()) <= set(TRUTH) and truth.size >= ARCHS - 2
    assert panel.runs.topLevelItem(0).text(1) == "cancelled"
    assert panel.runs.topLevelItem(0).text(2) == f"{len(stored):,}"
    assert not panel.cancel_button.isEnabled()


def test_a_past_search_is_drawn_and_used_as_a_predictor(qtbot, searched_path):
    from nasstudio.gui.main_window import MainWindow

    window = MainWindow()
    qtbot.addWidget(window)
    assert window.open_project(searched_path)
    panel = window.lpzero_panel
    (job_id,) = panel.run_ids()
    assert panel.shown_run() is None and not panel.use_button.isEnabled()
    assert panel.runs.topLevelItem(0).text(2) == "5"
    panel.show_run(job_id)
    stored = window.project.lpzero_iterations(job_id)
    assert panel.plot.fitness_points()[0].tolist() == [0, 1, 2, 3, 4]
    assert panel.plot.fitness_points()[1].tolist() == pytest.approx(
        [i.best_fitness for i in stored]
    )
    truth, _ = panel.plot.scatter_points()
    assert set(truth.tolist()) <= set(TRUTH) and truth.size >= ARCHS - 2
    assert panel.plot.classic_rows()["num_parameters"] == pytest.approx((1.0, 1.0))

    # Use as predictor…: a name dialog with the formula's words; a new name stores it.
    formula = stored[-1].best
    qtbot.mouseClick(panel.use_button, Qt.MouseButton.LeftButton)
    dialog = panel.name_dialog
    assert isinstance(dialog, QInputDialog) and dialog.isVisible()
    edit = dialog.findChild(QLineEdit)
    assert edit.text() == default_proxy_name(formula)
    edit.clear()
    qtbot.keyClicks(edit, "tiny-best")
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    (proxy,) = window.project.proxies()
    assert (proxy.name, proxy.formula) == ("tiny-best", formula)
    assert proxy.sign * stored[-1].best_rho == pytest.approx(proxy.rho) and proxy.rho > 0
    combo = window.search_panel.form.first_combo
    assert combo.findData("proxy:tiny-best") >= 0
    assert formula in combo.itemText(combo.findData("proxy:tiny-best"))
    window.close()


def test_a_bad_archs_file_says_what_is_wrong_in_one_line(window, tmp_path, archs_file):
    panel = window.lpzero_panel
    bad = tmp_path / "bad.jsonl"
    bad.write_text(archs_file.read_text().splitlines()[0] + "\n{not json\n")
    panel.form.set_values({"benchmark": "file", "archs_file": str(bad), "sample": 0})
    text = panel.problem_label.text()
    assert text.startswith(f"{bad}:2: not JSON") and "\n" not in text
    assert panel.problem_label.isVisible() and not panel.run_button.isEnabled()
    assert panel.run() is None  # the menu's Run… says the same, starts nothing
    panel.form.set_values({"archs_file": str(archs_file)})
    assert panel.run_button.isEnabled() and not panel.problem_label.isVisible()


def test_the_menu_runs_it_with_a_shortcut_of_its_own(window):
    action = window.lpzero_panel.run_action
    assert action in window.search_menu.actions()
    actions = window.findChildren(type(action))
    shortcuts = Counter(a.shortcut().toString() for a in actions if not a.shortcut().isEmpty())
    assert shortcuts[action.shortcut().toString()] == 1


def test_its_controls_are_whole_on_a_small_screen(window, qtbot):
    window.resize(1280, 800)
    window.lpzero_dock.show()
    window.lpzero_dock.raise_()
    qtbot.wait(50)  # the dock layout settles on the next turns of the event loop
    panel = window.lpzero_panel
    assert window.width() == 1280
    for widget in (
        panel.run_button,
        panel.cancel_button,
        panel.use_button,
        panel.plot.formula_edit,
        panel.plot.classic_table,
        panel.form.benchmark_combo,
    ):
        assert whole(widget), widget


def test_choices_persist(qtbot, tmp_path):
    panel = LPZeroPanel(QSettings(), ViewState())
    qtbot.addWidget(panel)
    assert not panel.run_button.isEnabled()
    chosen = {
        "benchmark": "file",
        "archs_file": str(tmp_path / "x.jsonl"),
        "sample": 30,
        "gp/population": 12,
        "gp/iterations": 40,
        "gp/chain_length": 3,
        "gp/crossover_p": 0.3,
        "gp/mutation_p": 0.7,
        "gp/seed": 5,
        "classic": False,
    }
    panel.form.set_values(chosen)
    again = LPZeroPanel(QSettings(), ViewState())
    qtbot.addWidget(again)
    assert {key: again.form.values()[key] for key in chosen} == chosen
    assert not again.form.file_edit.isHidden()  # the file row shows for an archs file
    assert again.form.spec(None).settings == GPSettings(
        population=12, iterations=40, chain_length=3, crossover_p=0.3, mutation_p=0.7, seed=5
    )


def test_a_proxy_is_named_after_the_words_of_its_formula():
    assert default_proxy_name("mul(abs(log(act)), sqrt(grad))") == "mul-abs-log-act-sqrt-grad"
