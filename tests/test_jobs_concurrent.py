"""Jobs at once: two torch jobs in worker processes each reproduce their recorded seed, and a
big import beside a sampling job both succeed (the import reads before it takes the lock)."""

import gzip
import json

import pytest

from nasstudio.data.demo import DEMO_SRC, DEMO_TGT, write_demo_corpus
from nasstudio.jobs import JobRunner, JobState, sample_job
from nasstudio.jobs.files import import_job
from nasstudio.space import get_space, to_arch_info
from nasstudio.store import KNOWN_TASKS, Project
from nasstudio.store.defaults import add_demo
from nasstudio.train.job import train_job

SPACE = get_space("tiny-cpu")
ARCHS = SPACE.sample_many(2, seed=11)
CONFIG = {
    "max_steps": 30,
    "max_tokens": 1024,
    "lr": 3e-3,
    "warmup_steps": 10,
    "eval_every": 10**6,
    "checkpoint_every": 10**6,
    "beam": 1,
    "seed": 5,
}


def demo_project(path):
    project = Project(path)
    add_demo(project, 1)
    project.add_architectures("demo", ARCHS, origin="test")
    return project


def small_corpus(folder):
    """The demo pair with short valid and test splits: the final BLEU takes a moment."""
    write_demo_corpus(folder, sizes={"train": 2000, "valid": 20, "test": 20})
    return {"kind": "folder", "path": str(folder), "src": DEMO_SRC, "tgt": DEMO_TGT}


def train_losses(project, arch_ids, corpus, cache_dir):
    """Train ``arch_ids`` at once (one worker process each); each one's training losses."""
    runner = JobRunner(project, slots={"cpu": len(arch_ids)})
    jobs = {
        arch_id: runner.submit(
            "train",
            f"Train {arch_id}",
            train_job,
            task="demo",
            arch_id=arch_id,
            corpus=corpus,
            config=CONFIG,
            cache_dir=cache_dir,
        )
        for arch_id in arch_ids
    }
    for job in jobs.values():
        runner.wait(job, timeout=600)
    runner.shutdown()
    for job in jobs.values():
        assert project.job(job).state == JobState.DONE, project.job(job).error
    return {
        arch_id: [point["train_loss"] for point in project.curve(job)]
        for arch_id, job in jobs.items()
    }


def test_two_training_jobs_at_once_each_reproduce_their_seed(tmp_path):
    cache, corpus = str(tmp_path / "cache"), small_corpus(tmp_path / "corpus")
    alone = demo_project(tmp_path / "alone.nasproj")
    together = demo_project(tmp_path / "together.nasproj")
    first_alone = train_losses(alone, [ARCHS[0].id], corpus, cache)[ARCHS[0].id]
    both = train_losses(together, [ARCHS[0].id, ARCHS[1].id], corpus, cache)
    assert len(first_alone) == 3  # a point every 10 steps
    assert both[ARCHS[0].id] == first_alone  # exactly: same seed, same numbers
    assert both[ARCHS[1].id] != first_alone
    alone.close()
    together.close()


@pytest.mark.parametrize("count", [100_000])
def test_a_big_import_and_a_sample_at_once_both_succeed(tmp_path, count):
    pool = tmp_path / "pool" / "wmt14ende.jsonl.gz"
    pool.parent.mkdir()
    archs = get_space("hat-wmt").sample_many(count, seed=3)
    with gzip.open(pool, "wt") as out:
        for arch in archs:
            out.write(json.dumps({"scratch": {"arch_info": to_arch_info(arch)}}) + "\n")
    with Project(tmp_path / "p.nasproj") as project:
        project.ensure_task(KNOWN_TASKS["demo"])
        importer = JobRunner(project)
        sampler = JobRunner(project)  # another writer, as a CLI beside the window would be
        imported = importer.submit("import", "Import", import_job, paths=[str(pool)])
        sampled = sampler.submit("sample", "Sample", sample_job, task="demo", count=2000, seed=1)
        assert sampler.wait(sampled, timeout=600) == 2000
        importer.wait(imported, timeout=600)
        for runner, job in ((importer, imported), (sampler, sampled)):
            runner.shutdown()
            assert project.job(job).state == JobState.DONE, project.job(job).error
        assert project.count_architectures("wmt14ende") == len({a.id for a in archs})
        assert project.count_architectures("demo") == 2000
