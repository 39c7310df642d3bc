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
from nasstudio.lpzero.gpt2 import GPT2LM, Block, build_gpt2

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

    def gpt2_tokens(self, config: GPT2Config) -> torch.Tensor:
        """The batch for a GPT-2, cut to its context (``n_positions``) when that is shorter."""
        return self.tokens(config.n_token)[:, : config.n_positions]


MAX_UNITS = 32
"""Output units kept per linear layer (see :func:`network_inputs`)."""


def network_inputs(
    model: GPT2LM, tokens: torch.Tensor, max_units: int | None = MAX_UNITS
) -> list[LayerInputs]:
    """Per block, as LPZero reads GPT-2: one entry of the attention's ``q``/``k``/``v``
    (projections, split into heads) and ``softmax`` (attention maps), then one entry per
    linear layer of GPT-2 (the fused q/k/v projection ``c_attn``, the attention output, the
    FFN's two layers) of its ``act`` (output), ``weight`` and ``grad``.

    A linear layer keeps only the first ``max_units`` output units of each projection
    (weight and gradient rows, output columns): the weights of a freshly initialised layer are
    drawn independently per unit, so these rows are a random sample of them, and means, spreads
    and per-row operations estimate the whole layer's; keeping every unit of 200 networks of up
    to 42 M parameters would need tens of GB. ``None`` keeps every unit."""
    keep = slice(max_units)
    attention: list[LayerInputs] = [{} for _ in model.blocks]
    outputs: dict[torch.nn.Module, torch.Tensor] = {}
    handles = []
    for layer, block in enumerate(model.blocks):
        heads = block.attn.n_head
        for name, module, heads_split in (
            ("q", block.attn.q, True),
            ("k", block.attn.k, True),
            ("v", block.attn.v, True),
            ("softmax", block.attn.softmax, False),
        ):
            handles.append(
                module.register_forward_hook(_keep(attention[layer], name, heads_split and heads))
            )
        for linear in (linear for group in _linear_layers(block) for linear in group):
            handles.append(linear.register_forward_hook(_keep_units(outputs, keep)))
    # Only the blocks' gradients are read: the vocabulary-sized tables' would double the pass.
    blocks = {id(p) for p in model.blocks.parameters()}
    untracked = [p for p in model.parameters() if p.requires_grad and id(p) not in blocks]
    try:
        model.zero_grad(set_to_none=True)
        for parameter in untracked:
            parameter.requires_grad_(False)
        with torch.enable_grad():  # also when a caller scores candidates under no_grad
            model(tokens).backward()
    finally:
        for parameter in untracked:
            parameter.requires_grad_(True)
        for handle in handles:
            handle.remove()
    captured = []
    for layer, block in enumerate(model.blocks):
        captured.append(attention[layer])
        for group in _linear_layers(block):
            captured.append(
                {
                    "act": torch.cat([outputs[linear] for linear in group], dim=-1),
                    "weight": torch.cat([linear.weight.detach()[keep] for linear in group]),
                    "grad": torch.cat([linear.weight.grad.detach()[keep] for linear in group]),
                }
            )
    return captured


def _linear_layers(block: Block) -> tuple[tuple[torch.nn.Linear, ...], ...]:
    """GPT-2's linear layers of a block; its ``c_attn`` is our three q/k/v projections."""
    attn, ffn = block.attn, block.ffn
    return ((attn.q, attn.k, attn.v), (attn.out,), (ffn.fc,), (ffn.proj,))


def _keep(store: LayerInputs, name: str, heads: int | bool) -> Callable:
    def hook(_module, _args, output: torch.Tensor) -> None:
        value = output.detach()
        if heads:  # (batch, length, d_model) -> (batch, heads, length, d_head)
            batch, length, d_model = value.shape
            value = value.view(batch, length, heads, d_model // heads).transpose(1, 2)
        store[name] = value.clone()

    return hook


def _keep_units(outputs: dict[torch.nn.Module, torch.Tensor], keep: slice) -> Callable:
    def hook(module, _args, output: torch.Tensor) -> None:
        outputs[module] = output.detach()[..., keep].clone()

    return hook


def gpt2_inputs(
    config: GPT2Config,
    minibatch: Minibatch | None = None,
    seed: int = 0,
    max_units: int | None = MAX_UNITS,
) -> list[LayerInputs]:
    """The inputs of a freshly initialised GPT-2 (weights seeded by ``seed``) on the batch."""
    minibatch = minibatch or Minibatch()
    model = build_gpt2(config, seed=seed)
    return network_inputs(model, minibatch.gpt2_tokens(config), max_units)


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
