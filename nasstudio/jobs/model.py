"""The job model: a long operation is a plain generator function ``fn(handle, **params)``.

It reports progress and log lines through the handle, yields partial results, and calls
``handle.check_cancelled()`` in its inner loops. The runner executes it off the caller's
thread, records it in the project store and sends JobEvents to its subscribers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


class JobCancelled(Exception):
    """Raised inside a job by ``check_cancelled`` once cancellation was requested."""


@dataclass(frozen=True, slots=True)
class JobEvent:
    """What subscribers hear. ``kind`` is 'state', 'progress', 'partial' or 'log'."""

    job_id: int
    kind: str
    state: JobState
    progress: float = 0.0
    message: str = ""
    payload: Any = None
    time: float = field(default_factory=time.time)


JobFunction = Callable[..., Generator[Any, None, Any]]


class JobHandle:
    """What a job function sees: report progress and log lines, check for cancellation."""

    def __init__(self, job_id: int, emit: Callable[[JobEvent], None]) -> None:
        self.job_id = job_id
        self._emit = emit
        self._cancel = threading.Event()
        self.progress_fraction = 0.0
        self.message = ""

    def progress(self, fraction: float, message: str | None = None) -> None:
        self.progress_fraction = min(max(float(fraction), 0.0), 1.0)
        if message is not None:
            self.message = message
        self._emit(
            JobEvent(
                self.job_id, "progress", JobState.RUNNING, self.progress_fraction, self.message
            )
        )

    def log(self, line: str) -> None:
        self._emit(JobEvent(self.job_id, "log", JobState.RUNNING, self.progress_fraction, line))

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
