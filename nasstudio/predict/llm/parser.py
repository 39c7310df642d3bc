"""Reading a BLEU score out of an LLM's answer, and summarising several samples."""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

# A decimal number, not glued to a letter or digit before it (so "wmt14" or "v2" give nothing).
_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?(?![\w])")
# A number right after a "BLEU" label wins over earlier numbers (e.g. an echoed configuration).
_LABELLED = re.compile(r"BLEU\s*(?:score)?\s*(?:[:=]|is|of)?\s*", re.IGNORECASE)


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


def parse_bleu(text: str, low: float = 0.0, high: float = 100.0) -> ParsedAnswer:
    """The first number in [low, high] in ``text``, preferring one labelled ``BLEU``."""
    for match in _LABELLED.finditer(text):
        number = _NUMBER.match(text, match.end())
        if number:
            value = _to_float(number.group())
            if value is not None and low <= value <= high:
                return ParsedAnswer(text, value)
    numbers = [v for v in map(_to_float, _NUMBER.findall(text)) if v is not None]
    for value in numbers:
        if low <= value <= high:
            return ParsedAnswer(text, value)
    if not numbers:
        return ParsedAnswer(text, None, f"no number in the answer {_excerpt(text)}")
    shown = ", ".join(f"{v:g}" for v in numbers[:5])
    return ParsedAnswer(
        text, None, f"no number within [{low:g}, {high:g}] in the answer (found {shown})"
    )


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
