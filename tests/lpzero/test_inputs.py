"""Proxy inputs from one forward/backward pass on the fixed minibatch."""

from __future__ import annotations

from functools import partial

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


def test_inputs_have_the_shapes_of_each_layer():
    tokens = Minibatch(batch_size=2, length=5).tokens(CONFIG.n_token)
    layers = network_inputs(build_gpt2(CONFIG), tokens)
    assert len(layers) == 2
    for layer, (heads, inner) in enumerate(zip(CONFIG.n_head, CONFIG.d_inner, strict=True)):
        shapes = {name: tuple(t.shape) for name, t in layers[layer].items()}
        head_dim = CONFIG.d_model // heads
        assert shapes == {
            "act": (2, 5, inner),
            "q": (2, heads, 5, head_dim),
            "k": (2, heads, 5, head_dim),
            "v": (2, heads, 5, head_dim),
            "softmax": (2, heads, 5, 5),
            "weight": (inner, CONFIG.d_model),
            "grad": (inner, CONFIG.d_model),
        }


def test_softmax_maps_are_causal_and_gradients_are_the_losss():
    tokens = Minibatch(batch_size=2, length=5).tokens(CONFIG.n_token)
    layers = network_inputs(build_gpt2(CONFIG, seed=1), tokens)
    maps = layers[0]["softmax"]
    assert torch.allclose(maps.sum(-1), torch.ones(2, 2, 5))
    assert torch.all(maps.triu(1) == 0)
    model = build_gpt2(CONFIG, seed=1)
    model(tokens).backward()
    assert torch.allclose(layers[1]["grad"], model.blocks[1].ffn.fc.weight.grad)
    assert torch.equal(layers[1]["weight"], model.blocks[1].ffn.fc.weight.detach())


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
