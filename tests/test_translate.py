"""``nasstudio translate``: a tiny architecture trained on a small demo-language corpus translates
test files with its checkpoint; BLEU on each test set is recorded beside the others and equals
sacrebleu's, computed here on the written translations."""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from sacrebleu.metrics import BLEU

from nasstudio.cli import main
from nasstudio.data.demo import DEMO_SRC, DEMO_TGT, demo_pairs, write_demo_corpus
from nasstudio.store import BLEU_TEST, BLEU_TEST_TOKENIZED, KNOWN_TASKS, Project
from nasstudio.train.job import checkpoint_dir
from nasstudio.train.translate import write_lines
from tests.test_train import TINY

CORPUS = "mini"
TASK = f"{CORPUS}-{DEMO_SRC}{DEMO_TGT}"  # where results on the folder corpus go


def train_tiny(project_path: Path, corpus: Path) -> None:
    """Train TINY on the small corpus in ``corpus`` for a few steps (seconds)."""
    code = main(
        [
            *("train", "-p", str(project_path), "--task", "demo", "--ids", TINY.id),
            *("--corpus", "folder", "--corpus-path", str(corpus)),
            *("--src", DEMO_SRC, "--tgt", DEMO_TGT),
            *("--steps", "40", "--warmup", "5", "--max-tokens", "1024", "--beam", "1"),
            *("--device", "cpu"),
        ]
    )
    assert code == 0


def small_corpus(folder: Path) -> Path:
    write_demo_corpus(folder, seed=0, sizes={"train": 1500, "valid": 16, "test": 16})
    return folder


@contextlib.contextmanager
def own_cache(folder: Path) -> Iterator[None]:
    """Corpora and vocabularies cached in ``folder`` (worker processes inherit it); one torch
    thread."""
    previous_cache, previous_threads = os.environ.get("XDG_CACHE_HOME"), torch.get_num_threads()
    os.environ["XDG_CACHE_HOME"] = str(folder)
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous_threads)
        if previous_cache is None:
            del os.environ["XDG_CACHE_HOME"]
        else:
            os.environ["XDG_CACHE_HOME"] = previous_cache


def trained_project(folder: Path) -> Path:
    """A project in ``folder`` whose TINY was trained on a small corpus (its BLEU recorded in
    TASK)."""
    path = folder / "p.nasproj"
    with Project(path) as project:
        project.ensure_task(KNOWN_TASKS["demo"])
        project.add_architectures("demo", [TINY], origin="test")
    train_tiny(path, small_corpus(folder / CORPUS))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Iterator[Path]:
    with own_cache(tmp_path_factory.mktemp("cache")):
        yield trained_project(tmp_path_factory.mktemp("trained"))


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def scored_files(folder: Path, name: str, seed: int, count: int = 12) -> tuple[Path, Path]:
    pairs = demo_pairs(seed, {"test": count})["test"]
    source = write(folder / f"{name}.{DEMO_SRC}", [s for s, _ in pairs])
    reference = write(folder / f"{name}.{DEMO_TGT}", [t for _, t in pairs])
    return source, reference


def translate(capsys, project: Path, *argv: str, executor: str = "thread") -> tuple[int, str, str]:
    """``nasstudio translate`` of TINY; in a thread unless asked (a worker process costs
    seconds to start)."""
    code = main(
        [
            "translate",
            *("-p", str(project), "--task", TASK, "--id", TINY.id, "--executor", executor),
            *argv,
        ]
    )
    out, err = capsys.readouterr()
    return code, out, err


def sacrebleu_score(hypotheses: Path, references: Path) -> float:
    hyps = hypotheses.read_text(encoding="utf-8").split("\n")[:-1]
    refs = references.read_text(encoding="utf-8").split("\n")[:-1]
    return BLEU().corpus_score(hyps, [refs]).score


def test_scores_on_two_test_sets_are_recorded_side_by_side(trained, tmp_path, capsys):
    alpha_src, alpha_ref = scored_files(tmp_path, "alpha", seed=5)
    beta_src, beta_ref = scored_files(tmp_path, "beta", seed=6)
    alpha_hyp, beta_hyp = tmp_path / "alpha.hyp", tmp_path / "beta.hyp"
    printed = []
    for src, ref, hyp, extra in (
        (alpha_src, alpha_ref, alpha_hyp, ["--name", "set-a"]),
        (beta_src, beta_ref, beta_hyp, []),  # named after the input file: beta
    ):
        code, out, err = translate(
            capsys,
            trained,
            *("--input", str(src), "--ref", str(ref), "-o", str(hyp), *extra),
            executor="process" if src == alpha_src else "thread",  # as a user runs it, once
        )
        assert code == 0, err
        assert "bleu_test" in out and "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp" in out
        printed.append(out)
    assert len(alpha_hyp.read_text().splitlines()) == 12
    with Project(trained) as project:
        rows = project.measurements(TINY.id, TASK)
    bleu = {m.test_set: m for m in rows if m.metric == BLEU_TEST}
    assert set(bleu) == {"test", "set-a", "beta"}  # the training's own test split stays
    assert bleu["set-a"].test_set_digest != bleu["beta"].test_set_digest
    assert bleu["set-a"].value == pytest.approx(sacrebleu_score(alpha_hyp, alpha_ref), abs=1e-9)
    assert bleu["beta"].value == pytest.approx(sacrebleu_score(beta_hyp, beta_ref), abs=1e-9)
    assert printed[0].startswith(f"set-a ({bleu['set-a'].test_set_digest}): bleu_test ")
    tokenized = {m.test_set for m in rows if m.metric == BLEU_TEST_TOKENIZED}
    assert {"set-a", "beta"} <= tokenized


def test_every_line_is_translated_however_long(trained, tmp_path, capsys):
    pairs = demo_pairs(8, {"test": 40})["test"]
    long_source = " ".join(s for s, _ in pairs)  # far beyond max_len's 128 subwords
    long_reference = " ".join(t for _, t in pairs)
    short = pairs[:3]
    source = write(tmp_path / "long.src", [short[0][0], "", long_source, short[1][0], short[2][0]])
    reference = write(
        tmp_path / "long.ref", [short[0][1], "", long_reference, short[1][1], short[2][1]]
    )
    hypotheses = tmp_path / "long.hyp"
    code, _, err = translate(
        capsys, trained, "--input", str(source), "--ref", str(reference), "-o", str(hypotheses)
    )
    assert code == 0, err
    lines = hypotheses.read_text(encoding="utf-8").split("\n")[:-1]
    assert len(lines) == 5 and lines[1] == ""  # an empty line gives an empty translation
    assert len(lines[2].split()) > 30  # the long sentence is translated whole, not cut
    with Project(trained) as project:
        (score,) = [
            m
            for m in project.measurements(TINY.id, TASK)
            if m.metric == BLEU_TEST and m.test_set == "long"
        ]
    assert score.provenance["sentences"] == 4  # the blank pair is none (test_sets' rule)
    assert score.value == pytest.approx(sacrebleu_score(hypotheses, reference), abs=1e-9)


def test_without_output_the_translations_go_to_stdout(trained, tmp_path, capsys):
    source, _ = scored_files(tmp_path, "plain", seed=9, count=4)
    code, out, err = translate(capsys, trained, "--input", str(source))
    assert code == 0, err
    assert len(out.split("\n")[:-1]) == 4
    assert "checkpoint" in err and "behind the recorded" in err  # which checkpoint, and why


def test_mismatched_line_counts_are_refused_before_any_work(trained, tmp_path, capsys):
    source, reference = scored_files(tmp_path, "short", seed=10, count=5)
    write(reference, reference.read_text().splitlines()[:4])
    with Project(trained) as project:
        before = project.measurements(TINY.id, TASK)
    code, out, err = translate(capsys, trained, "--input", str(source), "--ref", str(reference))
    assert code == 1 and out == ""
    assert err.startswith("nasstudio: error: ")
    assert f"{source} has 5 lines but the reference {reference} has 4" in err
    with Project(trained) as project:
        assert project.measurements(TINY.id, TASK) == before
        assert not [j for j in project.jobs() if j.kind == "translate" and "short" in j.title]


def test_missing_files_and_flags_are_errors(trained, tmp_path, capsys):
    missing = tmp_path / "nowhere.src"
    code, _, err = translate(capsys, trained, "--input", str(missing))
    assert code == 1 and err.startswith(f"nasstudio: error: {missing}: file not found")
    with pytest.raises(SystemExit) as exit_:
        main(["translate", "-p", str(trained), "--id", TINY.id])  # no --input
    assert exit_.value.code == 2
    assert "--input" in capsys.readouterr().err


def test_an_untrained_architecture_says_to_train_it_first(tmp_path, capsys):
    path = tmp_path / "p.nasproj"
    with Project(path) as project:
        project.ensure_task(KNOWN_TASKS["demo"])
        project.add_architectures("demo", [TINY], origin="test")
    source, _ = scored_files(tmp_path, "any", seed=3, count=2)
    code = main(["translate", "-p", str(path), "--id", TINY.id, "--input", str(source)])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith(f"nasstudio: error: no trained checkpoint of {TINY.id} in ")
    assert f"nasstudio train --task demo --ids {TINY.id}" in err
    with Project(path) as project:
        assert not checkpoint_dir(project).exists()


def test_the_checkpoint_behind_the_recorded_bleu_is_chosen_else_the_newest(
    trained, tmp_path, capsys
):
    with Project(trained) as project:
        folder = checkpoint_dir(project)
    (behind,) = folder.glob(f"{TINY.id}-*.pt")
    payload = torch.load(behind, weights_only=True)
    payload["meta"]["config"]["seed"] += 1  # another run's checkpoint, newer
    other = folder / f"{TINY.id}-another-run.pt"
    torch.save(payload, other)
    source, _ = scored_files(tmp_path, "choice", seed=14, count=2)
    aside = tmp_path / behind.name
    try:
        code, _, err = translate(capsys, trained, "--input", str(source))
        assert code == 0, err
        assert f"checkpoint {behind} at step 40 (the run behind the recorded bleu_valid" in err
        behind.rename(aside)
        code, _, err = translate(capsys, trained, "--input", str(source))
        assert code == 0, err
        assert f"checkpoint {other} at step 40 (the newest of 1; none is behind a BLEU" in err
    finally:
        other.unlink()
        if aside.exists():
            aside.rename(behind)


def test_the_corpus_test_split_scores_as_the_training_recorded_it(trained, tmp_path, capsys):
    with Project(trained) as project:
        [recorded] = [
            m
            for m in project.measurements(TINY.id, TASK)
            if m.metric == BLEU_TEST and m.test_set == "test"
        ]
    corpus = trained.parent / CORPUS
    code, out, err = translate(
        capsys,
        trained,
        *("--input", str(corpus / f"test.{DEMO_SRC}"), "--ref", str(corpus / f"test.{DEMO_TGT}")),
        *("-o", str(tmp_path / "test.hyp")),
    )
    assert code == 0, err
    assert out.startswith(f"test ({recorded.test_set_digest}): bleu_test ")
    with Project(trained) as project:
        kept, again = sorted(
            (
                m
                for m in project.measurements(TINY.id, TASK)
                if m.metric == BLEU_TEST and m.test_set == "test"
            ),
            key=lambda m: m.source != "trained",
        )
    # Beside the training's score, never over it.
    assert (kept.source, kept.value, again.source) == ("trained", recorded.value, "translated")
    assert again.value == pytest.approx(recorded.value, abs=1e-9)
    assert again.provenance["beam"] == recorded.provenance["beam"] == 1


def test_translations_to_a_pipe_keep_the_pipe(tmp_path):
    # --output /dev/stdout or a FIFO: written through, never renamed over.
    pipe = tmp_path / "hyp.fifo"
    os.mkfifo(pipe)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(pipe.read_text(encoding="utf-8")))
    reader.start()
    write_lines(pipe, ["ein Satz", ""])
    reader.join(timeout=30)
    assert received == ["ein Satz\n\n"] and stat.S_ISFIFO(pipe.stat().st_mode)
