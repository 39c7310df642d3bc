"""CLI: train, latency and supernet train|score on the demo corpus with tiny architectures."""

import json

import pytest
import torch

from nasstudio.cli import main
from nasstudio.metrics import device_name
from nasstudio.space import get_space
from nasstudio.store import BLEU_TEST, BLEU_VALID, KNOWN_TASKS, LATENCY_MS, Project

ARCHS = get_space("tiny-cpu").sample_many(2, seed=3)
FAST = ["--max-tokens", "512", "--warmup", "5", "--device", "cpu"]


@pytest.fixture(autouse=True)
def setting(monkeypatch, tmp_path_factory):
    """One torch thread; the demo corpus and vocabularies in the test session's own cache."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def project_path(tmp_path):
    path = tmp_path / "p.nasproj"
    with Project(path) as project:
        project.ensure_task(KNOWN_TASKS["demo"])
        project.add_architectures("demo", ARCHS, origin="test")
    return str(path)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_train_records_bleu_of_each_architecture(project_path, capsys):
    ids = [a.id for a in ARCHS]
    code, out, _ = run(
        capsys,
        "train",
        "-p",
        project_path,
        "--all",
        "--steps",
        "20",
        "--beam",
        "1",
        "--json",
        *FAST,
    )
    assert code == 0
    rows = json.loads(out)
    assert [r["id"] for r in rows] == ids and all(r["task"] == "demo" for r in rows)
    with Project(project_path) as project:
        for row in rows:
            measured = {m.metric: m for m in project.measurements(row["id"], "demo")}
            for metric in (BLEU_VALID, BLEU_TEST):
                assert measured[metric].value == row[metric] and 0 <= row[metric] <= 100
                assert measured[metric].source == "trained"
                assert measured[metric].provenance["steps"] == 20
                assert measured[metric].provenance["config"]["beam"] == 1


def test_latency_prints_and_records_milliseconds_per_architecture(project_path, capsys):
    quick = ["--beam", "1", "--repeats", "2", "--warmup", "1", "--threads", "1"]
    code, out, _ = run(capsys, "latency", "-p", project_path, "--all", "--limit", "1", *quick)
    assert code == 0
    assert ARCHS[0].id in out and ARCHS[1].id not in out and "(beam 1)" in out
    code, out, _ = run(
        capsys, "latency", "-p", project_path, "--ids", ARCHS[1].id, "--json", *quick
    )
    (row,) = json.loads(out)
    assert row["id"] == ARCHS[1].id and row["device"] == device_name("cpu")
    assert row["latency_ms"] == pytest.approx(row["encoder_ms"] + row["decoder_ms"])
    with Project(project_path) as project:
        table = project.table("demo")
        column = f"{LATENCY_MS}@{device_name('cpu')}"
        assert table.loc[ARCHS[1].id, column] == pytest.approx(row["latency_ms"])
        assert table[column].notna().sum() == 2


def test_supernet_train_then_score_records_predictions(project_path, tmp_path, capsys):
    checkpoint = str(tmp_path / "net.pt")
    code, out, _ = run(
        capsys, "supernet", "train", "-p", project_path, "--steps", "3", "--out", checkpoint,
        "--json", "--max-tokens", "256", "--warmup", "2", "--device", "cpu",
    )  # fmt: skip
    assert code == 0
    assert json.loads(out) == {"checkpoint": checkpoint, "step": 3, "best_valid_loss": None}
    code, out, _ = run(
        capsys, "supernet", "score", "-p", project_path, "--all", "--checkpoint", checkpoint,
        "--bleu-sentences", "10", "--device", "cpu", "--json",
    )  # fmt: skip
    assert code == 0
    rows = json.loads(out)
    assert [r["id"] for r in rows] == [a.id for a in ARCHS]
    with Project(project_path) as project:
        columns = project.value_columns("demo")["predicted"]
        assert columns == [
            "pred:bleu_valid@supernet:net@step3",
            "pred:valid_loss@supernet:net@step3",
        ]
        table = project.table("demo")
        for row in rows:
            assert table.loc[row["id"], columns[1]] == row["valid_loss"]
            assert table.loc[row["id"], columns[0]] == row["bleu_valid"]
    code, out, _ = run(
        capsys, "supernet", "score", "-p", project_path, "--ids", ARCHS[0].id,
        "--checkpoint", checkpoint, "--bleu-sentences", "10", "--device", "cpu",
    )  # fmt: skip
    assert code == 0 and out.startswith(ARCHS[0].id) and "valid_loss" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--ids", "nope"], "not in task 'demo': nope"),
        (["train", "--all", "--corpus", "multi30k"], "--corpus multi30k needs --corpus-path"),
        (["latency", "--all", "--device", "tpu"], "--device tpu: expected cpu, cuda or cuda:N"),
        (["latency", "--all", "--device", "cuda:64"], "--device cuda:64: "),
        (
            ["supernet", "score", "--all", "--checkpoint", "none.pt"],
            "Score 2 architectures with none.pt failed: none.pt: no such checkpoint",
        ),
        (["supernet", "train", "--task", "nope"], "no task 'nope'"),
    ],
)
def test_clear_errors(project_path, capsys, argv, message):
    code, out, err = run(capsys, *argv, "-p", project_path)
    assert code == 1 and out == ""
    assert f"nasstudio: error: {message}" in err


def test_every_new_command_has_help(capsys):
    for argv in (
        ["train"],
        ["latency"],
        ["supernet"],
        ["supernet", "train"],
        ["supernet", "score"],
    ):
        with pytest.raises(SystemExit) as exit_:
            main([*argv, "--help"])
        assert exit_.value.code == 0
        assert "usage: nasstudio " + " ".join(argv) in capsys.readouterr().out
