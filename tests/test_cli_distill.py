"""CLI: ``nasstudio distill`` labels architectures through the real LLM client path (the
loopback server answers with ``fake_bleu``), fits on the labels and recovers the function."""

import json

import pytest
import torch
from scipy.stats import kendalltau

from nasstudio.cli import main
from nasstudio.predict.distill import load_distilled
from nasstudio.space import get_space, to_arch_info
from nasstudio.store import Project
from tests.conftest import require_refdata
from tests.llm_server import _config, add_wmt_architectures, fake_bleu

# A fast test setting instead of llmas's 400-unit layers, 5,000 steps at 1e-5 (see
# tests/test_distill_job.py).
FAST = [
    *("--steps", "400", "--learning-rate", "3e-3", "--batch-size", "64"),
    *("--hidden-dim", "64", "--hidden-layers", "2", "--ensemble", "2", "--start-at-mean"),
]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def project_path(tmp_path):
    path = tmp_path / "p.nasproj"
    with Project(path) as project:
        add_wmt_architectures(project, measured=8, unmeasured=0)  # the demonstrations
    return str(path)


def llm(server, tmp_path):
    return ["--base-url", server.base_url, "--model", "fake", "--cache", str(tmp_path / "c")]


def test_distilling_the_servers_labels_recovers_its_function(
    capsys, project_path, server, tmp_path
):
    code, out, err = run(
        capsys,
        *("distill", "-p", project_path, "--label", "300", "--name", "fake", "--json"),
        *llm(server, tmp_path),
        *FAST,
    )
    assert code == 0, err
    assert "labelling 300 architectures: 300 requests" in err  # the estimate, before the job
    assert server.requests == 300
    summary = json.loads(out)
    column = f"pred:bleu_valid@fake@{server.base_url.split('/')[2]}"
    assert (summary["kind"], summary["labels"], summary["fitted_on"]) == ("distilled", column, 270)
    assert summary["held_out"]["kendall_tau"] >= 0.85  # 30 held-out labels

    # Architectures it never saw, against the function the server labels with.
    unseen = get_space("hat-wmt").sample_many(300, seed=1234)
    predicted, _ = load_distilled(project_path, "fake").predict_values(unseen)
    truth = [fake_bleu(_config(to_arch_info(a))) for a in unseen]
    assert kendalltau(predicted, truth).statistic >= 0.9

    with Project(project_path) as project:
        table = project.table("wmt14ende")
    assert table["pred:bleu_valid@distilled:fake"].notna().sum() == 300  # 8 + 292 sampled

    code, out, _ = run(capsys, "distill", "-p", project_path, "--list")
    assert code == 0
    assert out.startswith("fake ") and "distilled" in out and f"270 values of {column}" in out


def test_estimate_only_sends_nothing(capsys, project_path, server, tmp_path):
    code, _, err = run(
        capsys,
        *("distill", "-p", project_path, "--label", "50", "--estimate"),
        *llm(server, tmp_path),
        "--price-input-per-1k",
        "1",
    )
    assert code == 0, err
    assert "labelling 50 architectures: 50 requests" in err and "at most " in err
    assert server.requests == 0
    with Project(project_path) as project:
        assert project.count_architectures("wmt14ende") == 50  # 8 + 42 sampled to be labelled


def test_a_pool_file_is_imported_and_its_architectures_are_labelled(
    capsys, project_path, server, tmp_path
):
    pool = require_refdata("llmpp", "pool", "wmt14ende.jsonl.gz")
    code, _, err = run(
        capsys,
        *("distill", "-p", project_path, "--label", "20", "--pool", str(pool), "--estimate"),
        *llm(server, tmp_path),
    )
    assert code == 0, err
    assert "8500 architectures" in err.replace(",", "") and "labelling 20 architectures" in err
    with Project(project_path) as project:
        assert project.count_architectures("wmt14ende") == 8 + 8500


def test_without_llm_labels_measured_bleu_gives_a_fitted_predictor(capsys, project_path):
    threads = torch.get_num_threads()  # the job sets 1 thread: with a thread executor, here
    code, out, err = run(capsys, "distill", "-p", project_path, "--executor", "thread", *FAST)
    torch.set_num_threads(threads)
    assert code == 0, err
    assert "fitted predictor measured-bleu_valid fitted on 7 values of bleu_valid" in out
    assert "pred:bleu_valid@fitted:measured-bleu_valid" in out


def test_a_bad_name_is_refused_before_any_work(capsys, project_path):
    code, _, err = run(capsys, "distill", "-p", project_path, "--name", "../up")
    assert code == 1 and "'../up' is not a predictor name" in err
