"""Every unary and binary operation on hand-computed tensors, and the expression text form."""

from __future__ import annotations

import math

import pytest
import torch

from nasstudio.lpzero.expr import Branch, Expression, ExpressionError, parse
from nasstudio.lpzero.ops import BINARY, UNARY, OperationError

POSITIVE = torch.tensor([1.0, 4.0])
SIGNED = torch.tensor([-1.0, 2.0])
E = math.e

# (operation, input, expected), each worked out by hand.
UNARY_CASES = [
    ("identity", SIGNED, [-1.0, 2.0]),
    ("negate", SIGNED, [1.0, -2.0]),
    ("abs", SIGNED, [1.0, 2.0]),
    ("relu", SIGNED, [0.0, 2.0]),
    ("square", SIGNED, [1.0, 4.0]),
    ("sqrt", POSITIVE, [1.0, 2.0]),
    ("exp", POSITIVE, [E, E**4]),
    ("log", POSITIVE, [0.0, math.log(4.0)]),
    ("abslog", torch.tensor([-E, 1.0]), [1.0, 0.0]),
    ("invert", POSITIVE, [1.0, 0.25]),
    ("sigmoid", POSITIVE, [1 / (1 + E**-1), 1 / (1 + E**-4)]),
    # softmax of (1, 4): e/(e+e^4) = 1/(1+e^3)
    ("softmax", POSITIVE, [1 / (1 + E**3), E**3 / (1 + E**3)]),
    ("logsoftmax", POSITIVE, [-math.log(1 + E**3), -math.log(1 + E**-3)]),
    # mean 2.5, population std 1.5
    ("zscore", POSITIVE, [-1.0, 1.0]),
    ("minmax", POSITIVE, [0.0, 1.0]),
    ("normalized_sum", SIGNED, [-1 / 3, 2 / 3]),
    ("frobenius_norm", POSITIVE, math.sqrt(17.0)),
    ("l1_norm", SIGNED, 3.0),
    ("mean", POSITIVE, 2.5),
    ("std", POSITIVE, 1.5),
]


def test_every_unary_operation_has_a_case():
    assert {name for name, _, _ in UNARY_CASES} == set(UNARY)


@pytest.mark.parametrize(("name", "tensor", "expected"), UNARY_CASES)
def test_unary_operation(name, tensor, expected):
    result = UNARY[name](tensor)
    assert torch.allclose(result, torch.tensor(expected), atol=1e-6)


def test_out_of_domain_values_are_not_hidden():
    assert torch.isnan(UNARY["log"](SIGNED)[0])
    assert torch.isnan(UNARY["sqrt"](SIGNED)[0])
    assert torch.isinf(UNARY["invert"](torch.tensor([0.0])))[0]


A = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
B = torch.tensor([[5.0, 6.0], [7.0, 8.0]])


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("add", [[6.0, 8.0], [10.0, 12.0]]),
        ("sub", [[-4.0, -4.0], [-4.0, -4.0]]),
        ("mul", [[5.0, 12.0], [21.0, 32.0]]),
        ("matmul", [[19.0, 22.0], [43.0, 50.0]]),
    ],
)
def test_binary_operation(name, expected):
    assert torch.equal(BINARY[name](A, B), torch.tensor(expected))


def test_binary_operations_when_shapes_differ():
    three_by_two = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    # Only the last dimensions agree: A times the transpose.
    assert torch.equal(
        BINARY["matmul"](A, three_by_two), torch.tensor([[1.0, 2.0, 3.0], [3.0, 4.0, 7.0]])
    )
    assert torch.equal(BINARY["add"](A, torch.tensor(1.0)), A + 1)
    with pytest.raises(OperationError):
        BINARY["mul"](A, three_by_two)
    with pytest.raises(OperationError):
        BINARY["matmul"](A, torch.ones(3, 3))


def test_expression_value_is_the_mean_over_layers_of_the_layer_means():
    layers = [
        {"act": torch.tensor([1.0, 3.0]), "weight": torch.tensor([2.0, 2.0])},  # (2 + 6) / 2 = 4
        {"act": torch.tensor([0.0, 1.0]), "weight": torch.tensor([4.0, 4.0])},  # (0 + 4) / 2 = 2
    ]
    expression = Expression(Branch("act", ()), Branch("weight", ()), "mul")
    assert expression.value(layers) == pytest.approx(3.0)
    squared = parse(
        "sub(square(act), identity(weight))"
    )  # layer 1: (-1 + 7)/2, layer 2: (-4 - 3)/2
    assert squared.value(layers) == pytest.approx((3.0 - 3.5) / 2)
    assert parse("layersum(mul(act, weight))").value(layers) == pytest.approx(4.0 + 2.0)


def test_a_layer_without_an_input_is_left_out_and_a_network_without_it_fails():
    layers = [
        {"act": torch.tensor([1.0, 3.0]), "softmax": torch.tensor([0.5, 0.5])},  # mean 1
        {"act": torch.tensor([2.0, 2.0])},  # no attention maps: left out
    ]
    assert parse("mul(act, softmax)").value(layers) == pytest.approx(1.0)
    assert parse("layersum(mul(act, act))").value(layers) == pytest.approx(5.0 + 4.0)
    with pytest.raises(OperationError, match="no layer has the inputs grad, softmax"):
        parse("add(grad, softmax)").value(layers)


def test_formula_text_round_trips():
    expression = Expression(
        Branch("act", ("log", "abs")), Branch("grad", ("sqrt", "identity")), "mul"
    )
    text = str(expression)
    assert text == "mul(abs(log(act)), identity(sqrt(grad)))"
    assert parse(text) == expression
    assert parse("  matmul( q ,k )") == Expression(Branch("q", ()), Branch("k", ()), "matmul")
    summed = Expression(Branch("act", ("abs",)), Branch("grad", ()), "add", "sum")
    assert str(summed) == "layersum(add(abs(act), grad))"
    assert parse(str(summed)) == summed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mul(act)", "expected ','"),
        ("pow(act, grad)", "binary operation"),
        ("add(cube(act), grad)", "unknown unary operation 'cube'"),
        ("add(act, loss)", "expected an input"),
        ("add(act, grad) extra", "unexpected 'extra'"),
        ("add(act, grad", "expected ')'"),
        ("add(act; grad)", "unexpected character"),
        ("layersum(add(act, grad)", "expected ')'"),
        ("layersum(act)", "binary operation"),
    ],
)
def test_malformed_formula_says_what_is_wrong(text, message):
    with pytest.raises(ExpressionError) as error:
        parse(text)
    assert message in str(error.value)
