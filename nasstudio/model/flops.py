"""FLOPs of a built model counted by torch, to check the analytic counts against."""

from __future__ import annotations

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from nasstudio.model.transformer import TransformerMT


def count_flops(model: TransformerMT, source_tokens: int = 30, target_tokens: int = 30) -> int:
    """FLOPs (2 x multiply-adds) of one forward pass, batch 1, counted by FlopCounterMode.

    The math attention backend is forced because FlopCounterMode has no formula for the fused
    CPU attention kernel (it would count attention as 0); train mode follows DESIGN's note
    that fused eval paths undercount. The model's mode is restored.
    """
    device = model.embed.weight.device
    token = (model.pad_id + 1) % model.vocab_size  # any non-padding id
    src = torch.full((1, source_tokens), token, device=device)
    tgt = torch.full((1, target_tokens), token, device=device)
    was_training = model.training
    model.train()
    try:
        counter = FlopCounterMode(display=False)
        with counter, sdpa_kernel(SDPBackend.MATH), torch.no_grad():
            model(src, tgt)
    finally:
        model.train(was_training)
    return counter.get_total_flops()
