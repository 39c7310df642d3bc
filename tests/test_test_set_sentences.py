"""A training's test split and ``nasstudio translate`` of the same files name the same test set
when the files hold a pair blank on both sides: the blank pair is no sentence of either."""

from __future__ import annotations

import hashlib

from nasstudio.cli import main
from nasstudio.data.demo import DEMO_SRC, DEMO_TGT, write_demo_corpus
from nasstudio.store import BLEU_TEST, KNOWN_TASKS, Project
from tests.test_train import TINY
from tests.test_translate import TASK, own_cache


def test_training_and_translate_hash_a_test_file_with_a_blank_pair_alike(tmp_path):
    corpus = tmp_path / "mini"  # TASK's corpus folder name
    write_demo_corpus(corpus, seed=0, sizes={"train": 300, "valid": 4, "test": 4})
    source, reference = corpus / f"test.{DEMO_SRC}", corpus / f"test.{DEMO_TGT}"
    sentences = {path: path.read_text(encoding="utf-8") for path in (source, reference)}
    for path, text in sentences.items():  # a blank pair between the first and the rest
        first, rest = text.split("\n", 1)
        path.write_text(f"{first}\n\n{rest}", encoding="utf-8")
    project = tmp_path / "p.nasproj"
    with Project(project) as p:
        p.ensure_task(KNOWN_TASKS["demo"])
        p.add_architectures("demo", [TINY], origin="test")
    common = ["-p", str(project), "--executor", "thread", "--device", "cpu"]
    with own_cache(tmp_path / "cache"):
        trained = main(
            [
                *("train", *common, "--task", "demo", "--ids", TINY.id),
                *("--corpus", "folder", "--corpus-path", str(corpus)),
                *("--src", DEMO_SRC, "--tgt", DEMO_TGT),
                *("--steps", "2", "--warmup", "1", "--max-tokens", "1024", "--beam", "1"),
            ]
        )
        assert trained == 0
        translated = main(
            [
                *("translate", *common, "--task", TASK, "--id", TINY.id),
                *(
                    "--input",
                    str(source),
                    "--ref",
                    str(reference),
                    "--output",
                    str(tmp_path / "test.hyp"),
                ),
            ]
        )
        assert translated == 0
    with Project(project) as p:
        scores = [m for m in p.measurements(TINY.id, TASK) if m.metric == BLEU_TEST]
    assert sorted(m.source for m in scores) == ["trained", "translated"]
    # By hand: the digest of the 4 sentence pairs, the blank pair left out.
    by_hand = hashlib.sha256(
        b"".join(b"4\n" + sentences[path].encode() for path in (source, reference))
    ).hexdigest()[:16]
    assert {(m.test_set, m.test_set_digest) for m in scores} == {("test", by_hand)}
    assert [m.provenance["sentences"] for m in scores] == [4, 4]  # both scored the same
