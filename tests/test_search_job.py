"""The search job: every generation recorded as it is done, under its constraint, reproducible,
HS-NAS switching predictor at the set iteration, a cancel keeping the generations done.

Predictors are llmas regressors fitted in the test on hand-made labelling functions (a few
hundred Adam steps at 1e-3 from the labels' mean instead of llmas's 5,000 at 1e-5), searches
are small (population 8, a handful of iterations)."""

import csv
import functools
import threading

import numpy as np
import pytest
import torch

from nasstudio.jobs import JobHandle, JobRunner, JobState
from nasstudio.jobs.records import SearchGeneration, records_in, write_records
from nasstudio.metrics import efficiency
from nasstudio.predict.distill import DistilledPredictor, FitSettings, distilled_path
from nasstudio.predict.latency import fit_latency_predictor, latency_predictor_path
from nasstudio.predict.search_jobs import PredictorSpec, SearchSpec, search_job
from nasstudio.search.evolution import EvolutionSettings
from nasstudio.space import average_features, get_space
from nasstudio.store import GFLOPS, KNOWN_TASKS
from nasstudio.store.importers import HAT_LATENCY_COLUMNS, read_hat_latency

FAST = FitSettings(steps=150, learning_rate=1e-3, hidden_dim=64, seeds=(0,), start_at_mean=True)
SMALL = EvolutionSettings(
    iterations=4, population=8, parents=3, mutations=3, crossovers=2, mutation_prob=0.5
)
DEMO = KNOWN_TASKS["demo"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def deeper_is_better(arch):
    """A hand-made BLEU: more and wider FFN layers score higher."""
    return 20 + sum(arch.encoder_ffn_dims) / 100 + sum(arch.decoder_ffn_dims) / 50


def smaller_is_better(arch):
    return 30 - arch.encoder_embed_dim / 20


@functools.cache
def fitted(name, labels, space):
    archs = get_space(space).sample_many(60, seed=1)
    return DistilledPredictor.fit(
        archs, [labels(a) for a in archs], get_space(space), name, "fitted", FAST
    )


def store_fitted(project, name, labels, space="tiny-cpu"):
    """A predictor fitted on ``labels`` of sampled architectures, stored beside ``project``."""
    fitted(name, labels, space).save(distilled_path(project.path, name))
    return PredictorSpec("fitted", name)


@pytest.fixture
def demo(project):
    project.ensure_task(DEMO)
    return project


def run(project, spec, task="demo", job_id=1, progress=None):
    """Run the job to its end, recording what it yields as the runner would; the generations
    it yielded and its result. Progress messages go to the list ``progress``."""

    def send(message):
        if progress is not None and message[0] == "progress":
            progress.append(message[2])

    job = search_job(JobHandle(job_id, send), project, task, spec.as_params())
    generations = []
    while True:
        try:
            item = next(job)
        except StopIteration as stop:
            return generations, stop.value
        write_records(project, job_id, records_in(item))
        if isinstance(item, SearchGeneration):
            generations.append(item)


def gflops_limit(space="tiny-cpu", vocab=DEMO.vocab_size):
    """The median GFLOPs of sampled architectures: about half of them satisfy it."""
    archs = get_space(space).sample_many(40, seed=9)
    return float(np.median([efficiency(a, vocab).gflops for a in archs]))


def test_every_recorded_architecture_satisfies_the_gflops_limit_and_the_front_is_added(demo):
    limit = gflops_limit()
    spec = SearchSpec(
        (store_fitted(demo, "ffn", deeper_is_better),),
        constraint_metric=GFLOPS,
        constraint_limit=limit,
        settings=SMALL,
    )
    _, result = run(demo, spec)
    stored = demo.search_generations(1)
    assert [g.generation for g in stored] == [0, 1, 2, 3]
    for generation in stored:
        assert len(generation.members) == 8 and generation.constraint == GFLOPS
        for member in generation.members:
            assert efficiency(member.arch, DEMO.vocab_size).gflops <= limit
    # Ranked by the hand-made function the predictor learned: the best is among the best.
    last = stored[-1]
    truth = [deeper_is_better(m.arch) for m in last.members]
    assert truth[0] >= sorted(truth)[len(truth) // 2]
    assert [m.score for m in last.members] == sorted((m.score for m in last.members), reverse=True)
    assert result["best_id"] == last.members[0].arch.id and result["generations"] == 4
    table = demo.table("demo")
    assert set(last.front) <= set(table.index[table["origin"] == "search #1"])
    assert table.loc[result["best_id"], "pred:bleu_valid@fitted:ffn"] == pytest.approx(
        result["best_score"]
    )


def test_a_seeded_search_is_reproducible_and_another_seed_differs(demo):
    spec = SearchSpec((store_fitted(demo, "ffn", deeper_is_better),), settings=SMALL)
    first, _ = run(demo, spec, job_id=1)
    again, _ = run(demo, spec, job_id=2)
    other_seed = SearchSpec(
        spec.predictors, settings=EvolutionSettings(**{**vars(SMALL), "seed": 1})
    )
    run(demo, other_seed, job_id=3)

    def ranked(job_id):
        return [[(m.arch.id, m.score) for m in g.members] for g in demo.search_generations(job_id)]

    assert ranked(1) == ranked(2)
    assert ranked(1) != ranked(3)
    assert [g.front for g in first] == [g.front for g in again]


def test_hs_nas_ranks_with_the_first_predictor_before_the_switch_and_the_second_after(demo):
    cheap = store_fitted(demo, "ffn", deeper_is_better)
    costly = store_fitted(demo, "small", smaller_is_better)
    spec = SearchSpec((cheap, costly), switch_at=2, settings=SMALL)
    progress = []
    generations, result = run(demo, spec, progress=progress)
    scorers = [g.scorer for g in demo.search_generations(1)]
    assert scorers == ["fitted:ffn", "fitted:ffn", "fitted:small", "fitted:small"]
    assert [g.scorer for g in generations] == scorers
    best = generations[2].members[0].score
    assert f"generation 3/4 (fitted:small), best {best:.2f}" in progress
    assert set(result["seconds"]) == {"fitted:ffn", "fitted:small"}
    by_scorer = {s: sum(g.seconds for g in generations if g.scorer == s) for s in scorers}
    assert result["seconds"] == pytest.approx(by_scorer)
    # After the switch the population is ranked by the second function.
    last = generations[-1].members
    assert smaller_is_better(last[0].arch) >= smaller_is_better(last[-1].arch)


def non_dominated(points):
    """Brute force: the ids whose (gflops, score) no other point beats in one and ties in both."""

    def beaten(p):
        return any(q[0] <= p[0] and q[1] >= p[1] and q != p for q in points.values())

    return {arch_id for arch_id, p in points.items() if not beaten(p)}


def test_nsga2_records_reproducible_fronts_of_score_against_gflops_within_the_limit(demo):
    limit = gflops_limit()
    spec = SearchSpec(
        (store_fitted(demo, "ffn", deeper_is_better),),
        constraint_metric=GFLOPS,
        constraint_limit=limit,
        settings=SMALL,
        mode="nsga2",
    )
    generations, _ = run(demo, spec, job_id=1)
    run(demo, spec, job_id=2)
    stored = demo.search_generations(1)
    assert [g.generation for g in stored] == list(range(len(generations))) and len(stored) >= 2
    for generation in stored:
        points = {
            m.arch.id: (efficiency(m.arch, DEMO.vocab_size).gflops, m.score)
            for m in generation.members
        }
        assert all(gflops <= limit for gflops, _ in points.values())
        assert set(generation.front) == non_dominated(points)
    assert [g.members for g in stored] == [g.members for g in demo.search_generations(2)]


def write_latency_csv(path, archs):
    """A HAT latency table of a hand-made latency: 20 ms per decoder layer plus width."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HAT_LATENCY_COLUMNS)
        for arch in archs:
            encoder_ms = 2.0 + arch.encoder_embed_dim / 320
            decoder_ms = 20.0 * arch.decoder_layers + arch.decoder_embed_dim / 64
            writer.writerow([*average_features(arch), encoder_ms, decoder_ms, 0.1, 0.1])


def test_a_latency_constraint_holds_for_the_stored_predictors_latency(project, tmp_path):
    task = KNOWN_TASKS["wmt14ende"]
    project.ensure_task(task)
    space = get_space("hat-wmt")
    table = tmp_path / "wmt14ende_gpu_toy_all.csv"
    write_latency_csv(table, space.sample_many(80, seed=2))
    latency = fit_latency_predictor("toy", [read_hat_latency(table)], steps=50, learning_rate=1e-3)
    latency.save(latency_predictor_path(project.path, "toy"))
    predicted = latency.predict_ms(
        np.stack([average_features(a) for a in space.sample_many(40, 3)])
    )
    limit = float(np.median(predicted))
    spec = SearchSpec(
        (store_fitted(project, "wide", deeper_is_better, "hat-wmt"),),
        constraint_metric="latency_ms",
        constraint_limit=limit,
        latency_predictor="toy",
        settings=SMALL,
    )
    run(project, spec, task="wmt14ende")
    for generation in project.search_generations(1):
        assert generation.constraint == "latency_ms@gpu_toy"
        archs = [m.arch for m in generation.members]
        ms = latency.predict_ms(np.stack([average_features(a) for a in archs]))
        assert (ms <= limit).all()
        assert [m.metrics["latency_ms@gpu_toy"] for m in generation.members] == pytest.approx(ms)
    # The front joins the task with its predicted latency, a column of the table.
    table = project.table("wmt14ende")
    for member in generation.members:
        if member.arch.id in generation.front:
            predicted = table.loc[member.arch.id, "pred:latency_ms@gpu_toy@toy"]
            assert predicted == pytest.approx(member.metrics["latency_ms@gpu_toy"])


def test_a_cancel_keeps_the_generations_done_and_ends_the_job_cancelled(demo):
    spec = SearchSpec(
        (store_fitted(demo, "ffn", deeper_is_better),),
        settings=EvolutionSettings(**{**vars(SMALL), "iterations": 30}),
    )
    runner = JobRunner(demo.path)
    seen, ended = [], threading.Event()

    def listen(event):
        if event.kind == "partial" and isinstance(event.payload, SearchGeneration):
            seen.append(event.payload.generation)
            if len(seen) == 2:
                runner.cancel(event.job_id)
        if event.state.finished:
            ended.set()

    runner.subscribe(listen)
    job_id = runner.submit(
        "search", "search", search_job, executor="thread", task="demo", spec=spec.as_params()
    )
    assert ended.wait(120)
    runner.shutdown()
    assert demo.job(job_id).state == JobState.CANCELLED
    stored = [g.generation for g in demo.search_generations(job_id)]
    assert stored == seen == list(range(len(seen)))
    assert 2 <= len(stored) < 30
    assert demo.searches()[0]["generations"] == len(stored)
    # The whole spec is stored with the job, so the search can be run again.
    assert SearchSpec.from_params(demo.job(job_id).params["spec"]) == spec


def test_searches_lists_each_search_with_its_last_best(demo):
    spec = SearchSpec((store_fitted(demo, "ffn", deeper_is_better),), settings=SMALL)
    generations, result = run(demo, spec, job_id=7)
    (row,) = demo.searches()
    assert (row["job_id"], row["task"], row["generations"]) == (7, "demo", 4)
    assert (row["best_id"], row["best_score"]) == (result["best_id"], result["best_score"])
    assert row["scorer"] == "fitted:ffn" and row["score_label"] == "BLEU (fitted:ffn)"
    assert row["seconds"] == pytest.approx(sum(g.seconds for g in generations))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"predictors": ()}, "one predictor, or two"),
        ({"mode": "random"}, "search mode 'random'"),
        ({"constraint_metric": "energy", "constraint_limit": 1.0}, "constraint 'energy'"),
        ({"constraint_metric": GFLOPS}, "needs a limit"),
        ({"constraint_metric": "latency_ms", "constraint_limit": 100.0}, "latency predictor"),
        ({"switch_at": 4}, "switch_at must be between 1 and 3"),
        ({"mode": "nsga2"}, "NSGA-II ranks with one predictor"),
    ],
)
def test_a_spec_that_cannot_run_is_refused_naming_what_is_wrong(demo, change, message):
    two = (PredictorSpec("fitted", "a"), PredictorSpec("fitted", "b"))
    spec = SearchSpec(**{"predictors": two, "switch_at": 2, "settings": SMALL, **change})
    with pytest.raises(ValueError, match=message):
        run(demo, spec)


def test_a_missing_stored_predictor_is_named(demo):
    with pytest.raises(ValueError, match="'nowhere'"):
        run(demo, SearchSpec((PredictorSpec("distilled", "nowhere"),), settings=SMALL))


@pytest.fixture(scope="module")
def supernet(tmp_path_factory):
    """A demo supernet trained for 2 steps, and the cache of its corpus."""
    from nasstudio.store import Project
    from nasstudio.train.supernet import supernet_train_job

    folder = tmp_path_factory.mktemp("supernet")
    quick = {"max_tokens": 256, "warmup_steps": 1, "eval_every": 2, "eval_sentences": 8}
    with Project(folder / "p.nasproj") as project:
        project.ensure_task(DEMO)
        job = supernet_train_job(
            JobHandle(1, lambda m: None),
            project,
            "demo",
            {"kind": "demo"},
            {**quick, "max_steps": 2, "checkpoint_every": 2},
            cache_dir=str(folder / "cache"),
            checkpoint=str(folder / "net.pt"),
        )
        for _ in job:
            pass
    return str(folder / "net.pt"), str(folder / "cache")


def test_hs_nas_hands_over_to_the_supernet_whose_loss_ranks_the_rest(demo, supernet):
    checkpoint, cache = supernet
    options = {"corpus": {"kind": "demo"}, "cache_dir": cache}
    spec = SearchSpec(
        (
            store_fitted(demo, "ffn", deeper_is_better),
            PredictorSpec("supernet", checkpoint, options),
        ),
        switch_at=1,
        settings=EvolutionSettings(
            iterations=2, population=4, parents=2, mutations=1, crossovers=1
        ),
    )
    generations, result = run(demo, spec)
    supernet_name = "supernet:net@step2"
    assert [g.scorer for g in generations] == ["fitted:ffn", supernet_name]
    assert generations[1].score_label == f"-valid loss ({supernet_name})"
    table = demo.table("demo")
    for member in generations[1].members:
        if member.arch.id in generations[1].front:
            loss = table.loc[member.arch.id, f"pred:valid_loss@{supernet_name}"]
            assert member.score == pytest.approx(-loss) and 0 < loss < 20
    assert set(result["seconds"]) == {"fitted:ffn", supernet_name}
    assert f"pred:bleu_valid@{supernet_name}" not in table  # the loss only: no greedy BLEU


def test_a_version_3_project_is_upgraded_keeping_its_data_and_then_records_searches(tmp_path):
    import sqlite3

    from nasstudio.store import Project
    from nasstudio.store.schema import APPLICATION_ID, MIGRATIONS

    path = tmp_path / "v3.nasproj"
    conn = sqlite3.connect(path)
    for step in MIGRATIONS[:3]:
        conn.executescript(step)
    conn.execute("INSERT INTO tasks VALUES ('demo', 256, 'tiny-cpu', '')")
    conn.execute(
        "INSERT INTO jobs (kind, title, state, created_at) VALUES ('train', 'Train x', 'done', 1)"
    )
    conn.execute("PRAGMA user_version = 3")
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.commit()
    conn.close()
    with Project(path) as project:
        assert [t.name for t in project.tasks()] == ["demo"]
        assert [j.title for j in project.jobs()] == ["Train x"]
        assert project.searches() == [] and project.search_generations(1) == []
        spec = SearchSpec((store_fitted(project, "ffn", deeper_is_better),), settings=SMALL)
        run(project, spec, job_id=2)
        assert [(r["job_id"], r["generations"]) for r in project.searches()] == [(2, 4)]
