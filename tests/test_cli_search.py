"""``nasstudio search run|list|show|export`` driven as a user types them."""

import csv
import json

import pytest

from nasstudio.cli import main
from nasstudio.metrics import efficiency
from nasstudio.predict.distill import DistilledPredictor, FitSettings, distilled_path
from nasstudio.space import get_space
from nasstudio.store import KNOWN_TASKS, Project

SMALL = ["--iterations", "3", "--population", "6", "--parents", "2", "--mutations", "2"]
SMALL += ["--crossovers", "2"]
GFLOPS_LIMIT = 0.033  # about half of the demo space's sampled architectures are below it


def ffn_bleu(arch):
    """A hand-made BLEU for the predictor to learn."""
    return 20 + sum(arch.encoder_ffn_dims) / 100


@pytest.fixture(scope="module")
def fitted():
    space = get_space("tiny-cpu")
    archs = space.sample_many(40, seed=1)
    settings = FitSettings(
        steps=100, learning_rate=1e-3, hidden_dim=32, seeds=(0,), start_at_mean=True
    )
    return DistilledPredictor.fit(
        archs, [ffn_bleu(a) for a in archs], space, "ffn", "fitted", settings
    )


@pytest.fixture
def path(tmp_path, fitted):
    """A demo project with the fitted predictor 'ffn' stored beside it."""
    path = tmp_path / "p.nasproj"
    with Project(path) as project:
        project.ensure_task(KNOWN_TASKS["demo"])
    fitted.save(distilled_path(path, "ffn"))
    return path


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def search(capsys, path, *extra):
    return cli(capsys, "search", "run", "-p", path, "--predictor", "fitted:ffn", *SMALL, *extra)


def test_run_in_a_worker_process_reports_the_best_and_records_every_generation(capsys, path):
    code, out, err = search(capsys, path, "--max-gflops", GFLOPS_LIMIT)
    assert code == 0, err
    assert out.startswith("search #1: 3 generations of demo; best ")
    assert "(BLEU (fitted:ffn))" in out and "time in fitted:ffn" in out
    with Project(path) as project:
        generations = project.search_generations(1)
        assert project.job(1).state == "done"
    assert [g.generation for g in generations] == [0, 1, 2]
    for generation in generations:
        assert all(efficiency(m.arch, 256).gflops <= GFLOPS_LIMIT for m in generation.members)


def test_json_list_show_and_export_of_a_search(capsys, path, tmp_path):
    code, out, err = search(capsys, path, "--executor", "thread", "--json", "--seed", "3")
    assert code == 0, err
    result = json.loads(out)
    assert result["job_id"] == 1 and result["generations"] == 3
    assert set(result["seconds"]) == {"fitted:ffn"}

    code, out, _ = cli(capsys, "search", "list", "-p", path, "--json")
    (row,) = json.loads(out)
    assert (row["job_id"], row["state"], row["generations"]) == (1, "done", 3)
    assert row["best_id"] == result["best_id"]
    code, out, _ = cli(capsys, "search", "list", "-p", path)
    assert out.startswith("#1 ") and "3 generations" in out and result["best_id"] in out

    code, out, _ = cli(capsys, "search", "show", "-p", path)  # the latest
    lines = out.splitlines()
    assert lines[0] == "search #1 of demo" and len(lines) == 2 + 3
    assert all("fitted:ffn" in line for line in lines[2:])
    assert lines[-1].split()[-1] == result["best_id"]
    code, out, _ = cli(capsys, "search", "show", "-p", path, "1", "--json")
    shown = json.loads(out)
    assert [g["generation"] for g in shown] == [0, 1, 2]
    assert shown[-1]["front"] == result["front"]

    front_csv = tmp_path / "front.csv"
    code, out, _ = cli(capsys, "search", "export", "-p", path, "1", "-o", front_csv)
    assert code == 0 and f"front of {len(result['front'])} architecture" in out
    with open(front_csv) as handle:
        exported = [row["id"] for row in csv.DictReader(handle)]
    assert sorted(exported) == sorted(result["front"])
    best_json = tmp_path / "best.json"
    code, out, _ = cli(capsys, "search", "export", "-p", path, "1", "--best", "-o", best_json)
    assert code == 0 and "best architecture" in out
    assert [r["id"] for r in json.loads(best_json.read_text())] == [result["best_id"]]


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["--predictor", "llm:x"], "--predictor llm:x: expected distilled:NAME"),
        (
            ["--predictor", "distilled:none"],
            "--predictor distilled:none: no distilled predictor 'none'",
        ),
        (["--predictor", "supernet:/no/net.pt"], "--predictor supernet:/no/net.pt: no such"),
        (["--latency-ms", "150"], "--latency-ms: say which latency predictor"),
        (["--latency-ms", "150", "--latency-predictor", "gone"], "--latency-predictor gone"),
        (["--parents", "9"], "--parents 9: must not exceed --population 6"),
        (["--predictor", "fitted:ffn", "--switch-at", "3"], "--switch-at 3: expected 1 to 2"),
        (["--initial", "0123456789abcdef"], "--initial: not in task 'demo': 0123456789abcdef"),
        (["--switch-at", "2"], "--switch-at: HS-NAS switches to a second --predictor"),
    ],
)
def test_a_bad_option_is_one_error_line_naming_it(capsys, path, argv, error):
    code, _, err = search(capsys, path, *argv)
    assert code == 1
    assert err.startswith(f"nasstudio: error: {error}") and err.count("\n") == 1, err


def test_a_bad_number_is_refused_by_the_option_parser(capsys, path):
    with pytest.raises(SystemExit):
        search(capsys, path, "--mutation-prob", "1.5")
    assert "--mutation-prob: expected a number from 0 to 1, got '1.5'" in capsys.readouterr().err


def test_show_and_export_of_an_unknown_search_name_it(capsys, path, tmp_path):
    for argv in (["show", "-p", path, "4"], ["export", "-p", path, "4", "-o", tmp_path / "x.csv"]):
        code, _, err = cli(capsys, "search", *argv)
        assert code == 1 and err.startswith("nasstudio: error: search #4: no such search"), err
    code, _, err = cli(capsys, "search", "show", "-p", path)
    assert code == 1 and err.startswith("nasstudio: error: no searches in "), err
