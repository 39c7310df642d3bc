"""Column names and filter expressions (no widgets)."""

from __future__ import annotations

import numpy as np
import pytest

from nasstudio.gui import columns
from nasstudio.gui.filtering import FilterError, filter_mask
from nasstudio.space import FEATURE_NAMES


def test_every_feature_has_a_readable_header_and_tooltip():
    for name in FEATURE_NAMES:
        assert "_" not in columns.header(name)
        assert name in columns.tooltip(name)


def test_metric_columns_come_in_reading_order():
    table_columns = [
        "origin",
        "added_at",
        *FEATURE_NAMES,
        "pred:bleu_valid@HAT",
        "latency_ms@xeon",
        "params",
        "bleu_test",
        "gflops",
        "bleu_valid",
        "source:bleu_valid",
    ]
    assert columns.table_columns(table_columns) == [
        "id",
        "origin",
        *FEATURE_NAMES,
        "bleu_valid",
        "bleu_test",
        "gflops",
        "params",
        "latency_ms@xeon",
        "pred:bleu_valid@HAT",
    ]


@pytest.mark.parametrize(
    ("key", "label", "header"),
    [
        ("bleu_valid", "BLEU valid", "BLEU valid"),
        ("latency_ms@xeon", "Latency (ms, xeon)", "Latency\nms xeon"),
        ("params", "Params (M)", "Params\nM"),
        ("pred:bleu_test@HAT", "Predicted BLEU test (HAT)", "Pred. BLEU test\nHAT"),
    ],
)
def test_labels_and_headers(key, label, header):
    assert columns.label(key) == label
    assert columns.header(key) == header


def test_parameters_are_shown_in_millions():
    assert columns.format_value("params", 57_740_032 * columns.scale("params")) == "57.74"
    assert columns.format_value("bleu_valid", float("nan")) == ""


VALUES = np.array([24.0, 25.5, np.nan, 26.0, 25.0])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (">25", [False, True, False, True, False]),
        ("<= 25", [True, False, False, False, True]),
        (">=25 <26", [False, True, False, False, True]),
        ("=26", [False, False, False, True, False]),
        ("!=26", [True, True, False, False, True]),
        ("25.", [False, True, False, False, True]),  # substring of the shown text
    ],
)
def test_number_filters(text, expected):
    mask = filter_mask(VALUES, text, lambda v: columns.format_value("bleu_valid", v))
    assert mask.tolist() == expected


def test_text_filter_is_a_case_insensitive_substring():
    texts = np.array(["llmas", "sampled (seed 1)", "LLMAS-2"], dtype=object)
    assert filter_mask(texts, "llmas").tolist() == [True, False, True]
    assert filter_mask(texts, "  ") is None


@pytest.mark.parametrize("text", [">abc", "> 25 x", ">"])
def test_unreadable_comparisons_are_refused(text):
    with pytest.raises(FilterError):
        filter_mask(VALUES, text, str)
