"""The distillation job: a fitted predictor on measured BLEU, stored, recorded as a column and
scored on seed architectures as LLM-PP is."""

import numpy as np
import pytest
import torch
from scipy.stats import kendalltau

from nasstudio.jobs import JobRunner, JobState
from nasstudio.predict.distill import FitSettings, load_distilled, stored_distilled
from nasstudio.predict.distill_jobs import distill_job
from nasstudio.space import get_space
from nasstudio.store import BLEU_VALID, KNOWN_TASKS, Measurement
from tests.llm_server import write_seedarchs

# A fast test setting instead of llmas's 5,000 steps at 1e-5 of 400-unit layers: a smaller
# network learns these smooth functions as well, in a few seconds on a busy machine.
FAST = FitSettings(
    steps=400,
    batch_size=64,
    learning_rate=3e-3,
    hidden_dim=64,
    hidden_layers=2,
    seeds=(0, 1),
    start_at_mean=True,
)
TASK = "wmt14ende"


def formula_bleu(arch) -> float:
    """The measured BLEU of these tests: bigger embeddings, deeper decoders, wider FFNs score
    higher."""
    return (
        18.0
        + 4.0 * arch.encoder_embed_dim / 640
        + 3.0 * arch.decoder_embed_dim / 640
        + 0.8 * arch.decoder_layers
        + 1.0 * float(np.mean(arch.encoder_ffn_dims)) / 3072
    )


@pytest.fixture
def measured(project):
    task = project.ensure_task(KNOWN_TASKS[TASK])
    archs = get_space(task.space).sample_many(400, seed=3)
    project.add_architectures(TASK, archs, origin="test")
    project.add_measurements(
        Measurement(a.id, TASK, BLEU_VALID, formula_bleu(a), "hand") for a in archs
    )
    return project, archs


def test_measured_bleu_gives_a_fitted_predictor_that_ranks_as_the_formula(measured, tmp_path):
    project, archs = measured
    seed_archs = get_space("hat-wmt").sample_many(12, seed=99)
    seed_bleu = [formula_bleu(a) for a in seed_archs]
    splits = {1: (range(0, 4), range(4, 12)), 2: (range(8, 12), range(0, 8))}
    write_seedarchs(tmp_path / "seedarchs", TASK, seed_archs, seed_bleu, splits)

    runner = JobRunner(project)
    threads = torch.get_num_threads()  # the job sets 1 thread: here, in this process
    job = runner.submit(
        "distill",
        "Distil",
        distill_job,
        executor="thread",  # the CLI test runs it in a worker process
        task=TASK,
        labels_column=BLEU_VALID,
        name="formula",
        settings=FAST,
        seedarchs=str(tmp_path / "seedarchs"),
    )
    summary = runner.wait(job, timeout=120)
    runner.shutdown()
    torch.set_num_threads(threads)
    assert project.job(job).state == JobState.DONE, project.job(job).error

    column = f"pred:{BLEU_VALID}@fitted:formula"
    assert (summary["kind"], summary["column"], summary["fitted_on"]) == ("fitted", column, 360)
    assert summary["held_out"]["n"] == 40 and summary["held_out"]["kendall_tau"] >= 0.85

    table = project.table(TASK)
    predicted = table[column]
    assert predicted.notna().sum() == 400 + 12  # the task's and the seed architectures
    truth = [formula_bleu(a) for a in archs]
    assert kendalltau(predicted[[a.id for a in archs]], truth).statistic >= 0.9

    rows = [r for r in project.evaluations(TASK) if r["predictor"] == "fitted:formula"]
    assert sorted(r["seed"] for r in rows) == [1, 2]
    for row in rows:
        test = [seed_archs[i] for i in splits[row["seed"]][1]]
        expected = kendalltau([formula_bleu(a) for a in test], predicted[[a.id for a in test]])
        assert row["n"] == 8 and row["kendall_tau"] == pytest.approx(expected.statistic)

    (stored,) = stored_distilled(project.path)
    assert (stored.stored_name, stored.kind) == ("formula", "fitted")
    assert stored.provenance["labels"] == BLEU_VALID
    assert stored.evaluation["held_out"]["kendall_tau"] == summary["held_out"]["kendall_tau"]
    assert stored.evaluation["seedarchs"]["kendall_tau"]["mean"] == pytest.approx(
        np.mean([r["kendall_tau"] for r in rows])
    )
    reloaded, _ = load_distilled(project.path, "formula").predict_values(archs[:5])
    np.testing.assert_allclose(reloaded, predicted[[a.id for a in archs[:5]]], rtol=1e-6)
