"""Sampling architectures from a task's search space into the project, as a job."""

from __future__ import annotations

import random
from collections.abc import Generator

from nasstudio.jobs.model import JobHandle
from nasstudio.space import get_space
from nasstudio.store import KNOWN_TASKS, Project

_BATCH = 50


def sample_job(
    handle: JobHandle, project: Project, task: str, count: int, seed: int
) -> Generator[list[str], None, int]:
    """Add ``count`` new architectures sampled uniformly (with ``seed``) to ``task``, first
    registering ``task`` when it is a known task the project lacks.

    Each batch is committed before it is yielded, so a cancel keeps what was sampled so far.
    Yields the ids of each batch; returns how many were added.
    """
    spec = project.task(task)
    if spec is None and task in KNOWN_TASKS:
        spec = project.ensure_task(KNOWN_TASKS[task])
    if spec is None:
        raise KeyError(f"no task '{task}' in the project")
    space = get_space(spec.space)
    rng = random.Random(seed)
    added, drawn = 0, 0
    handle.progress(0.0, f"sampling {count} architectures from {space.name}")
    while added < count:
        handle.check_cancelled()
        batch = [space.sample(rng) for _ in range(min(_BATCH, count - added))]
        drawn += len(batch)
        new_ids = project.add_architectures(task, batch, origin=f"sampled (seed {seed})")
        added += len(new_ids)
        handle.progress(added / count, f"{added}/{count} architectures")
        if new_ids:
            yield new_ids
        if drawn > 20 * count + 1000:
            handle.log(f"stopped after {drawn} draws: the space has few architectures left")
            break
    return added
