"""Proxy expressions: two inputs, each through a chain of unary operations, joined by one
binary operation; per layer the result is reduced to its mean, and the proxy is the mean over
layers (LPZero's rule) or, for a ``layersum`` expression, their sum.

The text form is the readable formula itself, in function notation with the innermost
operation first applied, e.g. ``mul(abs(log(act)), sqrt(grad))``, wrapped in ``layersum(...)``
when layers are summed; :func:`parse` reads it back.

Why a sum too: a mean over layers cannot see depth. On FlexiBERT, where depth alone ranks
GLUE at rho 0.83, the best mean-reduced proxy found reached tau 0.16 and a summed one 0.69.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from nasstudio.lpzero.ops import BINARY, UNARY, OperationError

INPUTS = ("act", "q", "k", "v", "softmax", "weight", "grad")
"""Per-layer inputs (see :mod:`nasstudio.lpzero.inputs`): a linear layer's output
(activation), the query, key and value projections, the attention softmax maps, and a linear
layer's weight and its gradient."""


class ExpressionError(ValueError):
    """A formula that does not parse into a proxy expression."""


@dataclass(frozen=True)
class Branch:
    """An input passed through unary operations, applied first to last."""

    input: str
    ops: tuple[str, ...]

    def __str__(self) -> str:
        text = self.input
        for op in self.ops:
            text = f"{op}({text})"
        return text

    def apply(self, tensors: Mapping[str, torch.Tensor]) -> torch.Tensor:
        value = tensors[self.input]
        for op in self.ops:
            value = UNARY[op](value)
        return value


OVER_LAYERS = ("mean", "sum")
"""How a network's per-layer values become its proxy."""
_SUM_WRAPPER = "layersum"


@dataclass(frozen=True)
class Expression:
    left: Branch
    right: Branch
    binary: str
    over_layers: str = "mean"

    def __str__(self) -> str:
        core = f"{self.binary}({self.left}, {self.right})"
        return f"{_SUM_WRAPPER}({core})" if self.over_layers == "sum" else core

    def layer_value(self, tensors: Mapping[str, torch.Tensor]) -> float:
        """The mean of the joined branches on one layer's inputs; raises OperationError when
        their shapes cannot be joined."""
        try:
            joined = BINARY[self.binary](self.left.apply(tensors), self.right.apply(tensors))
        except RuntimeError as error:  # torch's own shape errors, e.g. in batched matmul
            raise OperationError(str(error)) from None
        return float(joined.mean())

    def value(self, layers: Sequence[Mapping[str, torch.Tensor]]) -> float:
        """The proxy of one network: the mean (or sum) over the layers that have both inputs
        (NaN if any of them is). Layers of heterogeneous networks may lack some inputs, e.g.
        a linear transform has no attention maps; a network where no layer has them fails."""
        needed = {self.left.input, self.right.input}
        values = [self.layer_value(t) for t in layers if needed <= t.keys()]
        if not values:
            raise OperationError(f"no layer has the inputs {', '.join(sorted(needed))}")
        total = math.fsum(values)
        return total if self.over_layers == "sum" else total / len(values)


_TOKEN = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*|[(),])")


def parse(text: str) -> Expression:
    """The expression a formula such as ``sub(zscore(act), mean(grad))`` or
    ``layersum(mul(act, grad))`` describes."""
    tokens, starts = _tokenize(text)
    position = 0

    def where() -> str:
        """Where the token at ``position`` starts, for errors (1-based, as editors count)."""
        return f"at character {starts[position] + 1}" if position < len(starts) else "at the end"

    def expect(token: str) -> None:
        nonlocal position
        if position >= len(tokens) or tokens[position] != token:
            found = tokens[position] if position < len(tokens) else "the end"
            raise ExpressionError(f"{text!r}: expected {token!r}, found {found!r} {where()}")
        position += 1

    def branch() -> Branch:
        nonlocal position
        names = []
        while position + 1 < len(tokens) and tokens[position + 1] == "(":
            names.append(tokens[position])
            position += 2
        name = tokens[position] if position < len(tokens) else "the end"
        if name not in INPUTS:
            raise ExpressionError(
                f"{text!r}: expected an input ({', '.join(INPUTS)}), got {name!r} {where()}"
            )
        position += 1
        for op in names:
            if op not in UNARY:
                raise ExpressionError(f"{text!r}: unknown unary operation {op!r}")
            expect(")")
        return Branch(name, tuple(reversed(names)))

    over_layers = "mean"
    if tokens[:1] == [_SUM_WRAPPER]:
        over_layers = "sum"
        position = 1
        expect("(")
        if tokens[-1:] != [")"]:
            raise ExpressionError(f"{text!r}: expected ')' to close {_SUM_WRAPPER}( at the end")
        tokens, starts = tokens[2:-1], starts[2:-1]
        position = 0
    binary = tokens[0] if tokens else ""
    if binary not in BINARY:
        raise ExpressionError(
            f"{text!r}: must start with a binary operation ({', '.join(BINARY)}) or {_SUM_WRAPPER}("
        )
    position = 1
    expect("(")
    left = branch()
    expect(",")
    right = branch()
    expect(")")
    if position != len(tokens):
        raise ExpressionError(f"{text!r}: unexpected {tokens[position]!r} after the expression")
    return Expression(left, right, binary, over_layers)


def _tokenize(text: str) -> tuple[list[str], list[int]]:
    """The tokens of ``text`` and where each starts."""
    tokens, starts, position = [], [], 0
    while position < len(text.rstrip()):
        match = _TOKEN.match(text, position)
        if not match:
            raise ExpressionError(
                f"{text!r}: unexpected character {text[position]!r} at character {position + 1}"
            )
        tokens.append(match.group(1))
        starts.append(match.start(1))
        position = match.end()
    return tokens, starts
