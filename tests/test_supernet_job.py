"""Supernet jobs: sandwich training with checkpoints, cancel and resume; scoring with
inherited weights recorded as reproducible predictions."""

from pathlib import Path

import pytest
import torch

from nasstudio.jobs import JobCancelled, JobHandle
from nasstudio.jobs.records import CurvePoint, Predictions, records_in, write_records
from nasstudio.predict.supernet import supernet_score_job
from nasstudio.space import get_space
from nasstudio.store import BLEU_VALID, KNOWN_TASKS
from nasstudio.train.job import checkpoint_dir
from nasstudio.train.supernet import SUPERNET_KIND, VALID_LOSS, supernet_train_job

DEMO = {"kind": "demo"}
# Small batches and few steps: each step is three forward and backward passes.
QUICK = {
    "max_tokens": 256,
    "warmup_steps": 2,
    "eval_every": 2,
    "eval_sentences": 8,
    "checkpoint_every": 2,
}
ARCHS = get_space("tiny-cpu").sample_many(3, seed=5)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """The demo corpus and its vocabulary, written once for the module."""
    return str(tmp_path_factory.mktemp("cache"))


@pytest.fixture
def demo(project):
    project.ensure_task(KNOWN_TASKS["demo"])
    project.add_architectures("demo", ARCHS, origin="test")
    return project


def drain(job, project):
    """Run a job generator to its end, recording what it yields as the runner would:
    (its curve points and predictions, the returned value)."""
    items = []
    while True:
        try:
            item = next(job)
        except StopIteration as stop:
            return items, stop.value
        write_records(project, 1, records_in(item))
        if isinstance(item, CurvePoint):
            items.append(dict(item.values))
        elif isinstance(item, Predictions):
            items.append(item)


def handle(logs=None):
    return JobHandle(1, lambda m: logs.append(m[1]) if logs is not None and m[0] == "log" else None)


def train(project, cache, steps, h=None, **kwargs):
    config = {**QUICK, "max_steps": steps}
    return supernet_train_job(
        h or handle(), project, "demo", DEMO, config, cache_dir=cache, **kwargs
    )


def first_curve_point(job):
    return next(item for item in job if isinstance(item, CurvePoint)).values


def test_training_reports_the_largest_valid_loss_and_checkpoints_beside_the_project(demo, cache):
    reports, result = drain(train(demo, cache, 4), demo)
    assert [r["step"] for r in reports] == [2, 4]
    assert all(r["valid_loss"] is not None and r["train_loss"] > 0 for r in reports)
    assert reports[1]["valid_loss"] < reports[0]["valid_loss"]
    path = Path(result["checkpoint"])
    assert path.is_file() and path.parent == checkpoint_dir(demo)
    assert path.name.startswith("supernet-demo-") and path.suffix == ".pt"
    assert result["step"] == 4
    assert result["best_valid_loss"] == pytest.approx(reports[1]["valid_loss"])


@pytest.fixture(scope="module")
def straight(tmp_path_factory, cache):
    """The weights after 4 steps of a run that was never interrupted."""
    from nasstudio.store import Project

    folder = tmp_path_factory.mktemp("straight")
    with Project(folder / "p.nasproj") as project:
        project.ensure_task(KNOWN_TASKS["demo"])
        _, result = drain(train(project, cache, 4, checkpoint=str(folder / "net.pt")), project)
    return result["checkpoint"]


def same_weights(path_a, path_b):
    a = torch.load(path_a, weights_only=False)["model"]
    b = torch.load(path_b, weights_only=False)["model"]
    return all(torch.equal(a[k], b[k]) for k in a)


def test_a_longer_budget_resumes_the_checkpoint_and_its_step_counter(demo, cache, tmp_path):
    path = str(tmp_path / "split.pt")
    drain(train(demo, cache, 2, checkpoint=path), demo)
    logs = []
    reports, resumed = drain(train(demo, cache, 4, h=handle(logs), checkpoint=path), demo)
    assert any("from step 2" in line for line in logs)
    assert [r["step"] for r in reports] == [4] and resumed["step"] == 4


def test_a_longer_budget_continues_exactly_where_the_shorter_one_stopped(
    demo, cache, tmp_path, straight
):
    path = str(tmp_path / "split.pt")
    drain(train(demo, cache, 2, checkpoint=path), demo)
    drain(train(demo, cache, 4, checkpoint=path), demo)
    assert same_weights(straight, path)


def test_a_cancel_keeps_the_checkpoint_and_the_resumed_run_matches_an_uninterrupted_one(
    demo, cache, tmp_path, straight
):
    path = tmp_path / "cancelled.pt"
    h = handle()
    job = train(demo, cache, 50, h=h, checkpoint=str(path))
    assert first_curve_point(job)["step"] == 2
    h.request_cancel()
    with pytest.raises(JobCancelled):
        next(job)
    assert torch.load(path, weights_only=False)["state"]["step"] == 3
    reports, result = drain(train(demo, cache, 4, checkpoint=str(path)), demo)
    assert [r["step"] for r in reports] == [4] and result["step"] == 4
    # Same data position, same random sub-architectures, same dropout: the same weights.
    assert same_weights(straight, path)


def test_a_checkpoint_of_another_setting_is_refused(demo, cache, tmp_path):
    path = str(tmp_path / "other.pt")
    drain(train(demo, cache, 1, checkpoint=path), demo)
    job = supernet_train_job(
        handle(), demo, "demo", DEMO, {**QUICK, "lr": 0.5}, cache_dir=cache, checkpoint=path
    )
    with pytest.raises(ValueError, match="config"):
        drain(job, demo)


def score(project, cache, checkpoint, ids=None, corpus=DEMO):
    ids = ids or [a.id for a in ARCHS]
    job = supernet_score_job(
        handle(), project, "demo", ids, checkpoint, corpus, cache_dir=cache, bleu_sentences=20
    )
    return drain(job, project)


def test_scores_are_reproducible_and_recorded_as_predictions(demo, cache, straight):
    items, first = score(demo, cache, straight)
    _, second = score(demo, cache, straight)
    assert first == second
    assert [i.rows[0].arch_id for i in items] == [a.id for a in ARCHS]
    losses = [first[a.id][VALID_LOSS] for a in ARCHS]
    assert len(set(losses)) == 3 and all(0 < v < 10 for v in losses)
    predictor = "supernet:net@step4"
    table = demo.table("demo")
    for arch in ARCHS:
        rows = {p.metric: p for p in demo.predictions(arch.id, "demo")}
        assert set(rows) == {VALID_LOSS, BLEU_VALID}
        loss, bleu = rows[VALID_LOSS], rows[BLEU_VALID]
        assert (loss.predictor_kind, loss.predictor) == (SUPERNET_KIND, predictor)
        assert (
            loss.value
            == first[arch.id][VALID_LOSS]
            == table.loc[arch.id, f"pred:valid_loss@{predictor}"]
        )
        assert bleu.value == first[arch.id][BLEU_VALID] and 0 <= bleu.value <= 100
        assert loss.provenance["checkpoint"].endswith("net.pt") and loss.provenance["step"] == 4
        assert loss.provenance["valid_sentences"] == 500
        assert bleu.provenance["sentences"] == 20 and bleu.provenance["decoding"] == "greedy"
        assert bleu.provenance["sacrebleu"].startswith("nrefs:1")


def test_scoring_refuses_a_missing_checkpoint_another_corpus_and_a_misfit(
    demo, cache, straight, tmp_path
):
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        score(demo, cache, str(tmp_path / "none.pt"))
    with pytest.raises(ValueError, match="supernet trained with corpus"):
        score(demo, cache, straight, corpus={"kind": "demo", "seed": 1})
    big = get_space("hat-wmt").sample_many(1, seed=0)
    demo.ensure_task(KNOWN_TASKS["wmt14ende"])
    (big_id,) = demo.add_architectures("wmt14ende", big, origin="test")
    with pytest.raises(ValueError, match=f"architecture {big_id}: .*does not fit"):
        score(demo, cache, straight, ids=[ARCHS[0].id, big_id])
    assert not demo.predictions(ARCHS[0].id)
