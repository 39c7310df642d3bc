"""Readers of the LPZero benchmark files: the reference files parse, malformed ones are
named by file and line."""

from __future__ import annotations

import json

import pytest

from nasstudio.lpzero.benchmarks import (
    BenchmarkFormatError,
    read_flexibert,
    read_gpt2_archs,
    read_proxy_scores,
)
from tests.conftest import require_refdata

GPT2 = ("lpzero", "gpt2_wt103")


def test_gpt2_archs_file_reads_all_200_with_ground_truth():
    archs = read_gpt2_archs(require_refdata(*GPT2, "archs.jsonl"))
    assert len(archs) == 200
    first = archs[0]
    # The first line of the file, read by eye.
    assert first.arch_id == "config_0_j0"
    assert first.config.n_head == (2, 4, 4, 8, 8)
    assert first.config.d_inner == (1071, 640, 1286, 800, 1871)
    assert first.config.cluster_ends == (19997, 39997, 50264)
    assert first.ground_truth == pytest.approx(-45.022968707221274)


def test_reference_scores_and_flexibert_read():
    scores = read_proxy_scores(require_refdata(*GPT2, "reference_proxy_scores.json"))
    assert len(scores["snip"]) == 200
    assert scores["num_parameters"]["config_0_j0"] == 8505006
    bert = read_flexibert(require_refdata("lpzero", "flexibert", "BERT_benchmark.json"))
    assert len(bert) == 500
    assert bert[0].hidden_size == 256
    assert bert[0].ground_truth == pytest.approx(74.73375)
    assert bert[0].layers[0]["operation_type"] == "SA"


def _row(**config_changes) -> str:
    config = {"n_layer": 2, "d_model": 8, "n_head": [2, 4], "d_inner": [16, 8], "d_embed": 8}
    config |= {"div_val": 1, "n_token": 50, "cutoffs": [20, 40]} | config_changes
    return json.dumps({"id": "a", "model_config": config, "ppl": {"valid_ppl": 30.0}})


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("{not json", "not JSON"),
        (_row(n_head=[2]), "n_head has 1 values for 2 layers"),
        (_row(d_model=10, n_head=[4, 4]), "not divisible"),
        (_row(d_inner=[16, -1]), "d_inner must be a positive integer"),
        (json.dumps({"id": "a", "model_config": {}, "ppl": {}}), "model_config lacks n_layer"),
        (_row().replace('"valid_ppl": 30.0', '"test_ppl": 3'), "ppl.valid_ppl"),
    ],
)
def test_malformed_archs_line_is_named(tmp_path, bad_line, message):
    path = tmp_path / "archs.jsonl"
    path.write_text(_row() + "\n" + bad_line + "\n")
    with pytest.raises(BenchmarkFormatError) as error:
        read_gpt2_archs(path)
    assert f"{path}:2" in str(error.value)
    assert message in str(error.value)


def test_other_archs_file_of_the_same_format_reads(tmp_path):
    path = tmp_path / "other.jsonl"
    path.write_text(_row() + "\n\n" + _row(n_layer=1) + "\n")
    archs = read_gpt2_archs(path)
    assert [a.config.n_layer for a in archs] == [2, 1]
    assert archs[1].config.n_head == (2,)


def test_malformed_scores_are_named(tmp_path):
    path = tmp_path / "scores.json"
    path.write_text(json.dumps({"snip": {"a": "high"}}))
    with pytest.raises(BenchmarkFormatError, match="proxy 'snip', arch 'a'"):
        read_proxy_scores(path)
    path.write_text('{"snip":\n  {"a": 1,}}')
    with pytest.raises(BenchmarkFormatError, match=f"{path}:2"):
        read_proxy_scores(path)


def test_malformed_flexibert_record_is_named(tmp_path):
    path = tmp_path / "bert.json"
    good = {
        "id": 0,
        "scores": {"glue": 70.0},
        "hparams": {
            "model_hparam_overrides": {"hidden_size": 128, "nas_config": {"encoder_layers": []}}
        },
    }
    path.write_text(json.dumps([good, {"id": 1, "hparams": {}}]))
    with pytest.raises(BenchmarkFormatError, match="record 1: missing field scores"):
        read_flexibert(path)
    path.write_text(json.dumps([good]))
    assert read_flexibert(path)[0].ground_truth == 70.0
