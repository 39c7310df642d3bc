"""Token-level cross-entropy and validation loss of a translation model."""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor

from nasstudio.model.transformer import TransformerMT

Batch = tuple[Tensor, Tensor, Tensor]  # src, tgt_in, tgt_out (token ids, padded with pad_id)


def token_cross_entropy(
    logits: Tensor,
    tgt_out: Tensor,
    pad_id: int,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> Tensor:
    """Cross-entropy (nats) of ``logits`` (B x T x V) against ``tgt_out`` (B x T), padding
    ignored; ``reduction`` is "mean" over real tokens or "sum"."""
    return F.cross_entropy(
        logits.flatten(0, 1).float(),  # float: autocast logits lose precision in the softmax
        tgt_out.flatten(),
        ignore_index=pad_id,
        label_smoothing=label_smoothing,
        reduction=reduction,
    )


def validation_loss(model: TransformerMT, batches: Iterable[Batch]) -> float:
    """Mean cross-entropy per real target token over all ``batches`` (eval mode, no dropout).

    Deterministic for given weights and batches; the model's train/eval mode is restored.
    """
    device = model.embed.weight.device
    was_training = model.training
    model.eval()
    total, tokens = 0.0, 0
    try:
        with torch.inference_mode():
            for src, tgt_in, tgt_out in batches:
                src, tgt_in, tgt_out = (t.to(device) for t in (src, tgt_in, tgt_out))
                logits = model(src, tgt_in)
                loss = token_cross_entropy(logits, tgt_out, model.pad_id, reduction="sum")
                total += loss.item()
                tokens += int(tgt_out.ne(model.pad_id).sum())
    finally:
        model.train(was_training)
    if tokens == 0:
        raise ValueError("validation batches hold no target tokens")
    return total / tokens
