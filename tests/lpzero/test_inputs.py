"""Proxy inputs from one forward/backward pass on the fixed minibatch."""

from __future__ import annotations

import math
from dataclasses import replace
from functools import partial

import pytest
import torch

from nasstudio.lpzero.benchmarks import GPT2Config
from nasstudio.lpzero.gpt2 import build_gpt2
from nasstudio.lpzero.inputs import InputCache, Minibatch, gpt2_inputs, network_inputs

CONFIG = GPT2Config(
    n_layer=2,
    d_model=8,
    n_head=(2, 4),
    d_inner=(12, 6),
    d_embed=8,
    div_val=2,
    cutoffs=(20, 40),
    n_token=50,
    n_positions=16,
    tie_projs=(False, True, True),
)


def test_minibatch_is_fixed_and_frequent_ids_come_first():
    batch = Minibatch(batch_size=3, length=10, seed=5)
    tokens = batch.tokens(50)
    assert tokens.shape == (3, 11)
    assert torch.equal(tokens, batch.tokens(50))
    assert tokens.min() >= 0 and tokens.max() < 50
    counts = torch.bincount(tokens.flatten(), minlength=50)
    assert counts[:10].sum() > counts[10:].sum()  # Zipf: the first 10 of 50 ids hold ~63 %


def test_inputs_have_the_shapes_of_each_attention_and_linear_layer():
    tokens = Minibatch(batch_size=2, length=5).tokens(CONFIG.n_token)
    layers = network_inputs(build_gpt2(CONFIG), tokens, max_units=None)
    assert len(layers) == 2 * 5  # per block: the attention, then GPT-2's 4 linear layers
    for block, (heads, inner) in enumerate(zip(CONFIG.n_head, CONFIG.d_inner, strict=True)):
        entries = layers[5 * block : 5 * block + 5]
        shapes = [{name: tuple(t.shape) for name, t in entry.items()} for entry in entries]
        d, head_dim = CONFIG.d_model, CONFIG.d_model // heads
        assert shapes[0] == {
            "q": (2, heads, 5, head_dim),
            "k": (2, heads, 5, head_dim),
            "v": (2, heads, 5, head_dim),
            "softmax": (2, heads, 5, 5),
        }
        # c_attn (q, k and v), attention output, FFN in, FFN out: (units out, units in)
        for entry, (out, into) in zip(
            shapes[1:], [(3 * d, d), (d, d), (inner, d), (d, inner)], strict=True
        ):
            assert entry == {"act": (2, 5, out), "weight": (out, into), "grad": (out, into)}


def test_linear_layers_keep_their_first_units_when_capped():
    tokens = Minibatch(batch_size=2, length=5).tokens(CONFIG.n_token)
    full = network_inputs(build_gpt2(CONFIG, seed=1), tokens, max_units=None)
    capped = network_inputs(build_gpt2(CONFIG, seed=1), tokens, max_units=3)
    fc = 3  # block 0: attention, c_attn, attention output, then the FFN's first layer
    assert capped[fc]["weight"].shape == (3, CONFIG.d_model)
    assert torch.equal(capped[fc]["weight"], full[fc]["weight"][:3])
    assert torch.equal(capped[fc]["grad"], full[fc]["grad"][:3])
    assert torch.equal(capped[fc]["act"], full[fc]["act"][..., :3])
    # c_attn keeps the first 3 units of each of q, k and v.
    d = CONFIG.d_model
    rows = [*range(3), *range(d, d + 3), *range(2 * d, 2 * d + 3)]
    assert torch.equal(capped[1]["weight"], full[1]["weight"][rows])
    assert torch.equal(capped[1]["act"], full[1]["act"][..., rows])
    assert torch.equal(capped[0]["q"], full[0]["q"])  # attention entries are whole


def test_residual_projections_start_smaller_with_depth():
    # GPT-2's init: std 0.02, and 0.02 / sqrt(2 * n_layer) = 0.01 for the 2 layers here.
    model = build_gpt2(replace(CONFIG, d_model=64, d_inner=(256, 256), n_head=(4, 4)), seed=0)
    assert model.blocks[0].attn.q.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert model.blocks[0].attn.out.weight.std().item() == pytest.approx(0.01, rel=0.05)
    assert model.blocks[1].ffn.proj.weight.std().item() == pytest.approx(0.01, rel=0.05)


def test_softmax_maps_are_causal_and_gradients_are_the_losss():
    tokens = Minibatch(batch_size=2, length=5).tokens(CONFIG.n_token)
    layers = network_inputs(build_gpt2(CONFIG, seed=1), tokens)
    maps = layers[0]["softmax"]
    assert torch.allclose(maps.sum(-1), torch.ones(2, 2, 5))
    assert torch.all(maps.triu(1) == 0)
    model = build_gpt2(CONFIG, seed=1)
    model(tokens).backward()
    fc = layers[5 + 3]  # block 1's FFN input layer
    assert torch.allclose(fc["grad"], model.blocks[1].ffn.fc.weight.grad)
    assert torch.equal(fc["weight"], model.blocks[1].ffn.fc.weight.detach())
    # c_attn's output starts with the attention's q, before the split into heads.
    q = layers[0]["q"].transpose(1, 2).reshape(2, 5, CONFIG.d_model)
    assert torch.equal(layers[1]["act"][..., : CONFIG.d_model], q)


def test_cache_computes_each_network_once():
    compute = partial(gpt2_inputs, CONFIG, Minibatch(batch_size=1, length=4))
    cache = InputCache()
    first = cache.get("a", compute)
    assert cache.get("a", compute) is first
    assert cache.computed == 1
    uncached = InputCache(enabled=False)
    uncached.get("a", compute)
    uncached.get("a", compute)
    assert uncached.computed == 2


def test_a_gpt2_with_a_short_context_reads_the_batch_cut_to_it():
    from nasstudio.lpzero.suites import gpt2_classic

    short = replace(CONFIG, n_positions=6)
    layers = gpt2_inputs(short, Minibatch(batch_size=2, length=32))
    assert layers[0]["softmax"].shape[-1] == 5  # 6 tokens: 5 inputs, each with its next
    assert all(math.isfinite(value) for value in gpt2_classic(short).values())
