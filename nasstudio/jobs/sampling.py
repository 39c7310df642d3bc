"""Sampling architectures from a task's search space into the project, as a job."""

from __future__ import annotations

import random
from collections.abc import Generator

from nasstudio.jobs.model import JobHandle, job_defaults
from nasstudio.jobs.records import NewArchitectures, NewTask
from nasstudio.space import get_space
from nasstudio.store import KNOWN_TASKS, Project

_BATCH = 500


@job_defaults("thread")
def sample_job(
    handle: JobHandle, project: Project, task: str, count: int, seed: int
) -> Generator[NewArchitectures | NewTask, None, int]:
    """Sample ``count`` architectures new to ``task`` uniformly (with ``seed``), first
    registering ``task`` when it is a known task the project lacks.

    Yields them in batches for the runner to record, so a cancel keeps what was sampled so
    far; returns how many were sampled.
    """
    spec = project.task(task)
    known = set(project.architecture_ids(task)) if spec else set()
    if spec is None and task in KNOWN_TASKS:
        spec = KNOWN_TASKS[task]
        yield NewTask(spec)
    if spec is None:
        raise KeyError(f"no task '{task}' in the project")
    space = get_space(spec.space)
    rng = random.Random(seed)
    origin = f"sampled (seed {seed})"
    added, drawn = 0, 0
    handle.progress(0.0, f"sampling {count} architectures from {space.name}")
    while added < count:
        handle.check_cancelled()
        batch = {}
        for _ in range(min(_BATCH, count - added)):
            arch = space.sample(rng)
            drawn += 1
            if arch.id not in known:
                known.add(arch.id)
                batch[arch.id] = arch
        added += len(batch)
        if batch:
            yield NewArchitectures(task, tuple(batch.values()), origin)
        handle.progress(added / count, f"{added}/{count} architectures")
        if drawn > 20 * count + 1000:
            handle.log(f"stopped after {drawn} draws: the space has few architectures left")
            break
    return added
