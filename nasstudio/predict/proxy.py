"""A stored LPZero proxy as a predictor of MT architectures: its formula evaluated on a freshly
initialised model of each architecture on the fixed batch of the task's vocabulary
(:mod:`nasstudio.lpzero.mt`), times the proxy's sign, so that higher is better."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from nasstudio.lpzero.expr import parse
from nasstudio.lpzero.mt import mt_inputs
from nasstudio.lpzero.ops import OperationError
from nasstudio.predict.base import PredictionResult
from nasstudio.space import Architecture
from nasstudio.store import StoredProxy

PROXY_METRIC_PREFIX = "proxy:"


class ProxyPredictor:
    """``kind`` 'proxy', ``metric`` 'proxy:<name>'; a value is the signed proxy value."""

    kind = "proxy"

    def __init__(self, proxy: StoredProxy, vocab_size: int) -> None:
        self.proxy = proxy
        self.expression = parse(proxy.formula)
        self.vocab_size = vocab_size

    @property
    def name(self) -> str:
        return self.proxy.name

    @property
    def metric(self) -> str:
        return PROXY_METRIC_PREFIX + self.proxy.name

    def predict(self, archs: Sequence[Architecture]) -> list[PredictionResult]:
        return [self._one(arch) for arch in archs]

    def _one(self, arch: Architecture) -> PredictionResult:
        provenance = {"formula": self.proxy.formula, "sign": self.proxy.sign}
        try:
            with torch.no_grad():
                value = self.expression.value(mt_inputs(arch, self.vocab_size))
        except OperationError as error:
            return PredictionResult(arch.id, None, error=str(error))
        if not math.isfinite(value):
            return PredictionResult(arch.id, None, error=f"the proxy is {value}")
        return PredictionResult(arch.id, self.proxy.sign * value, provenance=provenance)
