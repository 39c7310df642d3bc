"""Greedy and beam-search decoding with the incremental decoder (key/value cache)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

if TYPE_CHECKING:
    from nasstudio.model.transformer import DecoderState, TransformerMT


@contextmanager
def _inference(model: TransformerMT) -> Iterator[None]:
    """Eval mode and no autograd for the duration; the caller's mode is restored."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)


def _next_logits(model: TransformerMT, tokens: Tensor, state: DecoderState) -> Tensor:
    """Next-token logits with padding and BOS ruled out (they are never generated)."""
    logits = model.decode_step(tokens, state)
    logits[:, model.pad_id] = -math.inf
    if model.bos_id != model.eos_id:  # fairseq-style vocabularies start with EOS
        logits[:, model.bos_id] = -math.inf
    return logits


def greedy_search(model: TransformerMT, src: Tensor, max_len: int) -> list[list[int]]:
    """Most likely next token at every step; per sentence the ids before the first EOS."""
    batch = src.size(0)
    steps: list[Tensor] = []
    with _inference(model):
        state = model.start_decoding(model.encode(src))
        tokens = src.new_full((batch,), model.bos_id)
        finished = torch.zeros(batch, dtype=torch.bool, device=src.device)
        for _ in range(max_len):
            tokens = _next_logits(model, tokens, state).argmax(dim=-1)
            steps.append(tokens)
            finished |= tokens.eq(model.eos_id)
            if finished.all():
                break
    rows = torch.stack(steps, dim=1).tolist() if steps else [[] for _ in range(batch)]
    return [row[: row.index(model.eos_id)] if model.eos_id in row else row for row in rows]


def beam_search(
    model: TransformerMT, src: Tensor, beam: int, max_len: int, length_penalty: float
) -> list[list[int]]:
    """fairseq-style beam search; per sentence the best finished hypothesis (no BOS/EOS).

    Each step ranks the 2 x beam best extensions of a sentence's live hypotheses; those that
    end in EOS are finished with score sum(log p) / (length incl. EOS) ** length_penalty, the
    best others stay live. A sentence stops once it has ``beam`` finished hypotheses; after
    ``max_len`` tokens every live hypothesis is ended. With beam 1 this is greedy search.
    """
    if beam < 1:
        raise ValueError(f"beam must be at least 1, got {beam}")
    batch, eos = src.size(0), model.eos_id
    rows = batch * beam
    device = src.device
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(batch)]
    with _inference(model):
        encoder_out = model.encode(src)
        state = model.start_decoding(
            encoder_out.index_select(torch.arange(batch, device=device).repeat_interleave(beam))
        )
        history = src.new_empty((rows, 0))
        last = src.new_full((rows,), model.bos_id)
        # One live hypothesis per sentence at the start; the other rows are placeholders.
        scores = torch.full((batch, beam), -math.inf, device=device)
        scores[:, 0] = 0.0
        for step in range(max_len + 1):
            logp = F.log_softmax(_next_logits(model, last, state).float(), dim=-1)
            if step == max_len:
                logp = _only_eos(logp, eos)
            vocab = logp.size(-1)
            total = (scores.view(rows, 1) + logp).view(batch, beam * vocab)
            top_scores, top_ids = total.topk(min(2 * beam, beam * vocab), dim=-1)
            keep: list[tuple[float, int, int]] = []
            norm = (step + 1) ** length_penalty
            # One transfer per step for the bookkeeping in Python.
            for b, (row_scores, row_ids) in enumerate(
                zip(top_scores.tolist(), top_ids.tolist(), strict=True)
            ):
                candidates = [
                    (score, b * beam + flat // vocab, flat % vocab)
                    for score, flat in zip(row_scores, row_ids, strict=True)
                ]
                live = _advance(candidates, history, finished[b], beam, eos, norm)
                # Dead placeholders (score -inf) keep every sentence at ``beam`` rows.
                keep += live + [(-math.inf, b * beam, eos)] * (beam - len(live))
            if step == max_len or all(len(f) >= beam for f in finished):
                break
            index = torch.tensor([row for _, row, _ in keep], device=device)
            last = torch.tensor([token for _, _, token in keep], device=device)
            scores = torch.tensor([s for s, _, _ in keep], device=device).view(batch, beam)
            state.reorder_hypotheses(index)
            history = torch.cat([history[index], last[:, None]], dim=1)
    return [max(f, key=lambda hyp: hyp[0])[1] if f else [] for f in finished]


def _only_eos(logp: Tensor, eos: int) -> Tensor:
    forced = torch.full_like(logp, -math.inf)
    forced[:, eos] = logp[:, eos]
    return forced


def _advance(
    candidates: list[tuple[float, int, int]],
    history: Tensor,
    finished: list[tuple[float, list[int]]],
    beam: int,
    eos: int,
    length_norm: float,
) -> list[tuple[float, int, int]]:
    """Finish one sentence's EOS candidates (score, row, token), best first; return the
    hypotheses that stay live (none once the sentence has ``beam`` finished ones)."""
    live: list[tuple[float, int, int]] = []
    for score, row, token in candidates:
        if len(finished) >= beam or len(live) == beam or score == -math.inf:
            break
        if token == eos:
            finished.append((score / length_norm, history[row].tolist()))
        else:
            live.append((score, row, token))
    return [] if len(finished) >= beam else live
