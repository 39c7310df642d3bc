"""The llmas evaluation protocol: scores, the paper's baseline figures, LLM-PP evaluation and
the evaluations recorded in the project."""

import math

import numpy as np
import pytest
from scipy import stats

from nasstudio.jobs import JobRunner, JobState
from nasstudio.jobs.async_executor import AsyncExecutor, background_loop
from nasstudio.jobs.records import write_records
from nasstudio.predict.evaluate import (
    SeedScores,
    evaluate_baseline,
    evaluate_predictions,
    evaluate_stored,
    read_seedarchs,
    score,
    seedarchs_tasks,
    stored_predictors,
)
from nasstudio.predict.llm import LLMProfile, default_prompt
from nasstudio.predict.prompt_jobs import evaluate_prompts_job
from nasstudio.space import get_space
from nasstudio.store import KNOWN_TASKS
from nasstudio.store.importers import LLMAS_BASELINES, ImportFormatError
from tests.conftest import require_refdata
from tests.llm_server import FakeLLMServer, reply_by_architecture, write_seedarchs

# The LLM-PP paper's figures for the supernet baselines on WMT'14 En-De: MAE and Kendall tau,
# means over seeds 123, 456 and 789.
PAPER_WMT14ENDE = {
    "HAT": (1.14, 0.71),
    "Supernet (Sandwich)": (1.05, 0.81),
    "Layer-wise MoS": (0.97, 0.56),
    "Neuron-wise MoS": (0.87, 0.79),
}


def test_scores():
    s = score([20.0, 21.0, 22.0, 23.0], [20.5, 21.5, 22.5, 23.5])
    assert (s.n, s.mae, s.kendall_tau, s.spearman_rho) == (4, 0.5, 1.0, 1.0)
    truth, predicted = [1.0, 2.0, 2.0, 3.0, 5.0], [1.0, 3.0, 2.0, 2.0, 4.0]
    s = score(truth, predicted)
    assert s.kendall_tau == pytest.approx(stats.kendalltau(truth, predicted, variant="b")[0])
    assert s.spearman_rho == pytest.approx(stats.spearmanr(truth, predicted)[0])
    assert math.isnan(score([1.0], [2.0]).kendall_tau) and score([1.0], [2.0]).mae == 1.0
    assert math.isnan(score([1.0, 2.0], [3.0, 3.0]).kendall_tau)  # constant: NaN, no warning
    assert score([], []).n == 0
    with pytest.raises(ValueError, match="2 true values but 1 predictions"):
        score([1.0, 2.0], [1.0])


@pytest.fixture(scope="module")
def seedarchs():
    return require_refdata("llmpp", "seedarchs")


def test_the_paper_baseline_figures_are_reproduced(project, seedarchs):
    assert seedarchs_tasks(seedarchs) == ["wmt14ende", "wmt14enfr", "wmt19ende"]
    benchmark = read_seedarchs(seedarchs, "wmt14ende")
    assert [s.seed for s in benchmark.splits] == [123, 456, 789]
    for split in benchmark.splits:
        assert (len(split.train_ids), len(split.test_ids)) == (10, 20)
        assert not set(split.train_ids) & set(split.test_ids)
    assert sorted(benchmark.baselines) == sorted(PAPER_WMT14ENDE)
    # scored from the files, and from the project once they are imported: the same figures
    write_records(project, 0, benchmark.files)
    assert sorted(stored_predictors(project, "wmt14ende")) == sorted(PAPER_WMT14ENDE)
    for name, (mae, tau) in PAPER_WMT14ENDE.items():
        for result in (
            evaluate_baseline(benchmark, name),
            evaluate_stored(project, benchmark, name),
        ):
            assert (round(result.mean("mae"), 2), round(result.mean("kendall_tau"), 2)) == (
                mae,
                tau,
            )
            assert len(result.splits) == 3 and all(s.scores.n == 20 for s in result.splits)
            assert result.std("mae") == pytest.approx(np.std(result.values("mae")))
    # reading again gives the same benchmark, and importing again changes nothing
    assert read_seedarchs(seedarchs, "wmt14ende") == benchmark
    write_records(project, 0, read_seedarchs(seedarchs, "wmt14ende").files)
    assert evaluate_stored(project, benchmark, "HAT").mean("mae") == pytest.approx(1.144, abs=1e-3)
    assert project.count_architectures("wmt14ende") == len(benchmark.known.archs)


def test_missing_predictions_are_counted_not_scored(project, seedarchs):
    benchmark = read_seedarchs(seedarchs, "wmt14enfr")
    truth = {i: 30.0 + k for k, i in enumerate(benchmark.splits[0].test_ids)}
    truth.update({i: 30.0 for s in benchmark.splits for i in s.test_ids if i not in truth})
    first = benchmark.splits[0]
    predictions = {first.seed: {i: truth[i] + 1 for i in first.test_ids[:15]}}
    result = evaluate_predictions(benchmark, truth, predictions, "partial")
    assert result.splits[0].scores.n == 15 and result.splits[0].missing == first.test_ids[15:]
    assert result.splits[0].scores.mae == pytest.approx(1.0)
    assert result.splits[1].scores.n == 0 and len(result.splits[1].missing) == 20
    with pytest.raises(KeyError, match="no predictor 'nope'"):
        evaluate_stored(project, benchmark, "nope")
    with pytest.raises(KeyError, match="carry no 'nope'"):
        evaluate_baseline(benchmark, "nope")


def test_a_bad_folder_is_named(tmp_path):
    with pytest.raises(ImportFormatError, match="expected numbered seed folders"):
        read_seedarchs(tmp_path, "wmt14ende")
    (tmp_path / "123" / "wmt14ende").mkdir(parents=True)
    with pytest.raises(ImportFormatError, match=r"train\.jsonl: missing"):
        read_seedarchs(tmp_path, "wmt14ende")


def test_an_llm_prompt_is_evaluated_seed_by_seed_and_recorded(project, seedarchs, tmp_path):
    runner = JobRunner(project, executors={"async": AsyncExecutor(background_loop())})
    events = []
    runner.subscribe(events.append)
    prompt = default_prompt(KNOWN_TASKS["wmt14ende"])
    try:
        with FakeLLMServer() as server:
            profile = LLMProfile("t", base_url=server.base_url, model="fake", concurrency=8)
            params = dict(folder=str(seedarchs), task="wmt14ende", profile=profile)
            params.update(prompts=[("", prompt)], cache_path=str(tmp_path / "cache.sqlite"))
            job = runner.submit("evaluate", "Evaluate", evaluate_prompts_job, **params)
            *baselines, result = runner.wait(job, timeout=60)
            assert project.job(job).state == JobState.DONE
            assert [b.predictor for b in baselines] == list(LLMAS_BASELINES)
            assert server.requests == 60 and result.usage.requests == 60
            # each request shows its seed's ten train architectures, never a test one
            for body in server.bodies:
                assert body["messages"][1]["content"].count("\nBLEU: ") == 11
            seeds = [
                e.payload
                for e in events
                if e.kind == "partial" and isinstance(e.payload, SeedScores)
            ]
            assert [s.split.seed for s in seeds] == [123, 456, 789]  # as each seed completes
            assert [s.scores for s in result.splits] == [s.split.scores for s in seeds]
            assert all(s.scores.n == 20 and not s.missing for s in result.splits)
            assert result.prompt_version == prompt.version and result.predictor == "fake@t"
            assert 0 < result.mean("mae") < 5 and -1 <= result.mean("kendall_tau") <= 1
            summary = result.as_dict()
            assert summary["mae"]["mean"] == pytest.approx(result.mean("mae"))
            assert [s["seed"] for s in summary["seeds"]] == [123, 456, 789]
            # the folder was imported and the prompt saved; every seed's scores are recorded,
            # but nothing is stored as a project prediction
            assert sorted(stored_predictors(project, "wmt14ende")) == sorted(LLMAS_BASELINES)
            assert project.prompt(prompt.version) is not None
            rows = project.evaluations("wmt14ende", str(seedarchs.resolve()))
            assert len(rows) == 5 * 3 and {r["job_state"] for r in rows} == {"done"}
            mine = [r for r in rows if r["predictor"] == "fake@t"]
            assert [(r["seed"], r["prompt_version"], r["label"]) for r in mine] == [
                (seed, prompt.version, prompt.name) for seed in (123, 456, 789)
            ]
            assert [r["mae"] for r in mine] == [s.scores.mae for s in result.splits]
            assert len(mine[0]["details"]["predictions"]) == 20
            # a second run is served from the cache
            server.reset_counts()
            again = runner.wait(runner.submit("evaluate", "Again", evaluate_prompts_job, **params))
            assert server.requests == 0 and again[-1].usage.cache_hits == 60
            assert again[-1].mean("mae") == result.mean("mae")
            assert len(project.evaluations("wmt14ende")) == 2 * 5 * 3
    finally:
        runner.shutdown()


# Six architectures A-F with measured BLEU, the answers a small model gave for each, and two
# seeds: 1 tests A-D (demonstrations E, F), 2 tests C-F (demonstrations A, B).
SMALL_ARCHS = get_space("hat-wmt").sample_many(6, seed=3)
SMALL_BLEU = [20.0, 22.0, 24.0, 26.0, 21.0, 23.0]
SMALL_ANSWERS = [
    "1. The task is to predict the BLEU score.",  # a list marker: no prediction
    "25",
    "25",
    "The BLEU score is 25.",
    "2) 19.5",  # the list marker is skipped, 19.5 read
    "27",
]
SMALL_SPLITS = {1: ([4, 5], [0, 1, 2, 3]), 2: ([0, 1], [2, 3, 4, 5])}


def evaluate_small_model(project, folder, tmp_path, splits=SMALL_SPLITS):
    write_seedarchs(folder, "wmt14ende", SMALL_ARCHS, SMALL_BLEU, splits)
    runner = JobRunner(project, executors={"async": AsyncExecutor(background_loop())})
    try:
        with FakeLLMServer() as server:
            server.reply = reply_by_architecture(dict(zip(SMALL_ARCHS, SMALL_ANSWERS, strict=True)))
            profile = LLMProfile("t", base_url=server.base_url, model="small", concurrency=2)
            job = runner.submit(
                "evaluate",
                "Evaluate",
                evaluate_prompts_job,
                folder=str(folder),
                task="wmt14ende",
                profile=profile,
                prompts=[("", default_prompt(KNOWN_TASKS["wmt14ende"]))],
                cache_path=str(tmp_path / "cache.sqlite"),
            )
            return runner.wait(job, timeout=60)
    finally:
        runner.shutdown()


def test_each_figure_says_how_many_architectures_it_rests_on(project, tmp_path):
    (result,) = evaluate_small_model(project, tmp_path / "seedarchs", tmp_path)
    first, second = result.splits
    # seed 1: B, C, D predicted 25 against 22, 24, 26; A has no number
    assert (first.scores.n, first.missing) == (3, (SMALL_ARCHS[0].id,))
    assert first.scores.mae == pytest.approx((3 + 1 + 1) / 3)
    assert math.isnan(first.scores.kendall_tau) and first.scores.undefined == "constant predictions"
    # seed 2: C 25, D 25, E 19.5, F 27 against 24, 26, 21, 23. Of the six pairs three agree
    # in order (C-E, D-E, E-F), two disagree (C-F, D-F), one is tied in the predictions (C-D):
    # tau-b = (3 - 2) / sqrt(6 * 5). Ranks: truth C3 D4 E1 F2, predictions C2.5 D2.5 E1 F4.
    assert second.scores.n == 4 and second.scores.mae == pytest.approx((1 + 1 + 1.5 + 4) / 4)
    assert second.scores.kendall_tau == pytest.approx(1 / math.sqrt(30))
    assert second.scores.spearman_rho == pytest.approx(1.5 / math.sqrt(5 * 4.5))
    # the mean of each figure over the seeds where it is defined, and on what it rests
    assert (result.predicted, result.asked) == (7, 8)
    assert result.mean("mae") == pytest.approx((5 / 3 + 1.875) / 2)
    assert result.figure("mae") == "1.77 (0.10)"
    assert result.figure("kendall_tau") == "0.18 (0.00) n=4/8"
    assert result.figure("spearman_rho") == "0.32 (0.00) n=4/8"
    summary = result.as_dict()
    assert (summary["n"], summary["asked"]) == (7, 8)
    assert summary["kendall_tau"]["n"] == 4 and summary["mae"]["n"] == 7
    assert summary["seeds"][0]["undefined"] == "constant predictions"
    # what the project records for the Evaluation tab
    rows = [r for r in project.evaluations("wmt14ende") if r["predictor"] == "small@t"]
    assert [(r["seed"], r["n"], len(r["details"]["missing"])) for r in rows] == [
        (1, 3, 1),
        (2, 4, 0),
    ]
    assert rows[0]["details"]["undefined"] == "constant predictions"
    assert rows[0]["kendall_tau"] is None


def test_a_figure_undefined_on_every_seed_says_why(project, tmp_path):
    (result,) = evaluate_small_model(
        project, tmp_path / "seedarchs", tmp_path, splits={1: SMALL_SPLITS[1]}
    )
    assert result.figure("kendall_tau") == "undefined (constant predictions)"
    assert result.figure("mae") == "1.67 (0.00)"
    assert result.as_dict()["spearman_rho"] == {
        "mean": None,
        "std": None,
        "n": 0,
        "undefined": "constant predictions",
    }
