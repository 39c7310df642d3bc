"""The one Predictor protocol that every performance predictor implements.

A predictor maps architectures to a predicted metric (BLEU on the validation set unless it says
otherwise). LLM-PP, the distilled MLP, a supernet and a regressor fitted on ground truth all
fit it; one that works asynchronously (the LLM) also offers an async method of its own.
``predict_job`` runs any of them over architectures of a task and records what they predict.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from nasstudio.jobs import JobHandle
from nasstudio.jobs.model import job_defaults
from nasstudio.jobs.records import Predictions
from nasstudio.space import Architecture
from nasstudio.store import Prediction, Project


@dataclass(frozen=True, slots=True)
class AlsoPredicted:
    """Another metric the same pass predicted (a supernet's greedy BLEU beside its loss), with
    what its provenance adds to the result's."""

    metric: str
    value: float
    provenance: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PredictionResult:
    """One architecture's prediction, or (``value`` None) the reason there is none."""

    arch_id: str
    value: float | None
    std: float | None = None
    error: str | None = None
    provenance: Mapping[str, Any] = field(default_factory=dict)
    also: tuple[AlsoPredicted, ...] = ()

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
    rows = []
    for r in (r for r in results if r.value is not None):
        main = AlsoPredicted(predictor.metric, r.value)
        for one in (main, *r.also):
            rows.append(
                Prediction(
                    r.arch_id,
                    task,
                    one.metric,
                    one.value,
                    predictor.kind,
                    predictor.name,
                    std=r.std if one is main else None,
                    prompt_version=prompt_version,
                    provenance={**r.provenance, **one.provenance},
                )
            )
    return rows


def predictions_of(
    handle: JobHandle,
    predictor: Predictor,
    task: str,
    archs: Sequence[Architecture],
    batch_size: int = 1,
    prompt_version: str | None = None,
) -> Generator[Predictions, None, list[PredictionResult]]:
    """Run ``predictor`` over ``archs`` a batch at a time, yielding each batch's predictions for
    the runner to record (a cancel keeps those done); failures are logged. Returns the
    results."""
    done: list[PredictionResult] = []
    for start in range(0, len(archs), batch_size):
        handle.check_cancelled()
        batch = archs[start : start + batch_size]
        handle.progress(
            start / len(archs), f"{predictor.name}: {start + 1}/{len(archs)} ({batch[0].id})"
        )
        results = predictor.predict(batch)
        for failure in (r for r in results if not r.ok):
            handle.log(f"{failure.arch_id}: no prediction: {failure.error}")
        rows = to_predictions(predictor, task, results, prompt_version)
        done.extend(results)
        if rows:
            yield Predictions(tuple(rows))
    predicted = sum(r.ok for r in done)
    handle.progress(1.0, f"{predictor.name}: {predicted} of {len(archs)} predicted")
    return done


@job_defaults("process")
def predict_job(
    handle: JobHandle,
    project: Project,
    predictor: Predictor,
    task: str,
    arch_ids: Sequence[str],
    batch_size: int = 64,
) -> Generator[Predictions, None, int]:
    """Predict ``arch_ids`` of ``task`` with any predictor and record the predictions; returns
    how many got one."""
    archs = project.task_architectures(task, arch_ids)
    results = yield from predictions_of(handle, predictor, task, archs, batch_size)
    return sum(r.ok for r in results)
