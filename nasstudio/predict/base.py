"""The one Predictor protocol that every performance predictor implements.

A predictor maps architectures to a predicted metric (BLEU on the validation set unless it says
otherwise). LLM-PP, the distilled MLP, a supernet and a regressor fitted on ground truth all
fit it; one that works asynchronously (the LLM) also offers an async method of its own, and its
``predict`` runs that on a private event loop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from nasstudio.space import Architecture
from nasstudio.store import Prediction


@dataclass(frozen=True, slots=True)
class PredictionResult:
    """One architecture's prediction, or (``value`` None) the reason there is none."""

    arch_id: str
    value: float | None
    std: float | None = None
    error: str | None = None
    provenance: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.value is not None


@runtime_checkable
class Predictor(Protocol):
    """``name`` identifies the predictor in the store (``pred:<metric>@<name>`` columns);
    ``kind`` is its family: 'llm', 'distilled', 'supernet', 'fitted', 'proxy'."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def metric(self) -> str: ...

    def predict(self, archs: Sequence[Architecture]) -> list[PredictionResult]:
        """One result per architecture, in order."""
        ...


def to_predictions(
    predictor: Predictor,
    task: str,
    results: Sequence[PredictionResult],
    prompt_version: str | None = None,
) -> list[Prediction]:
    """Store rows for the results that have a value (failures are reported, not stored)."""
    return [
        Prediction(
            r.arch_id,
            task,
            predictor.metric,
            r.value,
            predictor.kind,
            predictor.name,
            std=r.std,
            prompt_version=prompt_version,
            provenance=dict(r.provenance),
        )
        for r in results
        if r.value is not None
    ]
