"""Token-count batching in the manner of fairseq's `--max-tokens`.

A split is encoded once (`encode_pairs`). `TokenBatcher` then sorts the examples by length,
with ties broken at random by the seed so equal-length examples mix, and packs them greedily
into batches whose padded size, batch size × max(source length, target length), stays within
`max_tokens`. The batches are formed once; each epoch visits all of them in an order shuffled
by (seed, epoch). Lengths count the eos (source, target output) or bos (target input) token.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from nasstudio.data.corpus import SentencePair
from nasstudio.data.vocab import BOS_ID, EOS_ID, PAD_ID, Vocabulary


@dataclass(frozen=True)
class EncodedPairs:
    """Subword ids of aligned sentences, without bos/eos."""

    src: list[list[int]]
    tgt: list[list[int]]

    def __len__(self) -> int:
        return len(self.src)


def encode_pairs(pairs: Sequence[SentencePair], vocab: Vocabulary) -> EncodedPairs:
    """Encode every pair once; batching and epochs then work on ids only."""
    return EncodedPairs(
        vocab.encode_many([s for s, _ in pairs]), vocab.encode_many([t for _, t in pairs])
    )


@dataclass(frozen=True, eq=False)
class Batch:
    """Padded (pad id 0) `torch.long` tensors of one batch."""

    src: torch.Tensor  # B × S: source ids + eos
    tgt_in: torch.Tensor  # B × T: bos + target ids (decoder input)
    tgt_out: torch.Tensor  # B × T: target ids + eos (what the decoder predicts)
    index: torch.Tensor  # B: positions of the examples in the EncodedPairs (and the pairs)
    ntokens: int  # target tokens, padding excluded

    def __len__(self) -> int:
        return self.src.shape[0]

    def to(self, device: torch.device | str) -> Batch:
        """The tensors on `device`; `index` stays on the CPU, it looks up references."""
        return Batch(
            self.src.to(device),
            self.tgt_in.to(device),
            self.tgt_out.to(device),
            self.index,
            self.ntokens,
        )


class TokenBatcher:
    """Batches of at most `max_tokens` padded tokens over an encoded split.

    Examples whose source or target exceeds `max_len` tokens (eos included) are dropped, not
    truncated, so no model is trained on a cut-off sentence; `dropped` counts them. Without
    `max_len`, an example that alone exceeds `max_tokens` is an error rather than a silent drop,
    or, with `oversized_alone` (evaluation scores every sentence), a batch of its own.
    With `shuffle=False` the batches come in length order every epoch (for evaluation).
    """

    def __init__(
        self,
        data: EncodedPairs,
        max_tokens: int,
        *,
        max_len: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        oversized_alone: bool = False,
    ) -> None:
        self.data, self.max_tokens, self.shuffle, self.seed = data, max_tokens, shuffle, seed
        src_len = np.fromiter((len(s) + 1 for s in data.src), dtype=np.int64, count=len(data))
        tgt_len = np.fromiter((len(t) + 1 for t in data.tgt), dtype=np.int64, count=len(data))
        size = np.maximum(src_len, tgt_len)
        keep = np.ones(len(data), bool) if max_len is None else size <= max_len
        self.dropped = int(len(data) - keep.sum())
        too_long = np.flatnonzero(keep & (size > max_tokens))
        if too_long.size and not oversized_alone:
            first = int(too_long[0])
            raise ValueError(
                f"example {first} has {size[first]} tokens, more than max_tokens={max_tokens}; "
                "raise max_tokens or set max_len to drop long examples"
            )
        self._batches = _pack(
            self._sorted(np.flatnonzero(keep), src_len, tgt_len), size, max_tokens
        )

    def _sorted(self, indices: np.ndarray, src_len: np.ndarray, tgt_len: np.ndarray) -> np.ndarray:
        if self.shuffle:
            indices = np.random.default_rng(self.seed).permutation(indices)
        # Stable sort: by padded size, then target, then source length; the permutation above
        # decides the order of equal-length examples.
        size = np.maximum(src_len[indices], tgt_len[indices])
        return indices[np.lexsort((src_len[indices], tgt_len[indices], size))]

    def __len__(self) -> int:
        return len(self._batches)

    def epoch(self, epoch: int = 0) -> Iterator[Batch]:
        """The batches of one epoch; the order depends only on (seed, epoch)."""
        count = len(self._batches)
        rng = np.random.default_rng((self.seed, epoch))
        order = rng.permutation(count) if self.shuffle else np.arange(count)
        for i in order:
            yield self._batch(self._batches[i])

    def _batch(self, indices: np.ndarray) -> Batch:
        src = [self.data.src[i] + [EOS_ID] for i in indices]
        tgt_in = [[BOS_ID, *self.data.tgt[i]] for i in indices]
        tgt_out = [[*self.data.tgt[i], EOS_ID] for i in indices]
        return Batch(
            _padded(src),
            _padded(tgt_in),
            _padded(tgt_out),
            torch.from_numpy(indices.astype(np.int64)),
            sum(len(t) for t in tgt_out),
        )


def _pack(order: np.ndarray, size: np.ndarray, max_tokens: int) -> list[np.ndarray]:
    """Greedy packing along ascending size: the last example always sets the padded width, and
    one over ``max_tokens`` ends up alone."""
    batches, start = [], 0
    for end, i in enumerate(order):
        if end > start and (end - start + 1) * size[i] > max_tokens:
            batches.append(order[start:end])
            start = end
    if start < len(order):
        batches.append(order[start:])
    return batches


def _padded(rows: list[list[int]]) -> torch.Tensor:
    out = np.full((len(rows), max(map(len, rows))), PAD_ID, dtype=np.int64)
    for row, ids in zip(out, rows, strict=True):
        row[: len(ids)] = ids
    return torch.from_numpy(out)
