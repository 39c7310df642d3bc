"""Running one job function where an executor put it: a thread, a spawned worker process or a
cluster worker. It talks to the runner only through ``send(message)``:

- ``("running", worker)`` once it starts, naming where it runs;
- ``("progress", fraction, message)`` and ``("log", line)``;
- ``("item", value)`` for each value the job yields (records and partial results);
- last, one of ``("done", result)``, ``("cancelled",)`` or
  ``("failed", message, traceback, error)``.
"""

from __future__ import annotations

import importlib
import os
import random
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from nasstudio.jobs.model import CancelFlag, JobCancelled, JobFunction, JobHandle
from nasstudio.store import Project

Send = Callable[[tuple], None]


@dataclass(frozen=True, slots=True)
class JobSpec:
    """Everything a worker needs to run a job, picklable: the function by its import path."""

    job_id: int
    function: str  # "package.module:function"
    project_path: str
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    threads: int = 1


def function_path(fn: JobFunction) -> str:
    return f"{fn.__module__}:{fn.__qualname__}"


def resolve(path: str) -> JobFunction:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def execute(
    spec: JobSpec,
    send: Send,
    cancel: CancelFlag,
    worker: str = "thread",
    fn: JobFunction | None = None,
) -> None:
    """Run the job (``fn``, else the function ``spec`` names) to its end and report every step
    of it through ``send``; never raises."""
    with reporting(send), Project(spec.project_path, readonly=True) as project:
        handle, generator = begin(spec, send, cancel, worker, project, fn)
        try:
            while True:
                handle.check_cancelled()
                try:
                    item = next(generator)
                except StopIteration as stop:
                    result = stop.value
                    break
                send(("item", item))
        finally:
            generator.close()
        send(("done", result))


@contextmanager
def reporting(send: Send) -> Iterator[None]:
    """Turn how a job's run ends into its final message: ``JobCancelled`` into 'cancelled', any
    other error into 'failed' (the run sends 'done' itself). Shared by every executor."""
    try:
        yield
    except JobCancelled:
        send(("cancelled",))
    except Exception as exc:
        send(("failed", f"{type(exc).__name__}: {exc}", traceback.format_exc(), str(exc)))


def begin(
    spec: JobSpec,
    send: Send,
    cancel: CancelFlag,
    worker: str,
    project: Project,
    fn: JobFunction | None = None,
) -> tuple[JobHandle, Any]:
    """Say the job runs (``worker`` names where) and call its function: the job's handle and
    what the function returned (a generator, or an async one for the async executor)."""
    fn = fn or resolve(spec.function)
    handle = JobHandle(spec.job_id, send, cancel)
    send(("running", worker))
    return handle, fn(handle, project, **spec.params)


def process_main(spec: JobSpec, connection: Any, cancel: CancelFlag) -> None:
    """Entry point of a spawned worker process: its own generators and thread counts, then the
    job, its messages sent over ``connection`` (a pipe whose reader is the runner)."""
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(spec.threads)
    seed_generators(spec.seed, spec.threads)
    lock = threading.Lock()

    def send(message: tuple) -> None:
        with lock:  # a job may report from a thread of its own
            connection.send(message)

    _exit_with_parent()
    worker = f"process {os.getpid()} on {socket.gethostname()}"
    try:
        execute(spec, send, cancel, worker)
    finally:
        connection.close()


def _exit_with_parent(interval_s: float = 1.0) -> None:
    """End this worker soon after the app that started it dies, even by kill -9 (then nobody
    could record what it produces; its checkpoints stay)."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(interval_s)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="nasstudio-parent-watch", daemon=True).start()


def seed_generators(seed: int, threads: int) -> None:
    """Seed Python's, numpy's and torch's generators, and set torch's thread count: process-wide
    settings that a worker process owns alone."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
