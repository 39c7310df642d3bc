import gzip
import json
import subprocess
import sys

import pytest

from nasstudio.cli import main
from nasstudio.search import pareto_front_2d
from nasstudio.space import from_yaml, parse_arch_info
from tests.conftest import require_refdata


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def full_project(tmp_path_factory):
    """All 18 llmas seed files and the three 8,500-architecture pools, imported by the CLI."""
    seeds = sorted(require_refdata("llmpp", "seedarchs").glob("*/*/*.jsonl"))
    pools = sorted(require_refdata("llmpp", "pool").glob("*.jsonl.gz"))
    path = tmp_path_factory.mktemp("cli") / "all.nasproj"
    assert main(["import", "--project", str(path), *map(str, seeds + pools)]) == 0
    return path


def ground_truth(task):
    """valid BLEU and GFLOPs by arch id, read straight from the llmas files."""
    truth = {}
    for path in require_refdata("llmpp", "seedarchs").glob(f"*/{task}/*.jsonl"):
        for line in path.read_text().splitlines():
            scratch = json.loads(line)["scratch"]
            arch = parse_arch_info(scratch["arch_info"])
            truth[arch.id] = (
                scratch["valid_BLEU"],
                scratch["total_flops"] / 1e9,
                scratch["overall_latency"],
            )
    return truth


def test_list_json_gives_the_files_numbers(full_project, capsys):
    code, out, _ = run(capsys, "list", "--project", str(full_project), "--json")
    assert code == 0
    records = json.loads(out)
    assert len(records) == 3 * 8530
    by_key = {(r["task"], r["id"]): r for r in records}
    for task in ("wmt14ende", "wmt14enfr", "wmt19ende"):
        truth = ground_truth(task)
        assert len(truth) == 30
        for arch_id, (bleu, gflops, latency) in truth.items():
            record = by_key[(task, arch_id)]
            assert record["bleu_valid"] == bleu
            assert record["gflops"] == pytest.approx(gflops)
            assert record["latency_ms@llmas"] == pytest.approx(latency)
    with gzip.open(require_refdata("llmpp", "pool", "wmt19ende.jsonl.gz"), "rt") as handle:
        pool_line = json.loads(handle.readline())["scratch"]
    pool_record = by_key[("wmt19ende", parse_arch_info(pool_line["arch_info"]).id)]
    assert pool_record["gflops"] == pytest.approx(pool_line["total_flops"] / 1e9)
    assert pool_record["bleu_valid"] is None


@pytest.mark.parametrize("task", ["wmt14ende", "wmt19ende"])
def test_pareto_json_is_the_front_of_the_files(full_project, capsys, task):
    code, out, _ = run(
        capsys,
        "pareto",
        "--project",
        str(full_project),
        "--task",
        task,
        "--x",
        "latency_ms@llmas",
        "--y",
        "bleu_valid",
        "--json",
    )
    assert code == 0
    result = json.loads(out)
    truth = ground_truth(task)
    ids = list(truth)
    bleu = [truth[i][0] for i in ids]
    latency = [truth[i][2] for i in ids]
    expected = {ids[i] for i in pareto_front_2d(latency, bleu)}
    # Brute force, independent of the implementation under test.
    brute = {
        a
        for a in ids
        if not any(
            truth[b][2] <= truth[a][2]
            and truth[b][0] >= truth[a][0]
            and truth[b][:3:2] != truth[a][:3:2]
            for b in ids
        )
    }
    assert {r["id"] for r in result["front"]} == expected == brute
    assert [r["latency_ms@llmas"] for r in result["front"]] == sorted(
        r["latency_ms@llmas"] for r in result["front"]
    )


def test_export_yaml_json_csv_round_trip(full_project, capsys, tmp_path):
    project = str(full_project)
    code, _, _ = run(
        capsys,
        "export",
        "--project",
        project,
        "--task",
        "wmt14ende",
        "--pareto",
        "--x",
        "gflops",
        "-o",
        str(tmp_path / "yaml"),
    )
    assert code == 0
    files = sorted((tmp_path / "yaml").glob("*.yml"))
    truth = ground_truth("wmt14ende")
    assert files
    for f in files:  # named by the chosen cost (--x gflops) and BLEU, as HAT names by latency
        bleu, gflops, _ = truth[from_yaml(f.read_text()).id]
        assert f.name == f"wmt14ende@{gflops:.2f}gflops_bleu@{bleu:.2f}.yml"
    assert (
        run(
            capsys,
            "export",
            "--project",
            project,
            "--task",
            "wmt14ende",
            "--pareto",
            "-o",
            str(tmp_path / "front.json"),
        )[0]
        == 0
    )
    exported = json.loads((tmp_path / "front.json").read_text())
    assert {r["id"] for r in exported} == {from_yaml(f.read_text()).id for f in files}
    assert all(r["metrics"]["bleu_valid"] == truth[r["id"]][0] for r in exported)
    assert (
        run(
            capsys,
            "export",
            "--project",
            project,
            "--task",
            "wmt14ende",
            "--pareto",
            "-o",
            str(tmp_path / "front.csv"),
        )[0]
        == 0
    )
    assert len((tmp_path / "front.csv").read_text().splitlines()) == len(files) + 1


def test_sample_into_project_and_file(tmp_path, capsys):
    project = str(tmp_path / "s.nasproj")
    code, out, _ = run(capsys, "sample", "--project", project, "--task", "demo", "-n", "30")
    assert code == 0 and "added 30" in out
    code, out, _ = run(capsys, "list", "--project", project, "--json")
    assert len(json.loads(out)) == 30
    target = tmp_path / "archs.jsonl"
    assert run(capsys, "sample", "--out", str(target), "--space", "hat-wmt", "-n", "5")[0] == 0
    assert run(capsys, "import", "--project", project, "--task", "wmt14ende", str(target))[0] == 0
    code, out, _ = run(capsys, "tasks", "--project", project, "--json")
    counts = {t["name"]: t["architectures"] for t in json.loads(out)}
    assert counts == {"demo": 30, "wmt14ende": 5}


def test_errors_are_one_clear_line(tmp_path, capsys):
    project = str(tmp_path / "e.nasproj")
    bad = tmp_path / "wmt14ende.jsonl"
    bad.write_text('{"scratch": {"arch_info": []}}\n')
    code, _, err = run(capsys, "import", "--project", project, str(bad))
    assert code == 1 and err.startswith(f"nasstudio: error: {bad}:1: ")
    code, _, err = run(capsys, "pareto", "--project", project, "--task", "nope")
    assert code == 1 and "no task 'nope'" in err


def test_module_entry_point_and_help():
    result = subprocess.run(
        [sys.executable, "-m", "nasstudio", "pareto", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--json" in result.stdout and "--x" in result.stdout


def test_project_option_before_or_after_the_command_and_from_env(tmp_path, capsys, monkeypatch):
    before, after, env = (tmp_path / f"{name}.nasproj" for name in ("before", "after", "env"))
    monkeypatch.setenv("NASSTUDIO_PROJECT", str(env))
    assert run(capsys, "--project", str(before), "sample", "-n", "3")[0] == 0
    assert run(capsys, "sample", "--project", str(after), "-n", "4")[0] == 0
    assert run(capsys, "sample", "-n", "5")[0] == 0
    for path, count in ((before, 3), (after, 4), (env, 5)):
        code, out, _ = run(capsys, "list", "--project", str(path), "--json")
        assert code == 0 and len(json.loads(out)) == count


def test_list_prints_whole_numbers_as_integers_and_missing_values_as_a_dash(full_project, capsys):
    truth = ground_truth("wmt14ende")
    best = max(truth, key=lambda arch_id: truth[arch_id][0])
    argv = ["list", "--project", str(full_project), "--task", "wmt14ende", "--sort", "bleu_valid"]
    code, out, _ = run(capsys, *argv, "--descending", "--limit", "31")
    assert code == 0 and out.startswith("== wmt14ende: 31 architectures\n") and "NaN" not in out
    rows = [line.split() for line in out.splitlines()[3:]]
    # id, origin, encoder and decoder width, decoder layers, GFLOPs, params, BLEU valid, test
    assert rows[0][0] == best and rows[0][7] == f"{truth[best][0]:.3f}"
    assert all(int(row[2]) in (512, 640) and row[6].isdigit() for row in rows)
    assert rows[-1][7:] == ["-", "-"]  # a pool architecture: no BLEU
    code, out, _ = run(capsys, *argv, "--descending", "--limit", "1")
    assert out.startswith("== wmt14ende: 1 architecture\n")
    code, out, _ = run(capsys, *argv, "--descending", "--limit", "1", "--json")
    (record,) = json.loads(out)
    assert record["id"] == best and isinstance(record["encoder_embed_dim"], int)
    assert f'"params": {record["params"]},' in out and isinstance(record["params"], int)
