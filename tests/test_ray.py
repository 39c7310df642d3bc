"""The Ray executor on a local runtime: two demo architectures trained through it with their BLEU
recorded, checkpoints in its storage, cancel (cooperative and forced), a killed worker, and the
CLI's --executor ray.

The tests are ordered so that Ray's worker processes, once warm (torch imported), serve the
next ones; the tests that end a worker come after those that train."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import torch

from nasstudio.cli import main
from nasstudio.data.demo import DEMO_SRC, DEMO_TGT, write_demo_corpus
from nasstudio.data.spec import task_name
from nasstudio.jobs import JobRunner, JobState
from nasstudio.jobs.records import CurvePoint
from nasstudio.space import Architecture
from nasstudio.store import BLEU_TEST, BLEU_VALID, KNOWN_TASKS, Project
from nasstudio.train.job import checkpoint_dir, train_job
from tests import jobfns

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'nasstudio[ray]')")
from nasstudio.jobs.ray_executor import RayExecutor  # noqa: E402

# Two small architectures of the tiny-cpu space: each trains in seconds on one core.
ARCHS = [
    Architecture(
        encoder_embed_dim=64,
        decoder_embed_dim=64,
        encoder_ffn_dims=(ffn,),
        encoder_heads=(4,),
        decoder_ffn_dims=(ffn,),
        decoder_heads=(4,),
        decoder_cross_heads=(4,),
        decoder_arbitrary_attn=(-1,),
        qkv_dim=128,
    )
    for ffn in (128, 256)
]
QUICK = {
    "max_steps": 20,
    "max_tokens": 1024,
    "lr": 3e-3,
    "warmup_steps": 5,
    "eval_every": 10_000,  # BLEU at the end only
    "beam": 1,
    "checkpoint_every": 20,
}


@pytest.fixture(scope="module", autouse=True)
def ray_home(tmp_path_factory):
    """Ray keeps its token under HOME, and its workers their caches: a home of the tests' own.
    The first job starts the local runtime (on its own thread, which ends with the job: the
    runtime must outlive it); it is shut down after the module."""
    home = tmp_path_factory.mktemp("ray-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(home))
        patch.setenv("XDG_CACHE_HOME", str(home / "cache"))
        yield
        ray.shutdown()


def executor(**options):
    return RayExecutor(num_cpus=2, **options)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The demo language pair with short valid and test sets: final BLEU takes a moment."""
    folder = tmp_path_factory.mktemp("corpus") / "mini"
    write_demo_corpus(folder, sizes={"train": 2000, "valid": 40, "test": 40})
    return {"kind": "folder", "path": str(folder), "src": DEMO_SRC, "tgt": DEMO_TGT}


@pytest.fixture
def project(tmp_path):
    with Project(tmp_path / "ray.nasproj") as project:
        project.ensure_task(KNOWN_TASKS["demo"])
        project.add_architectures("demo", ARCHS, origin="test")
        yield project


@pytest.fixture
def storage(tmp_path):
    return tmp_path / "storage"


@pytest.fixture
def runner(project, storage):
    runner = JobRunner(project, executors={"ray": executor(storage=str(storage))})
    yield runner
    runner.shutdown(timeout=30)


def submit_training(runner, arch, corpus, tmp_path, **config):
    return runner.submit(
        "train",
        f"train {arch.id}",
        train_job,
        executor="ray",
        resource="ray",
        task="demo",
        arch_id=arch.id,
        corpus=corpus,
        config={**QUICK, **config},
        cache_dir=str(tmp_path / "cache"),
    )


def test_two_architectures_train_on_ray_with_bleu_recorded(
    project, runner, storage, corpus, tmp_path
):
    jobs = [submit_training(runner, arch, corpus, tmp_path) for arch in ARCHS]
    results = [runner.wait(job, timeout=120) for job in jobs]
    for job, arch, result in zip(jobs, ARCHS, results, strict=True):
        record = project.job(job)
        assert record.state == JobState.DONE, project.job_log(job)
        assert record.worker.startswith("Ray worker")
        measured = {m.metric: m for m in project.measurements(arch.id, task_name(corpus))}
        for metric in (BLEU_VALID, BLEU_TEST):
            assert measured[metric].value == result[metric] and 0 <= result[metric] <= 100
            assert measured[metric].source == "trained"
            assert measured[metric].provenance["steps"] == 20
        assert project.curve(job), "no curve points recorded"
        (checkpoint,) = checkpoint_dir(project, str(storage)).glob(f"{arch.id}-*.pt")
        assert torch.load(checkpoint, weights_only=False)["state"]["step"] == 20
    assert not checkpoint_dir(project).exists()  # not beside the project: in the storage


def test_cancel_ends_the_job_promptly_and_keeps_its_checkpoint(
    project, runner, storage, corpus, tmp_path
):
    steps, asked = [], []

    def on_event(event):
        if isinstance(event.payload, CurvePoint):
            steps.append(event.payload.step)
            if len(steps) == 3:
                asked.append(time.monotonic())
                runner.cancel(event.job_id)

    runner.subscribe(on_event)
    job = submit_training(runner, ARCHS[0], corpus, tmp_path, max_steps=100_000)
    runner.wait(job, timeout=120)
    assert project.job(job).state == JobState.CANCELLED, project.job_log(job)
    assert time.monotonic() - asked[0] < 2.0
    assert not any("after the cancel" in line for line in project.job_log(job))  # not forced
    (checkpoint,) = checkpoint_dir(project, str(storage)).glob(f"{ARCHS[0].id}-*.pt")
    assert torch.load(checkpoint, weights_only=False)["state"]["step"] >= 20
    measured = project.measurements(ARCHS[0].id, task_name(corpus))
    assert not [m for m in measured if m.source == "trained"]


def test_cli_train_with_executor_ray_records_bleu(project, corpus, capsys):
    project.close()
    argv = ["train", "-p", str(project.path), "--ids", ARCHS[1].id, "--steps", "10", "--json"]
    source = ["--corpus", "folder", "--corpus-path", corpus["path"]]
    source += ["--src", DEMO_SRC, "--tgt", DEMO_TGT]
    fast = ["--beam", "1", "--max-tokens", "512", "--warmup", "5", "--device", "cpu"]
    assert main([*argv, *source, *fast, "--executor", "ray"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    with Project(project.path) as reopened:
        measured = {m.metric: m for m in reopened.measurements(ARCHS[1].id, row["task"])}
        (job,) = reopened.jobs()
        assert job.executor == "ray" and job.worker.startswith("Ray worker")
    assert row["task"] == task_name(corpus)
    assert measured[BLEU_VALID].value == row[BLEU_VALID]
    assert measured[BLEU_VALID].provenance["steps"] == 10


def test_a_job_deaf_to_cancel_is_ended_after_the_grace_period(project):
    runner = JobRunner(project, executors={"ray": executor(grace_s=0.5)})
    started = threading.Event()
    runner.subscribe(lambda e: e.kind == "log" and e.message == "sleeping" and started.set())
    job = runner.submit("test", "deaf", jobfns.ignores_cancel_job, executor="ray")
    assert started.wait(60)
    asked = time.monotonic()
    runner.cancel(job)
    runner.wait(job, timeout=30)
    runner.shutdown()
    assert time.monotonic() - asked < 5.0
    assert project.job(job).state == JobState.CANCELLED
    assert "the Ray task was ended 0.5 s after the cancel" in project.job_log(job)


def test_a_killed_worker_fails_its_job_with_the_reason(project, runner):
    pids = []
    runner.subscribe(lambda e: e.kind == "partial" and pids.append(e.payload))
    job = runner.submit("test", "killed", jobfns.pid_then_wait_job, executor="ray")
    deadline = time.monotonic() + 60
    while not pids and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(pids[0], signal.SIGKILL)
    runner.wait(job, timeout=30)
    record = project.job(job)
    assert record.state == JobState.FAILED
    assert record.error.startswith("the Ray task died")


def test_importing_nasstudio_does_not_import_ray():
    code = "import sys, nasstudio.cli, nasstudio.jobs; assert 'ray' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
