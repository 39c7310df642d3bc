"""The job model: a long operation is a plain generator function ``fn(handle, project, **params)``.

It reads the project (opened read-only for it), reports progress and log lines through the
handle, yields records (``jobs.records``) and partial results, and calls
``handle.check_cancelled()`` in its inner loops. It never writes the project: the runner
records what it yields. So the same function runs unchanged in a thread, a worker process or
on a cluster worker (``jobs.executors``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

# Progress reports closer together than this are merged (a training loop reports every step).
_PROGRESS_INTERVAL_S = 0.05


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    # Its owning process ended while it was queued or running (kill -9, crash, power loss).
    INTERRUPTED = "interrupted"

    @property
    def finished(self) -> bool:
        return self not in (JobState.QUEUED, JobState.RUNNING)


class JobCancelled(Exception):
    """Raised inside a job by ``check_cancelled`` once cancellation was requested."""


@dataclass(frozen=True, slots=True)
class JobEvent:
    """What subscribers hear. ``kind`` is 'state', 'progress', 'partial' or 'log'.

    A 'partial' event comes after the runner has recorded what the job yielded; ``tasks``
    names the tasks whose data that changed (a view reloads only those).
    """

    job_id: int
    kind: str
    state: JobState
    progress: float = 0.0
    message: str = ""
    payload: Any = None
    time: float = field(default_factory=time.time)
    tasks: frozenset[str] = frozenset()


JobFunction = Callable[..., Generator[Any, None, Any]]


class CancelFlag(Protocol):
    """``threading.Event``, ``multiprocessing.Event`` or a cluster's equivalent."""

    def set(self) -> None: ...

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class JobHandle:
    """What a job function sees: report progress and log lines, check for cancellation.

    ``send`` carries messages to the runner (see ``jobs.worker``); it may cross a process.
    """

    def __init__(
        self,
        job_id: int,
        send: Callable[[tuple], None],
        cancel: CancelFlag | None = None,
    ) -> None:
        self.job_id = job_id
        self._send = send
        self._cancel = cancel if cancel is not None else threading.Event()
        self._last_progress = 0.0
        self.progress_fraction = 0.0
        self.message = ""

    def progress(self, fraction: float, message: str | None = None) -> None:
        self.progress_fraction = min(max(float(fraction), 0.0), 1.0)
        changed = message is not None and message != self.message
        if message is not None:
            self.message = message
        now = time.monotonic()
        if changed or now - self._last_progress >= _PROGRESS_INTERVAL_S:
            self._last_progress = now
            self._send(("progress", self.progress_fraction, self.message))

    def log(self, line: str) -> None:
        self._send(("log", line))

    def request_cancel(self) -> None:
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def check_cancelled(self) -> None:
        if self._cancel.is_set():
            raise JobCancelled

    def sleep(self, seconds: float) -> None:
        """Wait, but wake at once on cancel."""
        if self._cancel.wait(seconds):
            raise JobCancelled


def job_defaults(executor: str, resource: str | None = None) -> Callable[[JobFunction], Any]:
    """Declare where a job function runs unless its caller says otherwise: ``executor`` is
    'thread' (short I/O work), 'process' (torch work) or 'async' (coroutines on the event
    loop); ``resource`` names the queue it waits in."""

    def mark(fn: JobFunction) -> JobFunction:
        fn.job_executor = executor
        fn.job_resource = resource or {"thread": "io", "async": "llm"}.get(executor, "cpu")
        return fn

    return mark
