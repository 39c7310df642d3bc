"""FlexiBERT networks: parameter counts against the benchmark's CSV and a hand count, the
linear transforms against scipy, the fixed masked batch, the proxy inputs of each layer kind,
the classic proxies, and the found proxy on a fixed subset."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest
import scipy.fft
import torch

from nasstudio.lpzero.benchmarks import BenchmarkFormatError, FlexiBertArch, read_flexibert
from nasstudio.lpzero.expr import parse
from nasstudio.lpzero.flexibert import (
    CLS_ID,
    MASK_ID,
    SEP_ID,
    LinearTransform,
    MaskedMinibatch,
    count_parameters,
    flexibert_classic,
    flexibert_config,
    flexibert_inputs,
)
from nasstudio.lpzero.search import rank_correlations
from tests.conftest import require_refdata

FLEXIBERT = ("lpzero", "flexibert")


def _layer(operation: str, parameter, heads: int, ffn_dim: int, ffn_layers: int) -> dict:
    return {
        "operation_type": operation,
        "operation_parameter": parameter,
        "num_operation_heads": heads,
        "feed_forward_dimension": ffn_dim,
        "num_feed_forward": ffn_layers,
    }


# One layer of each kind, hidden size 128 (the embedding width, so no projection).
MIXED = FlexiBertArch(
    7,
    128,
    (_layer("SA", "WMA", 2, 256, 2), _layer("LT", "DCT", 2, 256, 1), _layer("DSC", 5, 4, 256, 1)),
    {"glue": 70.0},
)


def test_parameter_counts_equal_the_benchmark_csv_for_all_500():
    archs = read_flexibert(require_refdata(*FLEXIBERT, "BERT_benchmark.json"))
    with require_refdata(*FLEXIBERT, "BERT_results_activation_lpzero.csv").open() as rows:
        expected = {
            int(row["ID"]): int(float(row["Number of Parameters"])) for row in csv.DictReader(rows)
        }
    # The reference code built every network with hidden size 256 and FFN width 1,024.
    counts = {a.arch_id: count_parameters(flexibert_config(a, reference_sizes=True)) for a in archs}
    assert counts == expected


def test_parameter_count_of_the_stated_sizes_by_hand():
    embeddings = 30522 * 128 + 512 * 128 + 2 * 128 + 2 * 128  # words, positions, types, norm
    linear = lambda n_in, n_out: n_in * n_out + n_out  # noqa: E731
    norm = 2 * 128
    # SA WMA: q, k, v, the bias-free weight, the output projection; FFN 128-256-256-128.
    sa = 3 * linear(128, 128) + 128 * 128 + linear(128, 128) + norm
    sa += linear(128, 256) + linear(256, 256) + linear(256, 128) + norm
    # LT: one input projection, no output projection; FFN 128-256-128.
    lt = linear(128, 128) + linear(128, 256) + linear(256, 128) + norm
    # DSC, 4 heads of 32: 2 attention heads (q, k, v of width 64), a depthwise (128 x 5) and
    # pointwise (128 -> 64, bias apart) convolution, the kernel predictor (64 -> 2 heads x 5),
    # the convolution's value projection (128 -> 64), the output projection.
    dsc = 3 * linear(128, 64) + 128 * 5 + 128 * 64 + 64 + linear(64, 10) + linear(128, 64)
    dsc += linear(128, 128) + norm + linear(128, 256) + linear(256, 128) + norm
    assert count_parameters(flexibert_config(MIXED)) == embeddings + sa + lt + dsc == 4395722


@pytest.mark.parametrize("kind", ["DFT", "DCT"])
def test_linear_transforms_equal_scipys_per_head(kind):
    transform = LinearTransform(hidden_size=8, heads=2, kind=kind)
    with torch.no_grad():
        transform.input.weight.copy_(torch.eye(8))
        transform.input.bias.zero_()
    x = torch.randn(1, 5, 8, dtype=torch.float64)
    transform.double()
    with torch.no_grad():
        out = transform(x)[0].numpy()
    for head in range(2):
        block = x[0, :, 4 * head : 4 * head + 4].numpy()
        expected = scipy.fft.fft2(block).real if kind == "DFT" else scipy.fft.dctn(block, type=2)
        np.testing.assert_allclose(out[:, 4 * head : 4 * head + 4], expected, atol=1e-10)


def test_masked_minibatch_is_fixed_with_cls_sep_and_masked_targets():
    batch = MaskedMinibatch(batch_size=3, length=22, mask_fraction=0.15, seed=4)
    tokens, labels = batch.tokens_and_labels()
    again, _ = MaskedMinibatch(
        batch_size=3, length=22, mask_fraction=0.15, seed=4
    ).tokens_and_labels()
    assert torch.equal(tokens, again)
    assert tokens.shape == labels.shape == (3, 22)
    assert (tokens[:, 0] == CLS_ID).all() and (tokens[:, -1] == SEP_ID).all()
    masked = tokens == MASK_ID
    assert masked.sum(1).tolist() == [3, 3, 3]  # 15 % of the 20 word pieces
    assert (labels[masked] >= 1996).all() and (labels[~masked] == -100).all()
    other, _ = MaskedMinibatch(batch_size=3, length=22, seed=5).tokens_and_labels()
    assert not torch.equal(tokens, other)


def test_inputs_have_attention_entries_only_on_attention_layers():
    entries = flexibert_inputs(MIXED, MaskedMinibatch(batch_size=2, length=10))
    # SA: attention; q, k, v, WMA's weight, output; FFN in, FFN stack, FFN out.
    # LT: input projection; FFN in, out. DSC: attention; q, k, v, kernel predictor,
    # convolution values, output; FFN in, out.
    assert len(entries) == 9 + 3 + 9
    attention = [e for e in entries if "softmax" in e]
    assert [sorted(e) for e in attention] == [["k", "q", "softmax", "v"]] * 2
    linear = [e for e in entries if "softmax" not in e]
    assert all(sorted(e) == ["act", "grad", "weight"] for e in linear)
    sa, dsc = attention
    assert sa["q"].shape == sa["k"].shape == (2, 2, 10, 64)  # batch, heads, length, width
    assert sa["softmax"].shape == (2, 2, 10, 10)
    assert sa["softmax"].sum(-1).allclose(torch.ones(2, 2, 10))
    assert dsc["q"].shape == (2, 2, 10, 32)  # half of the 4 heads of 32 attend
    lt_input, lt_ffn_in = entries[9], entries[10]
    # A linear layer keeps its first 32 output units (of 128 and of 256 here).
    assert lt_input["weight"].shape == lt_input["grad"].shape == (32, 128)
    assert lt_ffn_in["weight"].shape == (32, 128) and lt_ffn_in["act"].shape == (2, 10, 32)
    assert lt_ffn_in["grad"].abs().sum() > 0
    # Seeded: the same network and batch give the same inputs.
    again = flexibert_inputs(MIXED, MaskedMinibatch(batch_size=2, length=10))
    assert torch.equal(again[-1]["grad"], entries[-1]["grad"])


def test_a_proxy_reading_softmax_skips_lt_layers():
    entries = flexibert_inputs(MIXED, MaskedMinibatch(batch_size=2, length=10))
    expression = parse("add(mean(softmax), mean(softmax))")
    maps = [float(e["softmax"].mean()) for e in entries if "softmax" in e]
    assert len(maps) == 2  # the SA and DSC layers
    assert expression.value(entries) == pytest.approx(2 * sum(maps) / 2)


def test_classic_proxies_are_finite_and_count_the_encoder():
    values = flexibert_classic(MIXED, MaskedMinibatch(batch_size=2, length=10))
    assert set(values) >= {"num_parameters", "snip", "grad_norm", "synflow", "head_confidence"}
    assert values["num_parameters"] == 4395722
    assert all(np.isfinite(v) and v > 0 for v in values.values())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"operation_type": "RNN"}, "operation_type must be one of SA, LT, DSC, got 'RNN'"),
        ({"operation_parameter": "DFT"}, "operation_parameter of SA must be SDP or WMA"),
        (
            {"operation_type": "DSC", "operation_parameter": "5"},
            "operation_parameter (kernel size) must be a positive integer, got '5'",
        ),
        ({"num_feed_forward": 0}, "num_feed_forward must be a positive integer"),
        ({"num_operation_heads": 3}, "hidden_size 128 is not divisible by num_operation_heads"),
    ],
)
def test_a_malformed_layer_is_named_by_record_and_layer(tmp_path, change, message):
    layers = [_layer("SA", "SDP", 2, 512, 1), _layer("SA", "SDP", 2, 512, 1) | change]
    model = {"hidden_size": 128, "nas_config": {"encoder_layers": layers}}
    record = {"id": 3, "scores": {"glue": 70.0}, "hparams": {"model_hparam_overrides": model}}
    path = tmp_path / "bert.json"
    path.write_text(json.dumps([record]))
    with pytest.raises(
        BenchmarkFormatError, match=re.escape(f"record 0, encoder layer 1: {message}")
    ):
        read_flexibert(path)


# The GP's best with the proxy summed over layers instead of averaged (bench_flexibert.py
# --over-layers sum: seed 2, 60 architectures, population 80, 300 iterations, 173 s): rho 0.884,
# tau 0.689 on all 500 against GLUE (#params: 0.676 / 0.485 as built, 0.652 / 0.454 in the
# reference CSV). Averaged as Expression.value does, the same search's best reaches rho 0.444
# on its sample and 0.229 (tau 0.155) on all 500: the depth, GLUE's main factor (rho 0.83),
# is invisible to a mean over layers.
FOUND_PROXY = "layersum(mul(frobenius_norm(minmax(grad)), l1_norm(logsoftmax(act))))"


def test_found_proxy_summed_over_layers_ranks_a_fixed_subset_as_in_the_search():
    archs = read_flexibert(require_refdata(*FLEXIBERT, "BERT_benchmark.json"))[::50]
    proxy = parse(FOUND_PROXY)
    values = [proxy.value(flexibert_inputs(arch)) for arch in archs]
    _, tau = rank_correlations(values, [arch.ground_truth for arch in archs])
    assert tau > 0.7  # 0.778 measured on these 10 when it was found
