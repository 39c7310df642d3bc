"""The latency predictor through the CLI: fit on a HAT table, an imported table or the project's
own measurements, score on another table, list predictors and tables."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from nasstudio.cli import main
from nasstudio.space import average_features, get_space
from nasstudio.store import KNOWN_TASKS, LATENCY_MS, Measurement
from nasstudio.store.importers import HAT_LATENCY_COLUMNS
from tests.conftest import require_refdata

LATENCY = ("hat", "latency")
# Fewer steps at a larger learning rate than HAT's 5,000 at 1e-5: the same fit in seconds.
FAST = ["--steps", "300", "--learning-rate", "1e-3"]
# A latency that is a smooth function of the features needs fewer still; in a thread, the job
# spares the start of a worker process.
FASTER = ["--steps", "100", "--learning-rate", "1e-3", "--executor", "thread"]
# The issue asks for tau >= 0.9 on this table; no predictor of the 10 features reaches it. We read
# the data as HAT does (HAT's norms, encoder + decoder mean latency, no repeated architectures:
# 2,000 distinct feature rows; scipy's tau-b) and HAT's own published predictor for this table,
# which was fitted on 80 % of these very rows, scores tau 0.844 on all of them (0.859 on our
# held-out 10 %). The rows are in measurement order and their latency drifts with it: the
# residual of a fit on the features has a lag-1 autocorrelation of 0.93 (0.96 on iwslt14deen,
# 0.36-0.39 on the Xeon tables), the mean residual of consecutive 200-row blocks runs from -5 % to
# +13 %, and a 40-row running mean of it explains 87 % of its variance, while one row's
# run-to-run error is 0.4 %. A predictor told the drift would reach tau 0.94 on the held-out
# rows; a linear fit on the drift-corrected latency reaches 0.846 against the measured one,
# scikit-learn's LinearRegression 0.841 (0.846 on log latency with one-hot decoder depth) and
# gradient boosting 0.82 (the same split). Our MLP reaches 0.836-0.840, at that ceiling.
HELD_OUT_TAU = 0.83


@pytest.fixture
def one_torch_thread():
    """Jobs in a thread share the test's torch: one thread, as a worker process has."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def hand_made_latency_ms(features: np.ndarray) -> float:
    """A latency with no measurement noise: per-layer costs growing with widths and heads."""
    enc_dim, enc_layers, enc_ffn, _, dec_dim, dec_layers, dec_ffn, _, ende_heads, attended = (
        features
    )
    encoder = enc_layers * (0.5 + enc_dim / 1000 + enc_ffn / 4000)
    decoder = dec_layers * (20 + dec_dim / 50 + dec_ffn / 400 + ende_heads + 2 * attended)
    return 1 + encoder + decoder


def write_hand_made_table(path, rows: int) -> None:
    """A HAT latency CSV of ``rows`` sampled architectures' hand-made latency."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HAT_LATENCY_COLUMNS)
        for arch in get_space("hat-wmt").sample_many(rows, seed=1):
            features = average_features(arch)
            total_ms = hand_made_latency_ms(features)
            writer.writerow([*features, 0.5, total_ms - 0.5, 0.0, 0.0])  # encoder + decoder


def test_train_then_eval_on_another_table(tmp_path, capsys):
    csv = require_refdata(*LATENCY, "wmt14ende_gpu_titanxp_all.csv")
    project = tmp_path / "p.nasproj"
    argv = ["-p", str(project), "latency-predictor", "train", str(csv), "--name", "titanxp"]
    assert main([*argv, *FAST, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows"] == 200  # 10 % of the table's 2,000 rows
    assert report["tau"] >= HELD_OUT_TAU
    assert report["mape"] < 10
    assert (tmp_path / "p.nasproj.latency" / "titanxp.pt").is_file()

    other = require_refdata(*LATENCY, "wmt14enfr_gpu_titanxp_all.csv")
    argv = ["-p", str(project), "latency-predictor", "eval", str(other), "--name", "titanxp"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "titanxp on wmt14enfr_gpu_titanxp: MAPE" in out and "Kendall tau" in out
    assert "(2000 rows)" in out


def test_eval_of_an_unknown_name_is_an_error(tmp_path, capsys):
    csv = require_refdata(*LATENCY, "wmt14enfr_gpu_titanxp_all.csv")
    argv = ["-p", str(tmp_path / "p.nasproj"), "latency-predictor", "eval", str(csv)]
    assert main([*argv, "--name", "nothing"]) == 1
    assert capsys.readouterr().err.startswith("nasstudio: error: no latency predictor 'nothing'")


def test_train_on_a_bad_file_is_an_error(tmp_path, capsys):
    bad = tmp_path / "wmt14ende_gpu_titanxp_all.csv"
    bad.write_text("not,a,latency,table\n1,2,3,4\n")
    argv = ["-p", str(tmp_path / "p.nasproj"), "latency-predictor", "train", str(bad)]
    assert main([*argv, "--name", "x"]) == 1
    assert capsys.readouterr().err.startswith("nasstudio: error: ")
    assert not (tmp_path / "p.nasproj.latency").exists()


def test_latency_tables_lists_an_imported_table(tmp_path, capsys):
    csv = require_refdata(*LATENCY, "wmt14ende_cpu_raspberrypi_all.csv")
    project = str(tmp_path / "p.nasproj")
    assert main(["-p", project, "import", str(csv)]) == 0
    capsys.readouterr()
    assert main(["-p", project, "latency-tables", "--json"]) == 0
    tables = json.loads(capsys.readouterr().out)
    assert [(t["name"], t["device"], t["rows"]) for t in tables] == [
        ("wmt14ende_cpu_raspberrypi", "cpu_raspberrypi", 2000)
    ]


def test_latency_tables_of_a_project_without_any(tmp_path, capsys):
    assert main(["-p", str(tmp_path / "p.nasproj"), "latency-tables"]) == 0
    assert capsys.readouterr().out.startswith("(no latency tables")


def test_a_noise_free_table_is_ranked_past_tau_0_9(tmp_path, capsys, one_torch_thread):
    """Without the drift of HAT's GPU tables the same model and split reach the issue's 0.9."""
    csv_path = tmp_path / "wmt14ende_cpu_hand_all.csv"
    write_hand_made_table(csv_path, 400)
    argv = ["-p", str(tmp_path / "p.nasproj"), "latency-predictor", "train", str(csv_path)]
    assert main([*argv, "--name", "hand", *FASTER, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows"] == 40
    assert report["tau"] >= 0.9
    assert report["mape"] < 5


def test_train_on_the_projects_measurements_then_list(project, tmp_path, capsys, one_torch_thread):
    task = project.ensure_task(KNOWN_TASKS["wmt14ende"])
    archs = get_space("hat-wmt").sample_many(300, seed=4)
    project.add_architectures(task.name, archs, "sampled")
    device = "cpu:Hand-made CPU"
    project.add_measurements(
        Measurement(
            a.id,
            task.name,
            LATENCY_MS,
            hand_made_latency_ms(average_features(a)),
            "measured",
            device=device,
        )
        for a in archs
    )
    path = str(project.path)
    argv = ["-p", path, "latency-predictor", "train", "--from-project", "--task", "wmt14ende"]
    assert main([*argv, "--device", device, "--name", "own", *FASTER, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["task"], report["device"], report["rows"]) == ("wmt14ende", device, 30)
    assert report["tau"] >= 0.9

    assert main(["-p", path, "latency-predictor", "list", "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["name"] == "own" and listed["device"] == device
    assert listed["trained_on"] == f"wmt14ende measurements on {device}"
    assert listed["training_rows"] == 270
    assert (listed["held_out_tau"], listed["held_out_rows"]) == (report["tau"], 30)

    assert main(["-p", path, "latency-predictor", "list"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("own") and f"tau {report['tau']:.3f}" in line


def test_train_on_an_imported_table(tmp_path, capsys, one_torch_thread):
    csv_path = tmp_path / "wmt14ende_cpu_hand_all.csv"
    write_hand_made_table(csv_path, 60)
    project = str(tmp_path / "p.nasproj")
    assert main(["-p", project, "import", str(csv_path)]) == 0
    capsys.readouterr()
    argv = ["-p", project, "latency-predictor", "train", "--table", "wmt14ende_cpu_hand"]
    assert main([*argv, "--name", "imported", *FASTER, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["device"], report["trained_on"], report["rows"]) == (
        "cpu_hand",
        "wmt14ende_cpu_hand",
        6,
    )


def test_the_projects_measurements_of_an_unmeasured_device_are_an_error(project, capsys):
    project.ensure_task(KNOWN_TASKS["wmt14ende"])
    argv = ["-p", str(project.path), "latency-predictor", "train", "--from-project"]
    assert main([*argv, "--task", "wmt14ende", "--device", "tpu", "--name", "x"]) == 1
    assert capsys.readouterr().err.strip() == (
        "nasstudio: error: no latency of task 'wmt14ende' measured on 'tpu'; measured on: none"
    )


def test_train_needs_exactly_one_source(tmp_path, capsys):
    argv = ["-p", str(tmp_path / "p.nasproj"), "latency-predictor", "train", "--name", "x"]
    assert main(argv) == 1
    assert (
        "fit on one of: HAT CSV files, --table NAME, or --from-project" in capsys.readouterr().err
    )


@pytest.mark.parametrize("rate", ["0", "-0.001", "1.5", "nan", "fast"])
def test_a_learning_rate_out_of_range_is_refused(tmp_path, capsys, rate):
    argv = ["-p", str(tmp_path / "p.nasproj"), "latency-predictor", "train", "t.csv"]
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--name", "x", "--learning-rate", rate])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"--learning-rate: expected a number above 0 and at most 1, got '{rate}'" in err


def test_only_training_offers_the_job_options(capsys):
    def help_of(*command: str) -> str:
        with pytest.raises(SystemExit):
            main([*command, "--help"])
        return capsys.readouterr().out

    assert "--executor" in help_of("latency-predictor", "train")
    for command in (("latency-predictor",), ("latency-predictor", "eval"), ("latency-tables",)):
        assert "--executor" not in help_of(*command)
        assert "--ray-address" not in help_of(*command)
