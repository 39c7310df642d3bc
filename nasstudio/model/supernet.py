"""HAT's weight-sharing SuperTransformer and the helpers to train and score it.

The weights are allocated once at the largest sizes of a SearchSpace (widest embeddings,
widest FFN in every layer, most layers; q/k/v at the space's qkv_dim). A sub-architecture
computes with the leading slices of every weight (embedding columns ``[:, :dim]``, layer norm
``[:dim]``, linear ``W[:out, :in]`` and ``bias[:out]``) and with the first N encoder and
decoder layers. Training: HAT samples one random sub-architecture per step; the sandwich rule
(BigNAS) accumulates the gradients of the largest, the smallest and a random one per step.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor

from nasstudio.model.loss import Batch, token_cross_entropy, validation_loss
from nasstudio.model.transformer import TransformerMT
from nasstudio.space import Architecture, SearchSpace


def _attended(k: int) -> int:
    return 1 if k == -1 else k + 1


def _extreme_architecture(space: SearchSpace, pick: Callable[..., Any]) -> Architecture:
    """Every choice taken by ``pick`` (min or max)."""
    enc = pick(space.encoder_layer_nums)
    dec = pick(space.decoder_layer_nums)
    arbitrary = pick((k for k in space.arbitrary_attn if _attended(k) <= enc), key=_attended)
    return Architecture(
        encoder_embed_dim=pick(space.encoder_embed_dims),
        decoder_embed_dim=pick(space.decoder_embed_dims),
        encoder_ffn_dims=[pick(space.encoder_ffn_dims)] * enc,
        encoder_heads=[pick(space.encoder_heads)] * enc,
        decoder_ffn_dims=[pick(space.decoder_ffn_dims)] * dec,
        decoder_heads=[pick(space.decoder_heads)] * dec,
        decoder_cross_heads=[pick(space.cross_heads)] * dec,
        decoder_arbitrary_attn=[arbitrary] * dec,
        qkv_dim=space.qkv_dim,
    )


def largest_architecture(space: SearchSpace) -> Architecture:
    """Every choice at its maximum (most heads, most encoder layers attended)."""
    return _extreme_architecture(space, max)


def smallest_architecture(space: SearchSpace) -> Architecture:
    """Every choice at its minimum (fewest heads, the last encoder layer attended only)."""
    return _extreme_architecture(space, min)


def hat_super_embed_dims(space: SearchSpace, arch: Architecture) -> tuple[int, int]:
    """The encoder and decoder widths of the SuperTransformer inside which HAT trains ``arch``
    as a SubTransformer (its ``subtransformer/common.yml``): the space's largest, or arch's
    own where arch is wider (outside the space)."""
    return (
        max(*space.encoder_embed_dims, arch.encoder_embed_dim),
        max(*space.decoder_embed_dims, arch.decoder_embed_dim),
    )


def sandwich_archs(space: SearchSpace, rng: random.Random) -> list[Architecture]:
    """The sandwich rule's sub-architectures for one step: largest, smallest, one random."""
    return [largest_architecture(space), smallest_architecture(space), space.sample(rng)]


class SuperTransformer(TransformerMT):
    """A TransformerMT allocated at a space's largest sizes that computes any sub-architecture.

    ``set_active(arch)`` (or ``with supernet.using(arch):``) chooses the sub-architecture that
    ``forward``, ``encode``, incremental decoding, ``greedy`` and ``beam_search`` compute.
    Any architecture that fits the allocated weights is accepted, even outside the space.
    """

    def __init__(
        self,
        space: SearchSpace,
        vocab_size: int,
        *,
        pad_id: int = 0,
        bos_id: int = 1,
        eos_id: int = 2,
        dropout: float = 0.1,
        attention_dropout: float = 0.0,
    ) -> None:
        super().__init__(
            largest_architecture(space),
            vocab_size,
            pad_id=pad_id,
            bos_id=bos_id,
            eos_id=eos_id,
            dropout=dropout,
            attention_dropout=attention_dropout,
        )
        self.space = space

    def set_active(self, arch: Architecture) -> None:
        """Compute ``arch`` from now on; ValueError if it does not fit the weights."""
        self._activate(arch)

    @contextmanager
    def using(self, arch: Architecture) -> Iterator[SuperTransformer]:
        """Compute ``arch`` inside the block; the previous sub-architecture is restored."""
        previous = self.arch
        self.set_active(arch)
        try:
            yield self
        finally:
            self.set_active(previous)

    def extract(self, arch: Architecture) -> TransformerMT:
        """A standalone TransformerMT for ``arch`` whose weights are copies of the slices; it
        keeps the supernet's widths as its super widths, so it computes what ``arch`` computes
        inside the supernet (positions, dropout)."""
        model = TransformerMT(
            arch,
            self.vocab_size,
            pad_id=self.pad_id,
            bos_id=self.bos_id,
            eos_id=self.eos_id,
            dropout=self.dropout,
            attention_dropout=self.attention_dropout,
            super_embed_dims=self.super_embed_dims,
        )
        model.to(device=self.embed.weight.device, dtype=self.embed.weight.dtype)
        own = dict(self.named_parameters())
        with torch.no_grad():
            # Same module names on both sides; every sub-weight is the leading block.
            for name, param in model.named_parameters():
                param.copy_(own[name][tuple(slice(0, n) for n in param.shape)])
        return model

    def score(self, arch: Architecture, batches: Iterable[Batch]) -> float:
        """HAT's supernet proxy: ``arch``'s validation loss (nats per token; lower is better)."""
        with self.using(arch):
            return validation_loss(self, batches)


def sandwich_backward(
    supernet: SuperTransformer,
    archs: Sequence[Architecture],
    batch: Batch,
    *,
    label_smoothing: float = 0.0,
    autocast_dtype: torch.dtype | None = None,
    scale: Callable[[Tensor], Tensor] | None = None,
) -> float:
    """Accumulate into ``.grad`` the gradients of every sub-architecture's mean token loss on
    ``batch`` (summed, as in BigNAS's sandwich rule); return the mean of the losses.

    The caller zeroes the gradients before and steps the optimizer after; with one random
    architecture this is HAT's own training step. ``autocast_dtype`` runs the forward passes
    under autocast on the supernet's device; ``scale`` (e.g. ``GradScaler.scale``) is applied
    to each loss before its backward pass.
    """
    src, tgt_in, tgt_out = batch
    device_type = supernet.embed.weight.device.type
    losses: list[Tensor] = []
    for arch in archs:
        with supernet.using(arch):
            with torch.autocast(device_type, autocast_dtype, enabled=autocast_dtype is not None):
                logits = supernet(src, tgt_in)
            loss = token_cross_entropy(logits, tgt_out, supernet.pad_id, label_smoothing)
            (scale(loss) if scale is not None else loss).backward()
        losses.append(loss.detach())
    return float(torch.stack(losses).mean())
