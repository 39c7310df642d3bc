"""Runs jobs on worker threads, records them in the project store and broadcasts events."""

from __future__ import annotations

import json
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from nasstudio.jobs.model import JobCancelled, JobEvent, JobFunction, JobHandle, JobState
from nasstudio.store import Project

# Progress is written to the store at most this often per job; events go out every time.
_STORE_PROGRESS_INTERVAL_S = 0.5


def _recordable(params: dict[str, Any]) -> dict[str, Any]:
    """The parameters that can be stored as JSON (a project or a callback cannot)."""
    out = {}
    for key, value in params.items():
        try:
            json.dumps(value)
        except TypeError:
            continue
        out[key] = value
    return out


class JobRunner:
    """Executes job functions off the caller's thread, ``max_workers`` at a time."""

    def __init__(self, project: Project, max_workers: int = 2) -> None:
        self.project = project
        self._executor = ThreadPoolExecutor(max_workers, thread_name_prefix="nasstudio-job")
        self._lock = threading.Lock()
        self._handles: dict[int, JobHandle] = {}
        self._futures: dict[int, Future] = {}
        self._last_stored: dict[int, float] = {}
        self._subscribers: list[Callable[[JobEvent], None]] = []

    def subscribe(self, callback: Callable[[JobEvent], None]) -> Callable[[], None]:
        """Call ``callback`` (on a worker thread) for every event; returns an unsubscriber."""
        with self._lock:
            self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def submit(self, kind: str, title: str, fn: JobFunction, **params: Any) -> int:
        job_id = self.project.create_job(kind, title, _recordable(params))
        handle = JobHandle(job_id, self._on_event)
        with self._lock:
            self._handles[job_id] = handle
            self._futures[job_id] = self._executor.submit(self._run, handle, fn, params)
        self._broadcast(JobEvent(job_id, "state", JobState.QUEUED, message=title))
        return job_id

    def cancel(self, job_id: int) -> None:
        """Ask a job to stop; one still queued is cancelled at once."""
        with self._lock:
            handle, future = self._handles.get(job_id), self._futures.get(job_id)
        if handle is None or future is None:
            return
        handle.request_cancel()
        if future.cancel():
            self._finish(handle, JobState.CANCELLED, "cancelled before it started")

    def wait(self, job_id: int, timeout: float | None = None) -> Any:
        """Block until the job ends; returns the job function's return value (None unless done)."""
        return self._futures[job_id].result(timeout)

    def state(self, job_id: int) -> JobState:
        return JobState(self.project.job(job_id).state)

    def shutdown(self, cancel: bool = True) -> None:
        if cancel:
            with self._lock:
                handles = list(self._handles)
            for job_id in handles:
                self.cancel(job_id)
        self._executor.shutdown(wait=True)

    def _run(self, handle: JobHandle, fn: JobFunction, params: dict[str, Any]) -> Any:
        job_id = handle.job_id
        self.project.update_job(job_id, state=JobState.RUNNING.value, started_at=time.time())
        self._broadcast(JobEvent(job_id, "state", JobState.RUNNING))
        generator = fn(handle, **params)
        try:
            while True:
                handle.check_cancelled()
                try:
                    partial = next(generator)
                except StopIteration as stop:
                    result = stop.value
                    break
                self._broadcast(
                    JobEvent(
                        job_id,
                        "partial",
                        JobState.RUNNING,
                        handle.progress_fraction,
                        handle.message,
                        partial,
                    )
                )
        except JobCancelled:
            self._finish(handle, JobState.CANCELLED, "cancelled")
            return None
        except Exception as exc:
            self.project.append_job_log(job_id, traceback.format_exc())
            self._finish(handle, JobState.FAILED, f"{type(exc).__name__}: {exc}", error=str(exc))
            return None
        finally:
            generator.close()
        self._finish(handle, JobState.DONE, handle.message or "done", progress=1.0)
        return result

    def _finish(
        self,
        handle: JobHandle,
        state: JobState,
        message: str,
        error: str | None = None,
        progress: float | None = None,
    ) -> None:
        progress = handle.progress_fraction if progress is None else progress
        self.project.update_job(
            handle.job_id,
            state=state.value,
            progress=progress,
            message=message,
            error=error,
            finished_at=time.time(),
        )
        self._broadcast(JobEvent(handle.job_id, "state", state, progress, message, error))

    def _on_event(self, event: JobEvent) -> None:
        if event.kind == "log":
            self.project.append_job_log(event.job_id, event.message)
        elif event.kind == "progress":
            now = time.monotonic()
            if now - self._last_stored.get(event.job_id, 0.0) >= _STORE_PROGRESS_INTERVAL_S:
                self._last_stored[event.job_id] = now
                self.project.update_job(
                    event.job_id, progress=event.progress, message=event.message
                )
        self._broadcast(event)

    def _broadcast(self, event: JobEvent) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            callback(event)
