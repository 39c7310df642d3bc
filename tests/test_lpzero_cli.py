"""``nasstudio lpzero search|eval|proxies|save|list`` driven as a user types them, on tiny archs
files whose #params ranks the architectures exactly as their ground truth (by construction,
tests/lpzero_archs.py: architecture i has -valid ppl -200 + 10 i)."""

import json

import pytest
import torch
from scipy.stats import kendalltau, spearmanr

from nasstudio.cli import main
from nasstudio.lpzero.suites import DATA_ENV
from nasstudio.store import Project
from tests.lpzero_archs import tiny_arch, write_archs

SMALL = ["--population", "6", "--iterations", "4", "--seed", "2"]
FORMULA = "add(mean(act), l1_norm(grad))"


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def archs(tmp_path):
    return write_archs(tmp_path / "archs.jsonl")


@pytest.fixture
def path(tmp_path):
    return tmp_path / "p.nasproj"


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_search_prints_the_best_with_the_classic_proxies_and_stores_it(capsys, path, archs):
    argv = ["lpzero", "search", "-p", path, "--archs", archs, *SMALL, "--save-as", "found"]
    code, out, err = cli(capsys, *argv, "--executor", "thread")
    assert code == 0, err
    assert "on " + str(archs) + " (8 architectures against -valid ppl), seed 2: 4 iterations" in out
    best = out.split("best: ")[1].splitlines()[0]
    assert "Spearman rho" in out and "Kendall tau" in out
    # The classic table: #params ranks exactly as the ground truth.
    assert "num_parameters                +1.000  +1.000" in out
    assert "iteration 4/4" in err  # the progress bar
    with Project(path) as project:
        (proxy,) = project.proxies()
        assert (proxy.name, proxy.formula, proxy.benchmark) == ("found", best, str(archs))
        (row,) = project.lpzero_searches()
        assert row["iterations"] == 4 and row["best"] == best


def test_search_json_without_classic_proxies(capsys, path, archs):
    argv = ["lpzero", "search", "-p", path, str(archs), *SMALL, "--no-classic", "--json"]
    code, out, err = cli(capsys, *argv, "--executor", "thread")
    assert code == 0, err
    result = json.loads(out)
    assert result["iterations"] == 4 and result["n"] == 8 and result["classic"] == {}
    assert result["sign"] == (1 if result["rho"] >= 0 else -1)
    with Project(path) as project:
        assert project.lpzero_iterations(result["job_id"])[-1].best == result["best"]


def test_a_search_over_layer_sums_finds_a_layersum_formula_that_eval_reads(capsys, path, archs):
    argv = ["lpzero", "search", "-p", path, str(archs), *SMALL, "--no-classic", "--json"]
    code, out, err = cli(capsys, *argv, "--over-layers", "sum", "--executor", "thread")
    assert code == 0, err
    found = json.loads(out)
    assert found["best"].startswith("layersum(")
    code, out, err = cli(capsys, "lpzero", "eval", str(archs), "--expr", found["best"], "--json")
    assert code == 0, err
    assert json.loads(out)["rho"] == pytest.approx(found["rho"])


def test_eval_prints_rho_and_tau_of_a_formula(capsys, archs):
    code, out, err = cli(capsys, "lpzero", "eval", "--archs", archs, "--expr", FORMULA, "--json")
    assert code == 0, err
    row = json.loads(out)
    assert row["n"] == 8 and row["failed"] == 0 and row["truth"] == "-valid ppl"
    values = [row["values"][f"tiny_{i}"] for i in range(8)]
    # The ground truth rises with the index: rank the values against it.
    assert row["rho"] == pytest.approx(spearmanr(values, range(8)).statistic)
    assert row["tau"] == pytest.approx(kendalltau(values, range(8)).statistic)
    code, out, err = cli(capsys, "lpzero", "eval", "--archs", archs, "--expr", FORMULA)
    assert out.splitlines()[1] == f"  Spearman rho {row['rho']:+.3f}  Kendall tau {row['tau']:+.3f}"


def test_eval_of_a_formula_that_ranks_nothing_says_why(capsys, archs):
    # An FFN activation (batch x length x d_inner) times the FFN's weight (d_inner x d_model).
    code, out, _ = cli(capsys, "lpzero", "eval", "--archs", archs, "--expr", "mul(act, weight)")
    assert code == 1
    assert "no ranking: no values" in out or "no ranking: failed on" in out


def test_proxies_prints_the_classic_proxies(capsys, archs):
    code, out, err = cli(capsys, "lpzero", "proxies", "--archs", archs, "--sample", 5, "--json")
    assert code == 0, err
    table = json.loads(out)
    assert table["n"] == 5
    assert table["proxies"]["num_parameters"] == {"rho": pytest.approx(1), "tau": pytest.approx(1)}
    assert {"snip", "grad_norm", "synflow", "fisher"} <= table["proxies"].keys()


def test_save_stores_the_sign_that_makes_higher_better_and_list_shows_it(capsys, path, archs):
    negated = "sub(l1_norm(grad), mean(act))"
    code, out, err = cli(capsys, "lpzero", "eval", "--archs", archs, "--expr", negated, "--json")
    rho = json.loads(out)["rho"]
    code, out, err = cli(
        capsys, "lpzero", "save", "-p", path, "--archs", archs, "--expr", negated, "--name", "n"
    )
    assert code == 0, err
    code, out, err = cli(capsys, "lpzero", "list", "-p", path, "--json")
    (stored,) = json.loads(out)
    assert stored["sign"] == (1 if rho >= 0 else -1)
    assert stored["rho"] == pytest.approx(abs(rho))
    code, _, err = cli(
        capsys, "lpzero", "save", "-p", path, "--archs", archs, "--expr", FORMULA, "--name", "n"
    )
    assert code == 1 and "a proxy named 'n' is already stored" in err
    code, out, _ = cli(capsys, "lpzero", "list", "-p", path)
    assert out.startswith("n ") and str(archs) in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["eval", "gpt3", "--expr", FORMULA], "unknown benchmark 'gpt3'"),
        (["eval", "--expr", FORMULA], "say which benchmark"),
        (["eval", "gpt2-wt103", "--expr", FORMULA], f"--data DIR or ${DATA_ENV}"),
        (
            ["save", "--benchmark", "flexibert", "--expr", FORMULA, "--name", "x"],
            "benchmark 'flexibert' is read from the LPZero data folder",
        ),
        (["eval", "ARCHS", "--expr", "add(mean(act, grad)"], "found ',' at character 13"),
        (["eval", "ARCHS", "--expr", "add(act, gradient)"], "got 'gradient' at character 10"),
        (["proxies", "ARCHS", "--sample", "20"], "sample of 20: expected 2 to 8"),
        (["proxies", "--task", "demo"], "no task 'demo'"),
    ],
)
def test_a_bad_request_gets_a_one_line_error(capsys, monkeypatch, archs, path, argv, message):
    monkeypatch.delenv(DATA_ENV, raising=False)
    argv = [str(archs) if a == "ARCHS" else a for a in argv]
    code, _, err = cli(capsys, "lpzero", *argv, "-p", path)
    assert code == 1
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_malformed_archs_file_is_named_with_its_line(capsys, tmp_path):
    bad = tmp_path / "bad.jsonl"
    row = tiny_arch(0)
    del row["ppl"]
    bad.write_text(json.dumps(tiny_arch(1)) + "\n" + json.dumps(row) + "\n")
    code, _, err = cli(capsys, "lpzero", "eval", "--archs", bad, "--expr", FORMULA)
    assert code == 1
    assert f"{bad}:2: missing field ppl" in err
