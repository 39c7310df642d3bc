"""What jobs yield for the runner to record. A record knows how to write itself into the
project (inside the runner's transaction) and says which tasks it touched; anything else a job
yields is a partial result, handed to subscribers and not stored."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from nasstudio.space import Architecture
from nasstudio.store import (
    Measurement,
    Prediction,
    Project,
    # Records defined beside the store that reads them: a search's generation, an LPZero
    # search's sample and iterations.
    ProxyIteration,
    ProxySample,
    SearchGeneration,
    SearchMember,
    Task,
)

__all__ = [
    "CurvePoint",
    "Measurements",
    "NewArchitectures",
    "NewTask",
    "Predictions",
    "ProxyIteration",
    "ProxySample",
    "Record",
    "SearchGeneration",
    "SearchMember",
    "records_in",
    "write_records",
]


@runtime_checkable
class Record(Protocol):
    def write(self, project: Project, job_id: int) -> Iterable[str]:
        """Write into ``project`` (the caller holds the transaction); return the tasks touched."""
        ...


@dataclass(frozen=True, slots=True)
class NewTask:
    """Register a task, or check that the registered one agrees with it."""

    task: Task

    def write(self, project: Project, job_id: int) -> Iterable[str]:
        project.ensure_task(self.task)
        return (self.task.name,)


@dataclass(frozen=True, slots=True)
class NewArchitectures:
    task: str
    archs: Sequence[Architecture]
    origin: str

    def write(self, project: Project, job_id: int) -> Iterable[str]:
        project.add_architectures(self.task, self.archs, self.origin)
        return (self.task,)


@dataclass(frozen=True, slots=True)
class Measurements:
    rows: Sequence[Measurement]

    def write(self, project: Project, job_id: int) -> Iterable[str]:
        project.add_measurements(self.rows)
        return {m.task for m in self.rows}


@dataclass(frozen=True, slots=True)
class Predictions:
    rows: Sequence[Prediction]

    def write(self, project: Project, job_id: int) -> Iterable[str]:
        project.add_predictions(self.rows)
        return {p.task for p in self.rows}


@dataclass(frozen=True, slots=True)
class CurvePoint:
    """One point of a training run's curves (loss, BLEU, tokens/s ...) at ``step``."""

    arch_id: str
    step: int
    values: Mapping[str, Any] = field(default_factory=dict)

    def write(self, project: Project, job_id: int) -> Iterable[str]:
        project.add_curve_points(job_id, [(self.arch_id, self.step, dict(self.values))])
        return ()


def records_in(item: Any) -> list[Record]:
    """The records in what a job yielded: the item itself, or those of a list of them."""
    if isinstance(item, Record):
        return [item]
    if isinstance(item, list | tuple):
        return [x for x in item if isinstance(x, Record)]
    return []


def write_records(project: Project, job_id: int, records: Sequence[Record]) -> frozenset[str]:
    """Write ``records`` in one transaction; the tasks they touched."""
    touched: set[str] = set()
    with project.transaction():
        for record in records:
            touched.update(record.write(project, job_id))
    return frozenset(touched)
