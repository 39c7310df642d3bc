"""Reading a BLEU score out of an LLM's answer, and summarising several samples."""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Collection, Sequence
from dataclasses import dataclass

# A decimal number, not glued to a letter or digit before it (so "wmt14" or "v2" give nothing).
_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?(?![\w])")
# A number right after a "BLEU" label wins over earlier numbers (e.g. an echoed configuration).
_LABELLED = re.compile(r"BLEU\s*(?:score)?\s*(?:[:=]|is|of)?\s*", re.IGNORECASE)
# A list marker: a whole number opening a line, then "." or ")" and text ("1. The task is").
_LIST_MARKER = re.compile(r"^[ \t]*(\d{1,3})[.)][ \t]+\S", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class ParsedAnswer:
    """The value read from ``raw`` (None when none could be read, with ``problem`` saying why)."""

    raw: str
    value: float | None
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class SampleSummary:
    mean: float
    median: float
    std: float | None  # sample standard deviation; None for a single sample


def parse_bleu(
    text: str, low: float = 0.0, high: float = 100.0, copied: Collection[float] = ()
) -> ParsedAnswer:
    """The BLEU prediction in ``text``: a number in [low, high] labelled ``BLEU``, else the
    first such number that is neither a list marker ("1. ...") nor one of ``copied`` (the
    numbers of the query's architecture lines, which a model may echo: 512, 3072, 6...)."""
    for match in _LABELLED.finditer(text):
        number = _NUMBER.match(text, match.end())
        if number:
            value = _to_float(number.group())
            if value is not None and low <= value <= high:
                return ParsedAnswer(text, value)
    markers = {m.start(1) for m in _LIST_MARKER.finditer(text)}
    copied = set(copied)
    found, skipped = [], []
    for match in _NUMBER.finditer(text):
        value = _to_float(match.group())
        if value is None:
            continue
        found.append(value)
        if not low <= value <= high:
            continue
        if match.start() in markers:
            skipped.append(f"{value:g} is a list marker")
        elif value in copied:
            skipped.append(f"{value:g} is copied from the architecture")
        else:
            return ParsedAnswer(text, value)
    if not found:
        return ParsedAnswer(text, None, f"no number in the answer {_excerpt(text)}")
    if skipped:
        return ParsedAnswer(
            text,
            None,
            f"no BLEU prediction in the answer ({'; '.join(list(dict.fromkeys(skipped))[:5])})",
        )
    shown = ", ".join(f"{v:g}" for v in found[:5])
    return ParsedAnswer(
        text, None, f"no number within [{low:g}, {high:g}] in the answer (found {shown})"
    )


def parse_llmas_answer(text: str) -> ParsedAnswer:
    """llmas's answer rule (gpt_scorer.py's extract_bleu_v1): the first whitespace-separated
    token read as a Python float, whatever its range, else nothing (llmas then sends the prompt
    again). Unlike llmas, "nan" and "inf" are refused: a prediction must be a finite number."""
    tokens = text.split()
    if not tokens:
        return ParsedAnswer(text, None, "the answer is empty")
    try:
        value = _to_float(tokens[0])
    except ValueError:
        return ParsedAnswer(text, None, f"the answer does not start with a number {_excerpt(text)}")
    if value is None:
        return ParsedAnswer(text, None, f"the answer starts with {tokens[0]!r}: not finite")
    return ParsedAnswer(text, value)


def numbers_in(text: str) -> frozenset[float]:
    """Every number of ``text`` (an architecture's lines: what an answer must not echo)."""
    return frozenset(v for v in map(_to_float, _NUMBER.findall(text)) if v is not None)


def summarise(values: Sequence[float]) -> SampleSummary:
    """Mean, median and (for two or more) sample standard deviation of parsed samples."""
    if not values:
        raise ValueError("no values to summarise")
    std = statistics.stdev(values) if len(values) > 1 else None
    return SampleSummary(statistics.fmean(values), statistics.median(values), std)


def _to_float(text: str) -> float | None:
    value = float(text)
    return value if math.isfinite(value) else None


def _excerpt(text: str, limit: int = 80) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")
