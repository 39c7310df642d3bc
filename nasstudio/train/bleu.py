"""Corpus BLEU with sacrebleu, with its signature for provenance: sacrebleu's default BLEU of
detokenised text, and the tokenised BLEU that HAT and llmas report.

HAT's ``configs/*/test.sh`` ("normal" BLEU, the one its papers and llmas quote) takes
fairseq's Moses-tokenised hypotheses and references, splits compounds with
``perl -ple 's{(\\S)-(\\S)}{$1 ##AT##-##AT## $2}g'`` and scores them with fairseq's ``score.py``:
corpus BLEU-4 over whitespace tokens, case-sensitive, no smoothing, fairseq's brevity penalty
(``min(1, exp(1 - ref/hyp))``). That is sacrebleu's BLEU with ``tokenize='none'`` and
``smooth_method='none'`` on the split text. nasstudio translates into detokenised text, so
both sides are tokenised first with sacrebleu's 13a tokeniser (mteval's, nearest to Moses
among what sacrebleu ships; it leaves already tokenised text almost as it is, and like Moses
without ``-a`` it keeps letter-letter hyphens inside words for the compound split to mark).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sacrebleu.metrics import BLEU
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

# HAT's test.sh compound splitting; like perl's s///g, matches do not overlap ("a-b-c" keeps
# its second hyphen).
_COMPOUND = re.compile(r"(\S)-(\S)")
_COMPOUND_SPLIT = r"\1 ##AT##-##AT## \2"
TOKENIZED_PROCEDURE = "13a tokenisation, compound split (\\S)-(\\S) -> \\1 ##AT##-##AT## \\2"


@dataclass(frozen=True, slots=True)
class BleuScore:
    score: float
    signature: str  # e.g. nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0
    sentences: int


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> BleuScore:
    """sacrebleu's default BLEU (13a tokenisation, mixed case) of detokenised text."""
    return _score(BLEU(), list(hypotheses), list(references))


def tokenized_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> BleuScore:
    """HAT's and llmas's tokenised BLEU (see the module docstring); the signature says
    ``tok:13a+compound-split``."""
    metric = BLEU(tokenize="none", smooth_method="none", force=True)
    score = _score(metric, split_compounds(hypotheses), split_compounds(references))
    signature = score.signature.replace("tok:none", "tok:13a+compound-split")
    return BleuScore(score.score, signature, score.sentences)


def split_compounds(lines: Sequence[str]) -> list[str]:
    """13a-tokenised ``lines`` with HAT's ``##AT##-##AT##`` compound splitting."""
    tokenize = Tokenizer13a()
    return [_COMPOUND.sub(_COMPOUND_SPLIT, tokenize(line.strip())) for line in lines]


def _score(metric: BLEU, hypotheses: list[str], references: list[str]) -> BleuScore:
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    score = metric.corpus_score(hypotheses, [references])
    return BleuScore(float(score.score), str(metric.get_signature()), len(hypotheses))
