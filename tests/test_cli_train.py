"""CLI: train, latency and supernet train|score on the demo corpus with tiny architectures."""

import json

import pytest
import torch

from nasstudio.cli import main
from nasstudio.data.demo import DEMO_SRC, DEMO_TGT, write_demo_corpus
from nasstudio.metrics import device_name
from nasstudio.space import Architecture, get_space
from nasstudio.store import BLEU_TEST, BLEU_VALID, KNOWN_TASKS, LATENCY_MS, Project, Task

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


# The smallest architecture of HAT's WMT space (512 wide, 6 + 1 layers).
WMT_SMALLEST = Architecture(
    encoder_embed_dim=512,
    decoder_embed_dim=512,
    encoder_ffn_dims=(1024,) * 6,
    encoder_heads=(4,) * 6,
    decoder_ffn_dims=(1024,),
    decoder_heads=(4,),
    decoder_cross_heads=(4,),
    decoder_arbitrary_attn=(-1,),
    qkv_dim=512,
)


def test_an_architecture_of_another_space_trains_into_a_task_of_its_own(tmp_path, capsys):
    """The corpus' task holds tiny-cpu architectures with 256 subwords: a hat-wmt one trained
    on that corpus goes to '<corpus task>-hat-wmt', and a rerun of its job goes there too."""
    folder = tmp_path / "pair"
    write_demo_corpus(folder, sizes={"train": 600, "valid": 12, "test": 12})
    corpus = ["--corpus", "folder", "--corpus-path", str(folder), "--src", DEMO_SRC]
    corpus += ["--tgt", DEMO_TGT]
    path = str(tmp_path / "p.nasproj")
    with Project(path) as project:
        project.ensure_task(Task("pair-syn-srcsyn-tgt", 256, "tiny-cpu"))
        project.ensure_task(KNOWN_TASKS["wmt14ende"])
        project.add_architectures("wmt14ende", [WMT_SMALLEST], origin="test")
    quick = ["--steps", "2", "--beam", "1", "--max-tokens", "256", "--device", "cpu"]
    argv = ["train", "-p", path, "--task", "wmt14ende", "--all", *corpus, *quick]
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    (row,) = json.loads(out)
    assert row["task"] == "pair-syn-srcsyn-tgt-hat-wmt"
    assert "results go to task 'pair-syn-srcsyn-tgt-hat-wmt' (task 'pair-syn-srcsyn-tgt' has " \
        "space 'tiny-cpu' and a vocabulary of 256)" in err  # fmt: skip
    # The warm-up (200 by default) is longer than the budget: shortened, and the log says so.
    assert (
        "warm-up of 200 steps is longer than the 2-step budget: shortened to 1, a tenth of it"
        in err
    )
    with Project(path) as project:
        assert project.task(row["task"]).space == "hat-wmt"
        (measured,) = [m for m in project.measurements(WMT_SMALLEST.id, row["task"])
                       if m.metric == BLEU_VALID]  # fmt: skip
        assert measured.value == row[BLEU_VALID]
        assert measured.provenance["config"]["warmup_steps"] == 1
        job = project.jobs()[-1].id
    code, out, err = run(capsys, "jobs", "-p", path, "--rerun", str(job))
    assert code == 0 and "'task': 'pair-syn-srcsyn-tgt-hat-wmt'" in out


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


@pytest.mark.parametrize("value", ["0", "-5", "1e25", "many"])
@pytest.mark.parametrize("command", [["train", "--all"], ["sample"], ["import", "a.jsonl"]])
def test_vocab_size_must_be_a_whole_number_in_a_sane_range(project_path, capsys, command, value):
    with pytest.raises(SystemExit) as exited:
        main([*command, "-p", project_path, "--vocab-size", value])
    out, err = capsys.readouterr()
    assert exited.value.code == 2 and out == "" and "Traceback" not in err
    assert err.splitlines()[-1] == (
        f"nasstudio {command[0]}: error: argument --vocab-size: expected a whole number "
        f"from 1 to 1,000,000, got '{value}'"
    )
