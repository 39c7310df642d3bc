"""The operations of LPZero's proxy space: unary operations on one tensor, binary operations
joining two. Values outside an operation's domain give NaN or inf (log of a negative, 1/0);
the search's pruning rules reject such candidates rather than the operations hiding them."""

from __future__ import annotations

from collections.abc import Callable

import torch

_EPS = 1e-12


class OperationError(ValueError):
    """Two tensors whose shapes an operation cannot join."""


def _zscore(x: torch.Tensor) -> torch.Tensor:
    return (x - x.mean()) / (x.std(unbiased=False) + _EPS)


def _minmax(x: torch.Tensor) -> torch.Tensor:
    return (x - x.min()) / (x.max() - x.min() + _EPS)


def _rows(fn: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """Apply along the last dimension; a scalar is treated as a one-element row."""
    return lambda x: fn(x.reshape(1)).reshape(()) if x.dim() == 0 else fn(x)


UNARY: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "identity": lambda x: x,
    "negate": torch.neg,
    "abs": torch.abs,
    "square": torch.square,
    "sqrt": torch.sqrt,
    "exp": torch.exp,
    "log": torch.log,
    "abslog": lambda x: torch.log(x.abs().clamp_min(_EPS)),
    "invert": torch.reciprocal,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "softmax": _rows(lambda x: x.softmax(-1)),
    "logsoftmax": _rows(lambda x: x.log_softmax(-1)),
    "zscore": _zscore,
    "minmax": _minmax,
    "normalized_sum": lambda x: x / (x.abs().sum() + _EPS),
    "frobenius_norm": lambda x: x.square().sum().sqrt(),
    "l1_norm": lambda x: x.abs().sum(),
    "mean": torch.mean,
    "std": lambda x: x.std(unbiased=False),
}
"""Every unary operation by name. ``normalized_sum`` divides by the sum of magnitudes (the
tensor then sums to ±1); ``frobenius_norm``, ``l1_norm``, ``mean`` and ``std`` reduce to a
scalar; ``softmax`` and ``logsoftmax`` act along the last dimension; ``zscore`` and ``std`` use
the population standard deviation."""

SCALAR_OPS = frozenset({"frobenius_norm", "l1_norm", "mean", "std"})
NORMALISING_OPS = frozenset({"zscore", "minmax", "softmax", "logsoftmax", "normalized_sum"})


def _elementwise(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]):
    def join(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if a.dim() and b.dim() and a.shape != b.shape:
            raise OperationError(f"shapes {tuple(a.shape)} and {tuple(b.shape)} differ")
        return fn(a, b)

    return join


def _matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` over the last two dimensions, or ``a @ bᵀ`` when only the last ones agree
    (two activations of the same width give their Gram matrix)."""
    if a.dim() < 2 or b.dim() < 2:
        raise OperationError("matrix product needs two tensors of two or more dimensions")
    if a.shape[-1] == b.shape[-2]:
        return a @ b
    if a.shape[-1] == b.shape[-1]:
        return a @ b.transpose(-1, -2)
    raise OperationError(f"shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be multiplied")


BINARY: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "add": _elementwise(torch.add),
    "sub": _elementwise(torch.sub),
    "mul": _elementwise(torch.mul),
    "matmul": _matmul,
}
"""Every binary operation by name; elementwise ones need equal shapes unless one side is a
scalar."""
