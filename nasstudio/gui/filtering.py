"""The browser's filter expressions, evaluated on whole numpy columns (no Qt here).

For number columns, ``>25``, ``<=3.2``, ``=6``, ``!=4`` compare numerically and may be
combined (``>=25 <26`` keeps both); anything else is a case-insensitive substring of the
displayed text, as for the text columns. Missing values never pass a comparison.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable

import numpy as np
import pandas as pd

_CONDITION = re.compile(r"\s*(>=|<=|!=|==|=|>|<)\s*([^\s<>=!]+)")
_OPERATORS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "=": operator.eq,
    "==": operator.eq,
    "!=": operator.ne,
}


class FilterError(ValueError):
    """A filter the user typed that cannot be read; the message says what was expected."""


def is_comparison(text: str) -> bool:
    return text.lstrip()[:1] in ("<", ">", "=", "!")


def _comparisons(text: str) -> list[tuple[str, float]]:
    conditions, position = [], 0
    for match in _CONDITION.finditer(text):
        if match.start() != position:
            break
        op, number = match.groups()
        try:
            conditions.append((op, float(number)))
        except ValueError:
            raise FilterError(f"expected a number after '{op}', got '{number}'") from None
        position = match.end()
    if text[position:].strip() or not conditions:
        raise FilterError(f"cannot read '{text.strip()}': use e.g. >25, <=3.2 or >=25 <26")
    return conditions


def compare(values: np.ndarray, text: str) -> np.ndarray:
    """Rows of the float array ``values`` that meet every comparison in ``text``."""
    mask = ~np.isnan(values)
    with np.errstate(invalid="ignore"):
        for op, number in _comparisons(text):
            mask &= _OPERATORS[op](values, number)
    return mask


def contains(texts: np.ndarray, text: str) -> np.ndarray:
    """Rows whose text contains ``text``, ignoring case."""
    series = pd.Series(texts, dtype="object")
    return series.str.contains(text.strip(), case=False, regex=False, na=False).to_numpy(bool)


def filter_mask(
    values: np.ndarray, text: str, format_value: Callable[[float], str] | None = None
) -> np.ndarray | None:
    """Which rows pass ``text``; None when the filter is blank (all pass).

    ``format_value`` marks a number column: it turns a value into the text the user sees, for
    substring matching when ``text`` is not a comparison.
    """
    if not text.strip():
        return None
    if format_value is None:
        return contains(values, text)
    if is_comparison(text):
        return compare(values, text)
    return contains(np.array([format_value(v) for v in values], dtype=object), text)
