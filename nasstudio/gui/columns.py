"""Readable names, units, order and number formats for the columns of ``Project.table``.

Shared by the browser (headers, cells, filter), the Pareto view (axis combos, axis labels) and
the detail pane, so a column reads the same everywhere. No Qt here.

A key is ``metric``, ``metric[test set]`` (a score on another test set than the metric's
reference one, see ``Project.table``), either with ``@device``, or ``pred:metric@predictor``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from nasstudio.space import FEATURE_NAMES
from nasstudio.store import (
    BLEU_TEST,
    BLEU_TEST_TOKENIZED,
    BLEU_VALID,
    GFLOPS,
    LATENCY_MS,
    PARAMS,
    PARAMS_NO_EMB,
)

ID, ORIGIN = "id", "origin"
TEXT_COLUMNS = (ID, ORIGIN)
PREDICTION_PREFIX = "pred:"
SOURCE_PREFIX = "source:"

# Two-line header and a tooltip for each of the 10 averaged HAT features.
_FEATURES: dict[str, tuple[str, str]] = {
    "encoder_embed_dim": ("Enc\nembed", "Encoder embedding dimension"),
    "encoder_layer_num": ("Enc\nlayers", "Number of encoder layers"),
    "encoder_ffn_embed_dim_avg": ("Enc FFN\navg", "Encoder FFN hidden dimension, layer average"),
    "encoder_self_attention_heads_avg": (
        "Enc heads\navg",
        "Encoder self-attention heads, layer average",
    ),
    "decoder_embed_dim": ("Dec\nembed", "Decoder embedding dimension"),
    "decoder_layer_num": ("Dec\nlayers", "Number of decoder layers"),
    "decoder_ffn_embed_dim_avg": ("Dec FFN\navg", "Decoder FFN hidden dimension, layer average"),
    "decoder_self_attention_heads_avg": (
        "Dec heads\navg",
        "Decoder self-attention heads, layer average",
    ),
    "decoder_ende_attention_heads_avg": (
        "Cross heads\navg",
        "Decoder encoder-decoder (cross) attention heads, layer average",
    ),
    "decoder_arbitrary_ende_attn_avg": (
        "Arb. attn\navg",
        "Arbitrary encoder-decoder attention: how many of the last encoder layers each decoder "
        "layer attends to, layer average",
    ),
}

# metric -> (short name, unit, display scale, format)
_METRICS: dict[str, tuple[str, str, float, str]] = {
    BLEU_VALID: ("BLEU valid", "", 1.0, ".2f"),
    BLEU_TEST: ("BLEU test", "", 1.0, ".2f"),
    BLEU_TEST_TOKENIZED: ("BLEU test tok.", "", 1.0, ".2f"),
    GFLOPS: ("GFLOPs", "", 1.0, ".3f"),
    PARAMS: ("Params", "M", 1e-6, ".2f"),
    PARAMS_NO_EMB: ("Params w/o emb", "M", 1e-6, ".2f"),
    LATENCY_MS: ("Latency", "ms", 1.0, ".1f"),
}
_METRIC_ORDER = (
    BLEU_VALID,
    BLEU_TEST,
    BLEU_TEST_TOKENIZED,
    GFLOPS,
    PARAMS,
    PARAMS_NO_EMB,
    LATENCY_MS,
)
_BLEU_METRICS = (BLEU_VALID, BLEU_TEST, BLEU_TEST_TOKENIZED)
_COST_METRICS = (LATENCY_MS, GFLOPS, PARAMS, PARAMS_NO_EMB)


def split_key(key: str) -> tuple[bool, str, str]:
    """``pred:bleu_valid@HAT`` -> (True, 'bleu_valid', 'HAT'); ``latency_ms@cpu`` ->
    (False, 'latency_ms', 'cpu'); ``gflops`` -> (False, 'gflops', ''); ``bleu_test[wmt]`` ->
    (False, 'bleu_test[wmt]', '')."""
    predicted = key.startswith(PREDICTION_PREFIX)
    body = key.removeprefix(PREDICTION_PREFIX)
    at = body.find("@", body.find("]") + 1)  # a test set's name may hold an '@'
    metric, where = (body, "") if at < 0 else (body[:at], body[at + 1 :])
    return predicted, metric, where


def split_test_set(metric: str) -> tuple[str, str]:
    """``bleu_test[newstest2014]`` -> ('bleu_test', 'newstest2014'); ``bleu_test`` ->
    ('bleu_test', '')."""
    if not metric.endswith("]") or "[" not in metric:
        return metric, ""
    base, _, test_set = metric[:-1].partition("[")
    return base, test_set


def is_feature(key: str) -> bool:
    return key in FEATURE_NAMES


def _feature(key: str) -> tuple[str, str]:
    return _FEATURES.get(key, (key.replace("_", " "), key))


def is_text(key: str) -> bool:
    return key in TEXT_COLUMNS


def _base_metric(key: str) -> str:
    return split_test_set(split_key(key)[1])[0]


def is_bleu(key: str) -> bool:
    """BLEU columns of every kind and test set (the Pareto y axis)."""
    return _base_metric(key) in _BLEU_METRICS


def is_cost(key: str) -> bool:
    """Measured cost columns: latency per device, GFLOPs, sizes (the Pareto x axis)."""
    return not split_key(key)[0] and _base_metric(key) in _COST_METRICS


def metric_columns(columns: Iterable[str]) -> list[str]:
    """The value columns among ``columns`` (no features, text, bookkeeping or sources), in
    reading order: BLEU, GFLOPs, sizes, latency per device, other measurements, predictions."""

    def rank(key: str) -> tuple[int, int, str]:
        predicted, metric, where = split_key(key)
        base = split_test_set(metric)[0]
        known = _METRIC_ORDER.index(base) if base in _METRIC_ORDER else len(_METRIC_ORDER)
        return (int(predicted), known, f"{metric}@{where}")

    keys = [
        c
        for c in columns
        if not c.startswith(SOURCE_PREFIX) and not is_feature(c) and c not in TEXT_COLUMNS
        if c != "added_at"
    ]
    return sorted(keys, key=rank)


def table_columns(columns: Iterable[str]) -> list[str]:
    """Browser columns for a ``Project.table`` frame (whose index is the id)."""
    columns = list(columns)
    present = [f for f in (ORIGIN, *FEATURE_NAMES) if f in columns]
    return [ID, *present, *metric_columns(columns)]


def _metric_name(metric: str) -> str:
    """``bleu_test[newstest2014]`` -> 'BLEU test [newstest2014]'."""
    base, test_set = split_test_set(metric)
    name = _METRICS[base][0] if base in _METRICS else base.replace("_", " ")
    return f"{name} [{test_set}]" if test_set else name


def _unit(metric: str) -> str:
    base = split_test_set(metric)[0]
    return _METRICS[base][1] if base in _METRICS else ""


def label(key: str) -> str:
    """One-line name with unit, for combos, axes and tooltips."""
    if is_feature(key):
        return _feature(key)[0].replace("\n", " ")
    if key in TEXT_COLUMNS:
        return key.capitalize() if key == ORIGIN else "ID"
    predicted, metric, where = split_key(key)
    unit = _unit(metric)
    details = ", ".join(part for part in (unit, where) if part)
    name = f"Predicted {_metric_name(metric)}" if predicted else _metric_name(metric)
    return f"{name} ({details})" if details else name


def header(key: str) -> str:
    """Two-line table header: the name, then unit and device or predictor."""
    if is_feature(key):
        return _feature(key)[0]
    if key in TEXT_COLUMNS:
        return label(key)
    predicted, metric, where = split_key(key)
    name = f"Pred. {_metric_name(metric)}" if predicted else _metric_name(metric)
    second = " ".join(part for part in (_unit(metric), where) if part)
    return f"{name}\n{second}" if second else name


def tooltip(key: str) -> str:
    if is_feature(key):
        return f"{_feature(key)[1]} ({key})"
    if key == ID:
        return "Stable architecture id (hash of its canonical configuration)"
    if key == ORIGIN:
        return "Where the architecture came from (import, sampling, search)"
    predicted, metric, where = split_key(key)
    if predicted:
        return f"{_metric_name(metric)} predicted by {where} ({key})"
    device = f" on {where}" if where else ""
    return f"{label(key)}{device}, latest measurement ({key})"


def scale(key: str) -> float:
    """Factor from stored to displayed units (parameter counts are shown in millions)."""
    metric = _base_metric(key)
    return _METRICS[metric][2] if metric in _METRICS else 1.0


def format_value(key: str, value: float) -> str:
    """A displayed (already scaled) number as text; empty for a missing value."""
    if value is None or math.isnan(value):
        return ""
    if is_feature(key):
        return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"
    metric = _base_metric(key)
    fmt = _METRICS[metric][3] if metric in _METRICS else ".4g"
    return format(value, fmt)
