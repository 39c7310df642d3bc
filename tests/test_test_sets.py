"""Test sets: a measurement names the test set it was scored on, a score on one test set never
replaces another's, the columns show them side by side; schema 2 -> 3 keeps every
measurement; HAT's tokenised BLEU against a hand computation."""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3

import pytest

from nasstudio.space import get_space
from nasstudio.store import (
    BLEU_TEST,
    BLEU_TEST_TOKENIZED,
    BLEU_VALID,
    KNOWN_TASKS,
    SCHEMA_VERSION,
    Measurement,
    Project,
)
from nasstudio.store.exporters import export
from nasstudio.train.bleu import split_compounds, tokenized_bleu
from nasstudio.train.test_sets import TestSet

DEMO = KNOWN_TASKS["demo"]
NEWSTEST = TestSet("newstest2014", "aaaaaaaabbbbbbbb")
OTHER_NEWSTEST = TestSet("newstest2014", "ccccccccdddddddd")
FLICKR = TestSet("test2016", "eeeeeeeeffffffff")


@pytest.fixture
def archs(project):
    project.ensure_task(DEMO)
    archs = get_space(DEMO.space).sample_many(3, seed=5)
    project.add_architectures(DEMO.name, archs, "test")
    return archs


def scored(arch_id: str, value: float, test_set: TestSet | None, metric: str = BLEU_TEST):
    name, digest = (test_set.name, test_set.digest) if test_set else ("", "")
    return Measurement(
        arch_id, DEMO.name, metric, value, "trained", test_set=name, test_set_digest=digest
    )


def test_a_test_sets_digest_hashes_both_sides_line_by_line(tmp_path):
    # By hand: each side as its line count, then its lines, each ended by a newline.
    expected = hashlib.sha256(b"2\nsrc one\nsrc two\n2\nref one\nref two\n").hexdigest()[:16]
    test_set = TestSet.of_lines("t", ["src one", "src two"], ["ref one", "ref two"])
    assert test_set == TestSet("t", expected)
    (tmp_path / "t.en").write_text("src one\nsrc two\n")
    (tmp_path / "t.de").write_text("ref one\nref two\n")
    assert TestSet.of_files("t", tmp_path / "t.en", tmp_path / "t.de") == test_set
    with pytest.raises(ValueError, match="one reference per source line"):
        TestSet.of_lines("t", ["src one", "src two", "ref one"], ["ref two"])
    with pytest.raises(ValueError, match="line 2 holds a line break"):
        TestSet.of_lines("t", ["a", "b\nc"], ["d", "e"])


def test_a_pair_blank_on_both_sides_is_no_sentence_of_the_test_set(tmp_path):
    # By hand: the blank pair (line 2) is left out; the one-sided blank (line 4) stays.
    expected = hashlib.sha256(b"3\nsrc one\nsrc three\n\n3\nref one\nref three\nref four\n")
    (tmp_path / "t.en").write_text("src one\n\nsrc three\n \n")
    (tmp_path / "t.de").write_text("ref one\n\t\nref three\nref four\n")
    test_set = TestSet.of_files("t", tmp_path / "t.en", tmp_path / "t.de")
    assert test_set == TestSet("t", expected.hexdigest()[:16])


def test_scores_on_two_test_sets_are_both_kept_side_by_side(project, archs):
    a, b = archs[0].id, archs[1].id
    project.add_measurements([scored(a, 30.0, FLICKR), scored(b, 31.0, FLICKR)])
    project.add_measurements([scored(a, 20.0, NEWSTEST)])
    project.add_measurements([scored(a, 21.0, NEWSTEST)])  # the same set again: an update
    recorded = {(m.test_set, m.value) for m in project.measurements(a, DEMO.name)}
    assert {(n, v) for n, v in recorded if n} == {("test2016", 30.0), ("newstest2014", 21.0)}
    table = project.table(DEMO.name)
    # test2016 came first: it keeps the plain column.
    assert table.loc[a, "bleu_test"] == 30.0 and table.loc[b, "bleu_test"] == 31.0
    assert table.loc[a, "bleu_test[newstest2014]"] == 21.0
    assert math.isnan(table.loc[b, "bleu_test[newstest2014]"])
    measured = project.value_columns(DEMO.name)["measured"]
    assert {"bleu_test", "bleu_test[newstest2014]"} <= set(measured)
    rows = dict(project.rows(DEMO.name, [a, b]))
    assert rows[archs[0]]["bleu_test[newstest2014]"] == 21.0
    assert rows[archs[1]]["bleu_test[newstest2014]"] is None
    # column_of names the column each recorded measurement is shown in.
    shown = {project.column_of(m): m.value for m in project.measurements(a, DEMO.name)}
    assert shown["bleu_test"] == 30.0 and shown["bleu_test[newstest2014]"] == 21.0


def test_another_content_under_a_used_name_gets_its_digest_in_the_name(project, archs):
    a = archs[0].id
    project.add_measurements([scored(a, 30.0, FLICKR)])
    project.add_measurements([scored(a, 20.0, NEWSTEST)])
    project.add_measurements([scored(a, 25.0, OTHER_NEWSTEST)])
    names = sorted(m.test_set for m in project.measurements(a, DEMO.name) if m.test_set)
    assert names == ["newstest2014", "newstest2014#cccccccc", "test2016"]
    row = project.table(DEMO.name).loc[a]
    assert row["bleu_test[newstest2014]"] == 20.0
    assert row["bleu_test[newstest2014#cccccccc]"] == 25.0
    # The same content under yet another name keeps the name it was first recorded under.
    renamed = TestSet("wmt14", NEWSTEST.digest)
    project.add_measurements([scored(archs[1].id, 22.0, renamed)])
    assert project.table(DEMO.name).loc[archs[1].id, "bleu_test[newstest2014]"] == 22.0


def test_imported_scores_name_no_test_set_and_keep_the_plain_column(project, archs):
    a = archs[0].id
    project.add_measurements([Measurement(a, DEMO.name, BLEU_TEST, 27.5, "llmas")])
    project.add_measurements([scored(a, 30.0, FLICKR)])
    row = project.table(DEMO.name).loc[a]
    assert row["bleu_test"] == 27.5 and row["bleu_test[test2016]"] == 30.0


def test_an_export_carries_both_test_sets_columns(project, archs, tmp_path):
    a = archs[0].id
    project.add_measurements([scored(a, 30.0, FLICKR), scored(a, 20.0, NEWSTEST)])
    export(project, DEMO.name, [a], "json", tmp_path / "out.json")
    (record,) = json.loads((tmp_path / "out.json").read_text())
    assert record["metrics"]["bleu_test"] == 30.0
    assert record["metrics"]["bleu_test[newstest2014]"] == 20.0


_V2_MEASUREMENT = (
    "INSERT INTO measurements (id, arch_id, task, metric, value, device, source, provenance,"
    " created_at) VALUES (?, ?, 'demo', ?, ?, ?, ?, '{\"run\": 1}', ?)"
)


def test_a_version_2_project_is_upgraded_once_keeping_every_measurement(tmp_path):
    from nasstudio.store.schema import APPLICATION_ID, MIGRATIONS

    arch = get_space(DEMO.space).sample_many(1, seed=2)[0]
    path = tmp_path / "v2.nasproj"
    conn = sqlite3.connect(path)
    for step in MIGRATIONS[:2]:
        conn.executescript(step)
    conn.execute("INSERT INTO tasks VALUES ('demo', 256, 'tiny-cpu', '')")
    features = ", ".join("0" for _ in range(10))
    conn.execute(f"INSERT INTO architectures VALUES (?, ?, {features}, 1.0)", (arch.id, "{}"))
    rows = [
        (7, arch.id, BLEU_VALID, 21.5, "", "trained", 2.0),
        (9, arch.id, BLEU_TEST, 22.5, "", "trained", 3.0),
        (12, arch.id, "latency_ms", 80.0, "cpu", "measured", 4.0),
    ]
    conn.executemany(_V2_MEASUREMENT, rows)
    conn.execute("PRAGMA user_version = 2")
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.commit()
    conn.close()
    with Project(path) as project:
        kept = project.measurements(arch.id)
        assert {(m.metric, m.value, m.device, m.test_set, m.test_set_digest) for m in kept} == {
            (BLEU_VALID, 21.5, "", "", ""),
            (BLEU_TEST, 22.5, "", "", ""),
            ("latency_ms", 80.0, "cpu", "", ""),
        }
        assert all(m.provenance == {"run": 1} for m in kept)
        # The new identity: a score on a named test set sits beside the old one.
        project.add_measurements(
            [
                Measurement(
                    arch.id, "demo", BLEU_TEST, 30.0, "trained", test_set="t", test_set_digest="d"
                )
            ]
        )
        assert len(project.measurements(arch.id)) == 4
    conn = sqlite3.connect(path)
    ids = [row[0] for row in conn.execute("SELECT id FROM measurements ORDER BY id")]
    assert ids[:3] == [7, 9, 12]  # ids kept through the rebuild
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()
    with Project(path) as project:  # opened again: already upgraded, nothing redone
        assert len(project.measurements(arch.id)) == 4


# HAT's tokenised BLEU, by hand. After 13a tokenisation and the compound split
# (s{(\S)-(\S)}{$1 ##AT##-##AT## $2}g):
#   hyp 1 "a well-known man ." -> a well ##AT##-##AT## known man .        (6 tokens)
#   ref 1 "a well-known man !" -> a well ##AT##-##AT## known man !        (6 tokens)
#   hyp 2 "the cat sat"        -> the cat sat                              (3 tokens)
#   ref 2 "the cat sat down"   -> the cat sat down                         (4 tokens)
# 1-grams: 5/6 + 3/3 = 8/9; 2-grams: 4/5 + 2/2 = 6/7; 3-grams: 3/4 + 1/1 = 4/5;
# 4-grams: 2/3 + 0/0 = 2/3. hyp 9 tokens, ref 10: BP = exp(1 - 10/9).
# BLEU = BP * (8/9 * 6/7 * 4/5 * 2/3) ** (1/4) * 100.
HAND_BLEU = math.exp(1 - 10 / 9) * (8 / 9 * 6 / 7 * 4 / 5 * 2 / 3) ** 0.25 * 100


def test_tokenized_bleu_is_hats_compound_split_bleu_by_hand():
    hypotheses = ["a well-known man.", "the cat sat"]
    references = ["a well-known man!", "the cat sat down"]
    assert split_compounds(hypotheses) == ["a well ##AT##-##AT## known man .", "the cat sat"]
    score = tokenized_bleu(hypotheses, references)
    assert score.score == pytest.approx(HAND_BLEU, abs=1e-9)
    assert score.sentences == 2
    assert "tok:13a+compound-split" in score.signature and "smooth:none" in score.signature
    # Non-overlapping matches, as perl's s///g: "x-y-z" keeps its second hyphen.
    assert split_compounds(["x-y-z"]) == ["x ##AT##-##AT## y-z"]
    # No smoothing: no 4-gram match at all scores 0, as fairseq's score.py.
    assert tokenized_bleu(["a b c"], ["a b c"]).score == 0.0


def test_tokenized_bleu_has_its_own_column(project, archs):
    a = archs[0].id
    project.add_measurements(
        [scored(a, 30.0, FLICKR), scored(a, 28.0, FLICKR, metric=BLEU_TEST_TOKENIZED)]
    )
    row = project.table(DEMO.name).loc[a]
    assert row[BLEU_TEST] == 30.0 and row[BLEU_TEST_TOKENIZED] == 28.0
