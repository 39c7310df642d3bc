"""The Search panel: a search started with Run draws its fronts generation by generation and
Cancel stops it with the generations done kept and drawn; a finished search's front is
non-dominated, shown in the table, exported, and drawn again from the store when the project
is reopened; the panel's choices persist.

The predictor is an llmas regressor fitted in the test on a hand-made labelling function (a
few hundred Adam steps at 1e-3 instead of llmas's 5,000 at 1e-5)."""

from __future__ import annotations

import csv
import re

import numpy as np
import pytest
import torch
from PySide6.QtCore import QSettings, Qt

from nasstudio.gui.search_panel import SearchPanel
from nasstudio.gui.search_plot import MAX_FRONTS
from nasstudio.gui.view_state import ViewState
from nasstudio.jobs import JobState
from nasstudio.metrics import efficiency
from nasstudio.predict.distill import DistilledPredictor, FitSettings, distilled_path
from nasstudio.space import get_space
from nasstudio.store import GFLOPS, KNOWN_TASKS

# Small and quick: the panel is tested here, not the predictor.
FAST = FitSettings(
    steps=100, learning_rate=1e-3, hidden_dim=32, hidden_layers=1, seeds=(0,), start_at_mean=True
)
DEMO = KNOWN_TASKS["demo"]
SMALL = {
    "first": "fitted:wide-ffn",
    "second": "",
    "mode": "evolution",
    "constraint": GFLOPS,
    "settings/population": 6,
    "settings/parents": 2,
    "settings/mutations": 2,
    "settings/crossovers": 2,
    "settings/mutation_prob": 0.5,
    "settings/seed": 0,
}
SEARCH_MS = 60_000  # generous: a worker process starts, on a loaded 2-core machine


def wide_ffn(arch) -> float:
    """A hand-made BLEU: wider FFN layers score higher."""
    return 20 + sum(arch.encoder_ffn_dims) / 100 + sum(arch.decoder_ffn_dims) / 50


@pytest.fixture
def project_path(project_path):
    """The fixture project with a fitted predictor stored beside it, where the panel lists
    them."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    space = get_space(DEMO.space)
    archs = space.sample_many(60, seed=1)
    predictor = DistilledPredictor.fit(
        archs, [wide_ffn(a) for a in archs], space, "wide-ffn", "fitted", FAST
    )
    predictor.save(distilled_path(project_path, "wide-ffn"))
    torch.set_num_threads(previous)
    return project_path


def gflops_limit() -> float:
    """The median GFLOPs of the space's samples: half of it is feasible."""
    archs = get_space(DEMO.space).sample_many(40, seed=5)
    values = sorted(efficiency(a, DEMO.vocab_size).gflops for a in archs)
    return round(values[len(values) // 2], 3)


def drawn_generations(panel) -> int:
    """The number of generations the summary under the plot states."""
    match = re.search(r"<b>(\d+)</b> generation", panel.plot.summary.text())
    return int(match.group(1)) if match else 0


def table_ids(window) -> set[str]:
    """The architectures the table shows."""
    model = window.browser.model
    return set(model.ids_at(np.arange(model.rowCount())))


def start_search(window, qtbot, **values) -> int:
    panel = window.search_panel
    panel.form.set_values({**SMALL, **values})
    assert panel.run_button.isEnabled(), panel.problem_label.text()
    qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    return panel.shown_search()


def test_run_draws_each_generation_and_cancel_keeps_them(window, qtbot):
    panel = window.search_panel
    limit = gflops_limit()
    job_id = start_search(
        window, qtbot, **{"settings/iterations": 10_000, f"limit/{GFLOPS}": limit}
    )
    assert job_id in panel.search_ids()
    seen = []  # (generations stated, fronts drawn) at each look

    def updated_three_times() -> bool:
        seen.append((drawn_generations(panel), panel.plot.drawn_fronts()))
        return len({generations for generations, _ in seen if generations}) >= 3

    qtbot.waitUntil(updated_three_times, timeout=SEARCH_MS)
    stated = [generations for generations, _ in seen if generations]
    assert stated == sorted(stated)  # the view only ever grows, one refresh after another
    assert all(drawn == min(generations, MAX_FRONTS) for generations, drawn in seen)
    assert panel.cancel_button.isEnabled()
    qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.jobs.state(job_id) == JobState.CANCELLED, timeout=SEARCH_MS)

    stored = window.project.search_generations(job_id)
    assert 3 <= len(stored) < 10_000
    assert [g.generation for g in stored] == list(range(len(stored)))
    # The generations done are still drawn: the summary, the fronts, the best-score curve.
    assert drawn_generations(panel) == len(stored)
    assert panel.plot.drawn_fronts() == min(len(stored), MAX_FRONTS)
    generations, best = panel.plot.best_points(stored[0].scorer)
    assert generations.tolist() == [g.generation for g in stored]
    assert best.tolist() == pytest.approx([max(m.score for m in g.members) for g in stored])
    assert "fitted:wide-ffn" in panel.plot.summary.text()  # the time spent in the predictor
    assert panel.searches.topLevelItem(0).text(1) == "cancelled"
    assert not panel.cancel_button.isEnabled()
    # Older fronts fade; every front drawn is within the constraint.
    assert panel.plot.front_points(0)[2] == 1.0 > panel.plot.front_points(1)[2]
    for age in range(panel.plot.drawn_fronts()):
        costs, _, _ = panel.plot.front_points(age)
        assert costs.size and (costs <= limit).all()


def test_finished_search_front_is_shown_exported_and_drawn_again(window, qtbot, tmp_path):
    panel = window.search_panel
    job_id = start_search(
        window, qtbot, **{"settings/iterations": 3, f"limit/{GFLOPS}": gflops_limit()}
    )
    qtbot.waitUntil(lambda: window.jobs.state(job_id) == JobState.DONE, timeout=SEARCH_MS)
    assert panel.plot.drawn_fronts() == drawn_generations(panel) == 3
    newest = panel.plot.generations()[-1]
    front = set(newest.front)
    # Non-dominated, checked by brute force: no member has a lower cost and a higher score.
    for member in (m for m in newest.members if m.arch.id in front):
        cost, score = member.metrics[GFLOPS], member.score
        assert not any(
            m.metrics[GFLOPS] <= cost
            and m.score >= score
            and (m.metrics[GFLOPS], m.score) != (cost, score)
            for m in newest.members
        )

    # Show in table: the front was added to the task, and is selected there.
    qtbot.waitUntil(lambda: front <= table_ids(window), timeout=10_000)
    qtbot.mouseClick(panel.show_button, Qt.MouseButton.LeftButton)
    assert set(window.view.selection) == front

    target = tmp_path / "front.csv"
    export = panel.export_chosen("csv", target)
    qtbot.waitUntil(lambda: window.jobs.state(export) == JobState.DONE, timeout=10_000)
    with target.open(newline="") as handle:
        assert {row["id"] for row in csv.DictReader(handle)} == front

    # Reopened, the project lists the search; selecting it draws its stored generations.
    assert window.open_project(window.project.path)
    panel = window.search_panel
    assert panel.search_ids() == [job_id] and panel.shown_search() is None
    assert panel.searches.topLevelItem(0).text(2) == "3"
    panel.show_search(job_id)
    assert panel.plot.drawn_fronts() == 3
    assert [g.front for g in panel.plot.generations()][-1] == newest.front


def test_choices_persist_and_run_says_what_is_missing(qtbot):
    panel = SearchPanel(QSettings(), ViewState())
    qtbot.addWidget(panel)
    assert not panel.run_button.isEnabled()
    assert "Open a project" in panel.problem_label.text()
    chosen = {"constraint": GFLOPS, f"limit/{GFLOPS}": 1.25, "settings/population": 40}
    chosen.update({"settings/iterations": 12, "mode": "nsga2", "switch_at": 7})
    panel.form.set_values(chosen)
    again = SearchPanel(QSettings(), ViewState())
    qtbot.addWidget(again)
    assert {key: again.form.values()[key] for key in chosen} == chosen
    # A GFLOPs limit shows its field; the latency predictor's stays hidden.
    assert not again.form.limit_stack.isHidden()
    assert again.form.latency_combo.isHidden()
