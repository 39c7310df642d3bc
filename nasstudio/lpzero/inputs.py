"""Proxy inputs of a network: one forward/backward pass on one fixed minibatch, read by hooks.

The minibatch is fixed and needs no download: token ids drawn, with a fixed seed, from a Zipf
distribution over the vocabulary (probability of id r proportional to 1/(r+1)). Word
frequencies of English text follow Zipf's law, and the LTS vocabulary is ordered by frequency
(the adaptive embedding's clusters rely on it), so the batch has the token statistics of
English text. Real text would need the benchmark's own WikiText-103 BPE tokenizer, which is
not part of this project. The batch depends only on the vocabulary size and the seed, so
every network sees the same tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass

import torch

from nasstudio.lpzero.benchmarks import GPT2Config
from nasstudio.lpzero.gpt2 import GPT2LM, build_gpt2

LayerInputs = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Minibatch:
    """The fixed batch: ``batch_size`` sequences of ``length`` tokens (plus one target)."""

    batch_size: int = 4
    length: int = 32
    seed: int = 0

    def tokens(self, n_token: int) -> torch.Tensor:
        ranks = torch.arange(1, n_token + 1, dtype=torch.float64)
        generator = torch.Generator().manual_seed(self.seed)
        draws = torch.multinomial(
            1.0 / ranks, self.batch_size * (self.length + 1), replacement=True, generator=generator
        )
        return draws.view(self.batch_size, self.length + 1)


def network_inputs(model: GPT2LM, tokens: torch.Tensor) -> list[LayerInputs]:
    """Per layer: ``act`` (FFN activations), ``q``/``k``/``v`` (projections, split into heads),
    ``softmax`` (attention maps), ``weight`` and ``grad`` (the FFN's first linear layer)."""
    captured: list[LayerInputs] = [{} for _ in model.blocks]
    handles = []
    for layer, block in enumerate(model.blocks):
        heads = block.attn.n_head
        for name, module, heads_split in (
            ("act", block.ffn.act, False),
            ("q", block.attn.q, True),
            ("k", block.attn.k, True),
            ("v", block.attn.v, True),
            ("softmax", block.attn.softmax, False),
        ):
            handles.append(
                module.register_forward_hook(_keep(captured[layer], name, heads_split and heads))
            )
    try:
        model.zero_grad(set_to_none=True)
        with torch.enable_grad():  # also when a caller scores candidates under no_grad
            model(tokens).backward()
    finally:
        for handle in handles:
            handle.remove()
    for layer, block in enumerate(model.blocks):
        captured[layer]["weight"] = block.ffn.fc.weight.detach().clone()
        captured[layer]["grad"] = block.ffn.fc.weight.grad.detach().clone()
    return captured


def _keep(store: LayerInputs, name: str, heads: int | bool) -> Callable:
    def hook(_module, _args, output: torch.Tensor) -> None:
        value = output.detach()
        if heads:  # (batch, length, d_model) -> (batch, heads, length, d_head)
            batch, length, d_model = value.shape
            value = value.view(batch, length, heads, d_model // heads).transpose(1, 2)
        store[name] = value.clone()

    return hook


def gpt2_inputs(
    config: GPT2Config, minibatch: Minibatch | None = None, seed: int = 0
) -> list[LayerInputs]:
    """The inputs of a freshly initialised GPT-2 (weights seeded by ``seed``) on the batch."""
    minibatch = minibatch or Minibatch()
    return network_inputs(build_gpt2(config, seed=seed), minibatch.tokens(config.n_token))


class InputCache:
    """Inputs of each network, computed on first use and then reused by every candidate
    (``enabled=False`` recomputes them each time, to measure what the cache saves). Any
    network family fits: ``compute`` runs its forward/backward pass."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self._inputs: dict[Hashable, list[LayerInputs]] = {}
        self.computed = 0

    def get(self, key: Hashable, compute: Callable[[], list[LayerInputs]]) -> list[LayerInputs]:
        if key in self._inputs:
            return self._inputs[key]
        inputs = compute()
        self.computed += 1
        if self.enabled:
            self._inputs[key] = inputs
        return inputs
