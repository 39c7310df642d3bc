"""Reading BLEU out of LLM answers, including a fuzz test."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nasstudio.predict.llm.parser import numbers_in, parse_bleu, summarise
from nasstudio.predict.llm.prompt import Demonstration, format_arch
from nasstudio.space import get_space


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("24.5", 24.5),
        ("BLEU: 25.31", 25.31),
        (" 26.", 26.0),
        ("The estimated BLEU score is 27.04.", 27.04),
        ("bleu = .5", 0.5),
        ("It has 6 encoder layers; BLEU: 23.9", 23.9),  # a labelled number wins
        ("With 512 dims and 2048 FFN I'd say 24.1", 24.1),  # out-of-range numbers are skipped
        ("wmt14 model v2: about 25", 25.0),  # digits glued to words are not numbers
        ("2.41e1", 24.1),
        ("BLEU: 250 (sorry) 25.0", 25.0),  # labelled but implausible: the first plausible one
    ],
)
def test_values_are_read(text, value):
    parsed = parse_bleu(text)
    assert parsed.value == pytest.approx(value) and parsed.problem is None
    assert parsed.raw == text


def test_what_cannot_be_read_is_reported_with_the_raw_answer():
    parsed = parse_bleu("I cannot estimate that.")
    assert parsed.value is None and parsed.raw == "I cannot estimate that."
    assert parsed.problem.startswith("no number in the answer 'I cannot estimate that.'")
    parsed = parse_bleu("Roughly 512 or -3")
    assert parsed.value is None
    assert parsed.problem == "no number within [0, 100] in the answer (found 512, -3)"
    assert parse_bleu("45", low=10, high=40).problem.startswith("no number within [10, 40]")


# The query of the examples below, as the prompt shows it: its numbers are what an answer that
# echoes the prompt repeats.
QUERY = format_arch(Demonstration(get_space("hat-wmt").sample_many(1, seed=0)[0], 2.7))


def test_the_query_numbers_are_its_hyperparameters_and_gflops():
    assert "encoder-embed-dim-subtransformer: 512" in QUERY and "GFLOPS: 2.7" in QUERY
    assert numbers_in(QUERY) == {512, 6, 3072, 2048, 4, 8, 640, 1024, 1, 2, -1, 2.7}


@pytest.mark.parametrize(
    ("text", "value", "problem"),
    [
        # what SmolLM2-135M answered: a list, not a prediction
        ("1. The task is to predict the BLEU score.", None, "1 is a list marker"),
        ("1) encoder\n2) decoder", None, "1 is a list marker; 2 is a list marker"),
        ("  3. Compute the GFLOPS", None, "3 is a list marker"),
        ("2) 19.5", 19.5, None),  # the marker is skipped, the prediction after it read
        ("1. BLEU: 26.1", 26.1, None),
        # numbers copied from the query's architecture lines
        ("encoder-layer-num-subtransformer: 6", None, "6 is copied from the architecture"),
        ("GFLOPS: 2.7", None, "2.7 is copied from the architecture"),
        (
            "The model has 6 layers and 8 heads",
            None,
            "6 is copied from the architecture; 8 is copied from the architecture",
        ),
        ("With 6 layers and 8 heads I expect 25.4", 25.4, None),
        ("BLEU: 8", 8.0, None),  # labelled: the model says it is the BLEU
        # a whole number opening a line, then ". " and words, reads as a list marker
        ("26. That is my estimate.", None, "26 is a list marker"),
        (" 26.", 26.0, None),
    ],
)
def test_list_markers_and_copied_numbers_are_not_predictions(text, value, problem):
    parsed = parse_bleu(text, copied=numbers_in(QUERY))
    assert parsed.value == value
    if problem is None:
        assert parsed.problem is None
    else:
        assert parsed.problem == f"no BLEU prediction in the answer ({problem})"


def test_samples_are_summarised():
    s = summarise([24.0, 25.0, 27.0])
    assert (s.mean, s.median) == (pytest.approx(25.333333), 25.0)
    assert s.std == pytest.approx(1.527525)
    assert summarise([24.0]).std is None
    with pytest.raises(ValueError):
        summarise([])


@given(st.text())
def test_any_text_parses_to_a_plausible_value_or_a_reason(text):
    parsed = parse_bleu(text)
    assert parsed.raw == text
    if parsed.value is None:
        assert parsed.problem
    else:
        assert 0 <= parsed.value <= 100 and math.isfinite(parsed.value)


_NO_DIGITS = st.text(
    alphabet=st.characters(blacklist_categories=("Nd", "No", "Nl"), blacklist_characters=".+-"),
    max_size=30,
)


@given(
    st.decimals(min_value=0, max_value=100, places=2),
    _NO_DIGITS,
    _NO_DIGITS,
)
def test_a_number_in_prose_is_found(value, before, after):
    text = f"{before} {value} {after}"
    assert parse_bleu(text).value == pytest.approx(float(value))
