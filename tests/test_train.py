"""Training: loss falls and BLEU rises on the demo corpus and on Multi30k, resume after a kill,
cancel keeps the checkpoint, results recorded with provenance, schedules, BLEU."""

from __future__ import annotations

import math
import subprocess
import sys
import time

import pytest
import torch

from nasstudio.jobs import JobRunner, JobState
from nasstudio.jobs.records import CurvePoint
from nasstudio.space import Architecture
from nasstudio.store import BLEU_TEST, BLEU_VALID, KNOWN_TASKS, Project, Task
from nasstudio.store.defaults import add_demo
from nasstudio.train.bleu import corpus_bleu
from nasstudio.train.config import TrainConfig, fit_warmup
from nasstudio.train.job import checkpoint_dir, train_job
from nasstudio.train.result_task import result_task_name
from nasstudio.train.trainer import learning_rate_factor
from tests.conftest import require_refdata

# A small architecture of the tiny-cpu space: trains in seconds on two cores.
TINY = Architecture(
    encoder_embed_dim=64,
    decoder_embed_dim=64,
    encoder_ffn_dims=(128,),
    encoder_heads=(4,),
    decoder_ffn_dims=(128,),
    decoder_heads=(4,),
    decoder_cross_heads=(4,),
    decoder_arbitrary_attn=(-1,),
    qkv_dim=128,
)
QUICK = {
    "max_steps": 60,
    "max_tokens": 2048,
    "lr": 3e-3,
    "warmup_steps": 20,
    "eval_every": 20,
    "eval_sentences": 40,
    "beam": 1,
    "checkpoint_every": 20,
}


@pytest.fixture(autouse=True)
def one_thread():
    """Two threads on a loaded 2-core machine are several times slower than one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def demo_project(tmp_path):
    project = Project(tmp_path / "train.nasproj")
    add_demo(project, 3)
    project.add_architectures("demo", [TINY], origin="test")
    yield project
    project.close()


def run_job(project, messages=None, **params):
    """Run a training job; its state and curve points (and progress messages into
    ``messages``)."""
    runner = JobRunner(project)
    reports = []

    def on_event(event):
        if isinstance(event.payload, CurvePoint):
            reports.append(event.payload.values)
        elif messages is not None and event.kind == "progress":
            messages.append(event.message)

    runner.subscribe(on_event)
    job_id = runner.submit("train", "test", train_job, **params)
    runner.wait(job_id)
    runner.shutdown()
    return job_id, runner.state(job_id), reports


def test_demo_training_lowers_loss_raises_bleu_and_records_it(demo_project, tmp_path):
    messages = []
    job_id, state, reports = run_job(
        demo_project,
        messages,
        task="demo",
        arch_id=TINY.id,
        corpus={"kind": "demo"},
        config={**QUICK, "max_steps": 200, "eval_every": 50},
        cache_dir=str(tmp_path / "cache"),
    )
    assert state == JobState.DONE, demo_project.job(job_id).error
    evaluated = [r for r in reports if r["valid_loss"] is not None]
    assert evaluated[-1]["valid_loss"] < evaluated[0]["valid_loss"]
    assert evaluated[-1]["valid_bleu"] > evaluated[0]["valid_bleu"]
    recorded = {m.metric: m for m in demo_project.measurements(TINY.id, "demo")}
    assert recorded[BLEU_VALID].value > 10 and recorded[BLEU_TEST].value > 10
    provenance = recorded[BLEU_VALID].provenance
    assert provenance["steps"] == 200 and provenance["seed"] == 1
    assert provenance["sacrebleu"].startswith("nrefs:1|case:mixed")
    assert "synthetic" in provenance["corpus"] and provenance["vocab"].startswith("spm:bpe")
    assert recorded[BLEU_VALID].source == "trained"
    assert recorded[BLEU_VALID].device == "" and provenance["device"].startswith("cpu")
    assert demo_project.table("demo").loc[TINY.id, BLEU_VALID] == recorded[BLEU_VALID].value
    # The final decoding reports its progress, batch by batch (500 sentences per split).
    decoding = [m for m in messages if m.startswith("decoding test")]
    assert decoding[0] == "decoding test 0/500" and decoding[-1] == "decoding test 500/500"
    assert len(decoding) > 2 and "decoding valid 500/500" in messages
    assert messages[-1].endswith("(task demo)")


def test_multi30k_subset_trains_into_its_own_task(demo_project, tmp_path):
    folder = require_refdata("multi30k")
    job_id, state, reports = run_job(
        demo_project,
        task="demo",
        arch_id=TINY.id,
        corpus={"kind": "multi30k", "path": str(folder), "src": "en", "tgt": "de"},
        config={**QUICK, "max_steps": 80, "eval_every": 40, "eval_sentences": 30},
        vocab_size=2000,
        cache_dir=str(tmp_path / "cache"),
    )
    assert state == JobState.DONE, demo_project.job(job_id).error
    evaluated = [r for r in reports if r["valid_loss"] is not None]
    assert evaluated[-1]["valid_loss"] < evaluated[0]["valid_loss"]
    task = demo_project.task("multi30k-ende")
    assert task is not None and task.vocab_size == 2000
    recorded = {m.metric: m.value for m in demo_project.measurements(TINY.id, "multi30k-ende")}
    assert recorded[BLEU_VALID] > 0 and recorded[BLEU_TEST] > 0


_TRAIN_FOREVER = """
import sys, torch
from nasstudio.jobs import JobRunner
from nasstudio.store import Project
from nasstudio.train.job import train_job
torch.set_num_threads(1)
project = Project(sys.argv[1])
runner = JobRunner(project)
config = dict(max_steps=10**6, max_tokens=2048, lr=3e-3, warmup_steps=20, eval_every=10**6,
              checkpoint_every=20)
job = runner.submit("train", "forever", train_job, task="demo",
                    arch_id=sys.argv[2], corpus={"kind": "demo"}, config=config,
                    cache_dir=sys.argv[3])
runner.wait(job)
"""


def test_resume_after_a_kill_continues_the_step_counter(demo_project, tmp_path):
    cache = str(tmp_path / "cache")
    process = subprocess.Popen(
        [sys.executable, "-c", _TRAIN_FOREVER, str(demo_project.path), TINY.id, cache]
    )
    try:
        deadline = time.monotonic() + 120
        checkpoints = []
        while not checkpoints and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
            checkpoints = list(checkpoint_dir(demo_project).glob(f"{TINY.id}-*.pt"))
        assert checkpoints, "no checkpoint within 120 s"
    finally:
        process.kill()  # SIGKILL: no clean-up runs in the training process
        process.wait()
    killed_at = torch.load(checkpoints[0], weights_only=False)["state"]["step"]
    assert killed_at >= 20 and killed_at % 20 == 0
    config = {**QUICK, "max_steps": killed_at + 20, "max_tokens": 2048, "eval_every": 10**6}
    _, state, reports = run_job(
        demo_project,
        task="demo",
        arch_id=TINY.id,
        corpus={"kind": "demo"},
        config=config,
        cache_dir=cache,
    )
    assert state == JobState.DONE
    assert reports[0]["step"] == killed_at + 10 and reports[-1]["step"] == killed_at + 20
    assert torch.load(checkpoints[0], weights_only=False)["state"]["step"] == killed_at + 20


def test_cancelled_run_keeps_its_checkpoint(demo_project, tmp_path):
    runner = JobRunner(demo_project)
    steps = []

    def on_event(event):
        if isinstance(event.payload, CurvePoint):
            steps.append(event.payload.step)
            if len(steps) == 2:
                runner.cancel(event.job_id)

    runner.subscribe(on_event)
    job_id = runner.submit(
        "train",
        "cancel me",
        train_job,
        task="demo",
        arch_id=TINY.id,
        corpus={"kind": "demo"},
        config={**QUICK, "max_steps": 100_000, "eval_every": 10_000},
        cache_dir=str(tmp_path / "cache"),
    )
    runner.wait(job_id)
    runner.shutdown()
    assert runner.state(job_id) == JobState.CANCELLED
    (checkpoint,) = checkpoint_dir(demo_project).glob(f"{TINY.id}-*.pt")
    assert torch.load(checkpoint, weights_only=False)["state"]["step"] >= 20
    assert not [m for m in demo_project.measurements(TINY.id, "demo") if m.source == "trained"]


def test_bad_corpus_fails_the_job_with_a_clear_error(demo_project, tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    for split in ("train", "valid", "test"):
        (folder / f"{split}.en").write_text("a b\nc d\n")
        (folder / f"{split}.de").write_text("x y\n")
    job_id, state, _ = run_job(
        demo_project,
        task="demo",
        arch_id=TINY.id,
        corpus={"kind": "folder", "path": str(folder), "src": "en", "tgt": "de"},
        config=QUICK,
        cache_dir=str(tmp_path / "cache"),
    )
    assert state == JobState.FAILED
    error = demo_project.job(job_id).error
    assert "train.en" in error and "train.de" in error


def test_results_go_to_a_task_that_agrees_in_space_and_vocabulary(project):
    """Worked out by hand from the rule: the corpus' task when absent or in agreement, else
    its name plus the space that differs, plus the vocabulary size when that differs."""
    demo, wmt = KNOWN_TASKS["demo"], KNOWN_TASKS["wmt14ende"]
    for task in (demo, wmt):
        project.ensure_task(task)
    corpus = {"kind": "demo"}
    assert result_task_name(project, demo, corpus) == "demo"
    assert result_task_name(project, demo, corpus, 512) == "demo-v512"
    assert result_task_name(project, wmt, corpus) == "demo-hat-wmt"  # the demo's 256 subwords
    assert result_task_name(project, wmt, corpus, 512) == "demo-hat-wmt-v512"
    multi30k = {"kind": "multi30k", "path": "/data/multi30k", "src": "en", "tgt": "de"}
    assert result_task_name(project, wmt, multi30k) == "multi30k-ende"  # new: any setting
    project.ensure_task(Task("demo-hat-wmt", 256, "hat-wmt"))
    assert result_task_name(project, wmt, corpus) == "demo-hat-wmt"  # once made, it agrees
    project.ensure_task(Task("demo-v512", 300, "tiny-cpu"))  # taken by another vocabulary
    assert result_task_name(project, demo, corpus, 512) == "demo-tiny-cpu-v512"


def test_a_warmup_longer_than_the_step_budget_is_shortened_to_a_tenth_of_it():
    assert fit_warmup(TrainConfig(max_steps=100, warmup_steps=200)).warmup_steps == 10
    assert fit_warmup(TrainConfig(max_steps=199, warmup_steps=200)).warmup_steps == 19
    assert fit_warmup(TrainConfig(max_steps=5, warmup_steps=200)).warmup_steps == 1
    assert fit_warmup(TrainConfig(max_steps=200, warmup_steps=200)).warmup_steps == 200
    assert fit_warmup(TrainConfig(max_steps=600, warmup_steps=200)).warmup_steps == 200
    minutes = TrainConfig(max_steps=None, max_minutes=5, warmup_steps=200)
    assert fit_warmup(minutes).warmup_steps == 200


def test_config_checks_its_values():
    with pytest.raises(ValueError, match="budget"):
        TrainConfig(max_steps=None)
    with pytest.raises(ValueError, match="unknown training settings: nope"):
        TrainConfig.from_dict({"nope": 1})
    config = TrainConfig(lr=5e-4, betas=(0.9, 0.99))
    assert TrainConfig.from_dict(config.as_dict()) == config


def test_learning_rate_schedules():
    inverse = learning_rate_factor(TrainConfig(warmup_steps=100), None)
    assert inverse(50) == pytest.approx(0.5) and inverse(100) == pytest.approx(1.0)
    assert inverse(400) == pytest.approx(0.5)
    config = TrainConfig(warmup_steps=10, schedule="cosine", lr=1e-3, min_lr=1e-5)
    cosine = learning_rate_factor(config, 110)
    assert cosine(10) == pytest.approx(1.0)
    assert cosine(60) == pytest.approx(0.505, abs=1e-3)
    assert cosine(110) == pytest.approx(0.01)


def test_bleu_is_sacrebleu_with_its_signature():
    perfect = corpus_bleu(["the cat sat on the mat"], ["the cat sat on the mat"])
    assert math.isclose(perfect.score, 100.0) and "tok:13a" in perfect.signature
    assert corpus_bleu(["a b c d"], ["w x y z"]).score == 0.0
    with pytest.raises(ValueError, match="1 hypotheses for 2 references"):
        corpus_bleu(["a"], ["a", "b"])
