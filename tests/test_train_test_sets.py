"""The training job scores every sentence of valid and test and records BLEU with the test
set it was scored on: a run on a copy of the corpus whose test file differs (the same folder
name, so the same task) adds a score beside the first instead of replacing it."""

from __future__ import annotations

import hashlib
import shutil

import pytest
import torch

from nasstudio.data.batching import encode_pairs
from nasstudio.data.corpus import read_parallel
from nasstudio.data.demo import DEMO_SRC, DEMO_TGT, write_demo_corpus
from nasstudio.data.spec import task_name
from nasstudio.data.vocab import corpus_vocabulary
from nasstudio.jobs import JobRunner, JobState
from nasstudio.store import BLEU_TEST, BLEU_TEST_TOKENIZED, BLEU_VALID, Project
from nasstudio.store.defaults import add_demo
from nasstudio.train.config import TrainConfig
from nasstudio.train.job import eval_set, train_job
from tests.test_train import TINY

CONFIG = {
    "max_steps": 6,
    "max_tokens": 1024,
    "warmup_steps": 2,
    "eval_every": 6,
    "eval_sentences": 4,
    "beam": 1,
    "checkpoint_every": 6,
    "max_len": 40,
}
SIZES = {"train": 600, "valid": 6, "test": 6}


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def demo_project(tmp_path):
    project = Project(tmp_path / "p.nasproj")
    add_demo(project, 2)
    project.add_architectures("demo", [TINY], origin="test")
    yield project
    project.close()


def digest(sources: list[str], references: list[str]) -> str:
    """By hand: each side as its line count, then its lines, each ended by a newline."""
    text = "".join(
        f"{len(side)}\n" + "".join(f"{line}\n" for line in side)
        for side in (
            sources,
            references,
        )
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write_test_file(folder, pairs) -> None:
    (folder / f"test.{DEMO_SRC}").write_text("".join(s + "\n" for s, _ in pairs))
    (folder / f"test.{DEMO_TGT}").write_text("".join(t + "\n" for _, t in pairs))


def train(project, folder, tmp_path) -> None:
    runner = JobRunner(project)
    spec = {"kind": "folder", "path": str(folder), "src": DEMO_SRC, "tgt": DEMO_TGT}
    job_id = runner.submit(
        "train",
        "test",
        train_job,
        executor="thread",  # no worker process to start: the test stays quick
        task="demo",
        arch_id=TINY.id,
        corpus=spec,
        config=CONFIG,
        vocab_size=300,
        cache_dir=str(tmp_path / "cache"),
    )
    runner.wait(job_id)
    runner.shutdown()
    assert runner.state(job_id) == JobState.DONE, project.job(job_id).error


def test_bleu_on_two_test_files_is_recorded_side_by_side(demo_project, tmp_path):
    first = tmp_path / "one" / "mt"
    write_demo_corpus(first, seed=3, sizes=SIZES)
    # The old workaround: a copy of the folder, same name, another test file.
    second = tmp_path / "two" / "mt"
    shutil.copytree(first, second)
    other_pairs = read_parallel(first / f"test.{DEMO_SRC}", first / f"test.{DEMO_TGT}")[1:]
    write_test_file(second, other_pairs)
    train(demo_project, first, tmp_path)
    train(demo_project, second, tmp_path)

    task = task_name({"kind": "folder", "path": str(first), "src": DEMO_SRC, "tgt": DEMO_TGT})
    first_pairs = read_parallel(first / f"test.{DEMO_SRC}", first / f"test.{DEMO_TGT}")
    first_digest = digest(*map(list, zip(*first_pairs, strict=True)))
    other_digest = digest(*map(list, zip(*other_pairs, strict=True)))
    recorded = demo_project.measurements(TINY.id, task)
    tests = sorted(
        (m.test_set, m.test_set_digest, m.provenance["sentences"])
        for m in recorded
        if m.metric == BLEU_TEST
    )
    assert tests == [("test", first_digest, 6), (f"test#{other_digest[:8]}", other_digest, 5)]
    # Both runs scored the same valid file: one score, updated.
    assert [m.test_set for m in recorded if m.metric == BLEU_VALID] == ["valid"]
    assert len([m for m in recorded if m.metric == BLEU_TEST_TOKENIZED]) == 2
    row = demo_project.table(task).loc[TINY.id]
    by_digest = {m.test_set_digest: m.value for m in recorded if m.metric == BLEU_TEST}
    assert row["bleu_test"] == by_digest[first_digest]
    assert row[f"bleu_test[test#{other_digest[:8]}]"] == by_digest[other_digest]
    tokenized = next(m for m in recorded if m.metric == BLEU_TEST_TOKENIZED)
    assert tokenized.provenance["beam"] == 1 and tokenized.provenance["length_penalty"] == 1.0
    assert "##AT##" in tokenized.provenance["procedure"]


def test_a_sentence_longer_than_max_len_is_scored(demo_project, tmp_path):
    folder = tmp_path / "long" / "mt"
    write_demo_corpus(folder, seed=4, sizes=SIZES)
    pairs = read_parallel(folder / f"test.{DEMO_SRC}", folder / f"test.{DEMO_TGT}")
    # Five sentences in one line: 25 to 75 words, more than max_len (40) subwords.
    long = (" ".join(s for s, _ in pairs[:5]), " ".join(t for _, t in pairs[:5]))
    write_test_file(folder, [*pairs, long])  # 6 + 1 = 7 sentences
    train(demo_project, folder, tmp_path)
    task = task_name({"kind": "folder", "path": str(folder), "src": DEMO_SRC, "tgt": DEMO_TGT})
    (test,) = [m for m in demo_project.measurements(TINY.id, task) if m.metric == BLEU_TEST]
    assert test.provenance["sentences"] == 7
    assert test.provenance["sentences_over_max_len"] == 1


def test_evaluation_batches_every_sentence_a_long_one_alone(tmp_path):
    corpus = write_demo_corpus(tmp_path / "mt", seed=5, sizes=SIZES)
    vocab = corpus_vocabulary(corpus, size=300, cache_dir=str(tmp_path / "cache"))
    pairs = corpus.pairs("test")
    long = (" ".join(s for s, _ in pairs), " ".join(t for _, t in pairs))
    pairs = [*pairs, long]
    config = TrainConfig(max_tokens=60, max_len=20)
    data = eval_set(pairs, encode_pairs(pairs, vocab), config)
    assert sorted(int(i) for b in data.batches for i in b.index) == list(range(7))
    assert sum(len(s) for s in data.sources) == len(data.references) == 7
    assert data.references[-1] == long[1]  # the longest comes last, alone in its batch
    assert len(data.batches[-1]) == 1 and data.batches[-1].src.shape[1] > 60
