"""Detokenised corpus BLEU with sacrebleu, with its signature for provenance."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sacrebleu.metrics import BLEU


@dataclass(frozen=True, slots=True)
class BleuScore:
    score: float
    signature: str  # e.g. nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0
    sentences: int


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> BleuScore:
    """sacrebleu's default BLEU (13a tokenisation, mixed case) of detokenised text."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    metric = BLEU()
    score = metric.corpus_score(list(hypotheses), [list(references)])
    return BleuScore(float(score.score), str(metric.get_signature()), len(hypotheses))
