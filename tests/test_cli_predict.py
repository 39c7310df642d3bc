"""CLI: prompt show|render, predict llm, evaluate."""

import json
import socket

import pytest

from nasstudio.cli import main
from nasstudio.predict.llm.client import UNREACHABLE_AFTER
from nasstudio.store import Project
from tests.conftest import require_refdata
from tests.llm_server import (
    FakeLLMServer,
    add_wmt_architectures,
    reply_by_architecture,
    write_seedarchs,
)
from tests.test_predict_evaluate import SMALL_ANSWERS, SMALL_ARCHS, SMALL_BLEU, SMALL_SPLITS


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def project_path(tmp_path):
    path = tmp_path / "p.nasproj"
    with Project(path) as project:
        add_wmt_architectures(project, measured=6, unmeasured=4)
    return str(path)


@pytest.mark.parametrize(
    "command",
    [["prompt"], ["prompt", "show"], ["prompt", "render"], ["predict", "llm"], ["evaluate"]],
)
def test_every_command_has_help(capsys, command):
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0
    assert "usage: nasstudio " + " ".join(command) in capsys.readouterr().out


def test_prompt_show_and_render(capsys, project_path):
    code, out, _ = run(capsys, "prompt", "show", "-p", project_path)
    assert code == 0 and "for task wmt14ende" in out and "== hyperparameter definitions" in out
    code, out, _ = run(capsys, "prompt", "show", "-p", project_path, "--json", "--k", "3")
    shown = json.loads(out)
    assert shown["demonstrations"]["k"] == 3 and len(shown["version"]) == 12
    with Project(project_path) as project:
        table = project.table("wmt14ende")
        arch_id = table.index[table["bleu_valid"].isna()][0]
    code, out, _ = run(capsys, "prompt", "render", arch_id, "-p", project_path, "--json")
    rendered = json.loads(out)
    assert [m["role"] for m in rendered["messages"]] == ["system", "user"]
    assert rendered["messages"][1]["content"].endswith("BLEU: ")
    assert rendered["messages"][1]["content"].count("\nBLEU: ") == 7  # 6 measured + query
    code, _, err = run(capsys, "prompt", "render", "nope", "-p", project_path)
    assert code == 1 and "architecture nope is not in task 'wmt14ende'" in err


def test_predict_llm_records_predictions_and_prints_the_cost(
    capsys, project_path, server, tmp_path
):
    flags = ["--base-url", server.base_url, "--model", "fake", "--cache", str(tmp_path / "c")]
    code, out, err = run(
        capsys, "predict", "llm", "-p", project_path, "--all", *flags, "--price-input-per-1k", "2"
    )
    assert code == 0, err
    assert "predicted 10 of 10 architectures of wmt14ende" in out
    assert "10 requests" in out and "cost " in out and "cost 0.0000" not in out
    predictor = f"fake@{server.base_url.split('/')[2]}"
    with Project(project_path) as project:
        assert project.table("wmt14ende")[f"pred:bleu_valid@{predictor}"].notna().sum() == 10
        arch_id = project.architectures("wmt14ende")[0].id
    code, out, _ = run(
        capsys, "predict", "llm", "-p", project_path, "--ids", arch_id, *flags, "--json"
    )
    summary = json.loads(out)
    assert summary["predicted"] == 1 and summary["usage"]["requests"] == 0  # from the cache
    assert server.requests == 10


def test_a_stored_profile_is_used_and_flags_override_it(capsys, project_path, server, tmp_path):
    profiles = tmp_path / "profiles.json"
    entry = {"name": "here", "base_url": server.base_url, "model": "m", "concurrency": 2}
    profiles.write_text(json.dumps({"profiles": [entry]}))
    code, out, err = run(
        capsys,
        "predict",
        "llm",
        "-p",
        project_path,
        "--all",
        "--profile",
        "here",
        "--profiles",
        str(profiles),
        "--model",
        "other",
        "--no-cache",
        "--json",
    )
    assert code == 0, err
    assert json.loads(out)["predictor"] == "other@here"
    assert {b["model"] for b in server.bodies} == {"other"}


def test_predict_llm_says_what_is_missing(capsys, project_path):
    code, _, err = run(capsys, "predict", "llm", "-p", project_path, "--all")
    assert code == 1 and "--profile NAME, or --base-url URL and --model NAME" in err
    code, _, err = run(
        capsys,
        "predict",
        "llm",
        "-p",
        project_path,
        "--all",
        "--profile",
        "x",
        "--profiles",
        "/nonexistent/p.json",
    )
    assert code == 1 and "no LLM profile 'x'" in err
    code, _, err = run(
        capsys,
        "predict",
        "llm",
        "-p",
        project_path,
        "--all",
        "--model",
        "m",
        "--executor",
        "process",
    )
    assert code == 1 and "--executor is for torch and file work" in err


def test_evaluate_baselines_and_an_llm_as_json(capsys, tmp_path, server):
    seedarchs = require_refdata("llmpp", "seedarchs")
    path = str(tmp_path / "eval.nasproj")
    code, out, err = run(
        capsys,
        "evaluate",
        "-p",
        path,
        "--seedarchs",
        str(seedarchs),
        "--task",
        "wmt14ende",
        "--json",
    )
    assert code == 0, err
    results = {r["predictor"]: r for r in json.loads(out)}
    assert round(results["HAT"]["mae"]["mean"], 2) == 1.14
    assert round(results["Neuron-wise MoS"]["kendall_tau"]["mean"], 2) == 0.79
    with Project(path) as project:  # the files were imported, the scores recorded
        rows = project.evaluations("wmt14ende")
        assert len(rows) == 4 * 3 and {r["label"] for r in rows} == set(results)
        assert project.count_architectures("wmt14ende") > 0
    code, out, err = run(
        capsys,
        "evaluate",
        "-p",
        path,
        "--seedarchs",
        str(seedarchs),
        "--task",
        "wmt14ende",
        "--base-url",
        server.base_url,
        "--model",
        "fake",
        "--cache",
        str(tmp_path / "c"),
        "--baselines",
    )
    assert code == 0, err
    assert "== wmt14ende: mean (std) over seeds 123, 456, 789" in out
    assert "HAT " in out and "[wmt14ende default]" in out and "60 requests" in out
    with Project(path) as project:
        rows = project.evaluations("wmt14ende")
        prompt_rows = [r for r in rows if r["prompt_version"]]
        assert len(rows) == 2 * 4 * 3 + 3 and [r["seed"] for r in prompt_rows] == [123, 456, 789]
        assert {r["label"] for r in prompt_rows} == {"wmt14ende default"}


def closed_port() -> int:
    """A port nothing listens on: bound, then closed."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_predict_llm_against_a_server_that_is_down_stops_with_one_message(capsys, project_path):
    base_url = f"http://127.0.0.1:{closed_port()}/v1"
    flags = ["--base-url", base_url, "--model", "m", "--no-cache", "--max-retries", "0"]
    code, out, err = run(capsys, "predict", "llm", "-p", project_path, "--all", *flags)
    assert code == 1 and out == ""
    last = err.strip().splitlines()[-1]
    assert last.startswith("nasstudio: error: LLM-PP predictions with m@127.0.0.1:")
    assert f"cannot reach {base_url}: Connection refused; is the server running?" in last
    # A few failures reported, not one per architecture: the streak that took the endpoint
    # down, plus the requests already in flight beside it (concurrency 4).
    assert err.count("no prediction") <= UNREACHABLE_AFTER + 3
    with Project(project_path) as project:
        (job,) = project.jobs()
        assert job.state == "failed"


def test_evaluate_with_an_llm_that_is_down_fails(capsys, tmp_path):
    folder = tmp_path / "seedarchs"
    write_seedarchs(folder, "wmt14ende", SMALL_ARCHS, SMALL_BLEU, SMALL_SPLITS)  # 8 queries
    base_url = f"http://127.0.0.1:{closed_port()}/v1"
    code, _, err = run(
        capsys,
        "evaluate",
        "-p",
        str(tmp_path / "e.nasproj"),
        "--seedarchs",
        str(folder),
        "--base-url",
        base_url,
        "--model",
        "m",
        "--no-cache",
        "--max-retries",
        "0",
    )
    assert code == 1
    assert f"cannot reach {base_url}: Connection refused; is the server running?" in err


def test_evaluate_says_what_each_figure_rests_on(capsys, tmp_path):
    folder = tmp_path / "seedarchs"
    write_seedarchs(folder, "wmt14ende", SMALL_ARCHS, SMALL_BLEU, {1: SMALL_SPLITS[1]})
    with FakeLLMServer() as server:
        server.reply = reply_by_architecture(dict(zip(SMALL_ARCHS, SMALL_ANSWERS, strict=True)))
        code, out, err = run(
            capsys,
            "evaluate",
            "-p",
            str(tmp_path / "e.nasproj"),
            "--seedarchs",
            str(folder),
            "--base-url",
            server.base_url,
            "--model",
            "small",
            "--no-cache",
        )
    assert code == 0, err
    lines = out.splitlines()
    assert lines[1].split() == ["predictor", "MAE", "Kendall", "tau", "Spearman", "rho", "n"]
    # B, C, D answered 25 (truth 22, 24, 26), A answered a list: MAE (3 + 1 + 1) / 3
    row = next(line for line in lines if line.startswith("small@"))
    assert "1.67 (0.00)" in row and row.endswith("n=3/4")
    assert row.count("undefined (constant predictions)") == 2
    assert "nan" not in out
