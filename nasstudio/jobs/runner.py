"""The runner: queues jobs per resource, starts them on their executor, and is the single
writer of what they produce. Every message of every job passes through one writer thread,
which records it on the runner's own connection in a short transaction and then tells the
subscribers, so they hear each job's events in order: queued, running, then its end."""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nasstudio.jobs.executors import Execution, Executor, ProcessExecutor, ThreadExecutor
from nasstudio.jobs.model import JobEvent, JobFunction, JobState
from nasstudio.jobs.records import records_in, write_records
from nasstudio.jobs.worker import JobSpec, function_path, resolve
from nasstudio.store import Project, this_process

log = logging.getLogger(__name__)

# Progress is written to the store at most this often per job; events go out every time.
_STORE_PROGRESS_INTERVAL_S = 0.5
# Results of finished jobs kept for ``wait``.
_KEPT_RESULTS = 256
# Items a job may yield ahead of the writer: a job that produces faster than the project can
# record waits, so that its cancel is not stuck behind a backlog.
_ITEMS_IN_FLIGHT = 4
_FINAL = {"done": JobState.DONE, "cancelled": JobState.CANCELLED, "failed": JobState.FAILED}


def default_slots() -> dict[str, int]:
    """How many jobs of each resource run at once. Torch jobs use one thread each, so half the
    cores leaves the window and the rest of the machine responsive."""
    return {"io": 4, "llm": 2, "ray": 8, "cpu": max(1, (os.cpu_count() or 2) // 2)}


def _recordable(params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters that can be stored as JSON."""
    out = {}
    for key, value in params.items():
        try:
            json.dumps(value)
        except TypeError:
            continue
        out[key] = value
    return out


@dataclass
class _Job:
    spec: JobSpec
    fn: JobFunction
    title: str
    resource: str
    executor: str
    future: Future = field(default_factory=Future)
    execution: Execution | None = None
    progress: float = 0.0
    message: str = ""
    stored_at: float = 0.0
    write_error: str | None = None
    in_flight: threading.Semaphore = field(
        default_factory=lambda: threading.Semaphore(_ITEMS_IN_FLIGHT)
    )


class JobRunner:
    """Runs jobs of one project. ``slots`` caps the jobs running at once per resource ('cpu',
    'cuda:0', 'io', 'llm', 'ray'; 1 for any other); ``executors`` adds or replaces executors
    by name ('thread' and 'process' are always there)."""

    def __init__(
        self,
        project: Project | str | Path,
        slots: Mapping[str, int] | None = None,
        executors: Mapping[str, Executor] | None = None,
        threads_per_worker: int = 1,
    ) -> None:
        path = project.path if isinstance(project, Project) else Path(project)
        self.project = Project(path)  # the runner's own connections: it is the single writer
        self.slots = {**default_slots(), **(slots or {})}
        self.executors: dict[str, Executor] = {
            "thread": ThreadExecutor(),
            "process": ProcessExecutor(),
            **(executors or {}),
        }
        self.threads_per_worker = threads_per_worker
        self._lock = threading.Lock()
        self._jobs: dict[int, _Job] = {}
        self._waiting: dict[str, deque[int]] = {}
        self._running: dict[str, set[int]] = {}
        self._results: OrderedDict[int, Future] = OrderedDict()
        self._subscribers: list[Callable[[JobEvent], None]] = []
        self._messages: queue.SimpleQueue = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write_loop, name="nasstudio-job-writer")
        self._writer.daemon = True
        self._writer.start()

    # --- the public interface ---------------------------------------------------------------

    def subscribe(self, callback: Callable[[JobEvent], None]) -> Callable[[], None]:
        """Call ``callback`` (on the runner's writer thread) for every event; returns an
        unsubscriber. A callback that raises is logged and never fails a job."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def submit(
        self,
        kind: str,
        title: str,
        fn: JobFunction,
        *,
        executor: str | None = None,
        resource: str | None = None,
        **params: Any,
    ) -> int:
        """Queue ``fn(handle, project, **params)``; returns the job id. ``executor`` and
        ``resource`` default to what the function declares (``model.job_defaults``)."""
        executor = executor or getattr(fn, "job_executor", "thread")
        resource = resource or getattr(fn, "job_resource", None) or "io"
        if executor not in self.executors:
            self.executors[executor] = _optional_executor(executor)
        recorded = _recordable(params)
        path = function_path(fn)
        # A job whose parameters are all in the store can be run again from its row.
        rerunnable = path if len(recorded) == len(params) else ""
        job_id = self.project.create_job(
            kind, title, recorded, this_process(), rerunnable, resource, executor
        )
        spec = JobSpec(
            job_id,
            path,
            str(self.project.path),
            params,
            seed=job_id,
            threads=self.threads_per_worker,
        )
        job = _Job(spec, fn, title, resource, executor)
        with self._lock:
            self._jobs[job_id] = job
            self._results[job_id] = job.future
            while len(self._results) > _KEPT_RESULTS:
                self._results.popitem(last=False)
            self._waiting.setdefault(resource, deque()).append(job_id)
        self._messages.put((job_id, ("queued",)))
        self._schedule(resource)
        return job_id

    def rerun(self, job_id: int) -> int:
        """Queue a finished job again with the same function and parameters (a training job
        resumes from its checkpoint)."""
        record = self.project.job(job_id)
        if not record.function:
            raise ValueError(f"job {job_id} ({record.title}) cannot be run again from the store")
        return self.submit(
            record.kind,
            record.title,
            resolve(record.function),
            executor=record.executor,
            resource=record.resource,
            **record.params,
        )

    def cancel(self, job_id: int) -> None:
        """Ask a job to stop; one still queued is cancelled at once."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return
            if job.execution is None:
                self._waiting[job.resource].remove(job_id)
                self._messages.put((job_id, ("cancelled", "cancelled before it started")))
                return
        job.execution.cancel()

    def wait(self, job_id: int, timeout: float | None = None) -> Any:
        """Block until the job ends; its function's return value (None unless done)."""
        with self._lock:
            future = self._results[job_id]
        return future.result(timeout)

    def state(self, job_id: int) -> JobState:
        return JobState(self.project.job(job_id).state)

    def active(self) -> list[int]:
        """The ids of the jobs queued or running here."""
        with self._lock:
            return list(self._jobs)

    def shutdown(self, cancel: bool = True, timeout: float | None = None) -> None:
        """Cancel (or let finish) every job, wait for them, then stop the writer."""
        with self._lock:
            futures = [(job_id, job.future) for job_id, job in self._jobs.items()]
        if cancel:
            for job_id, _ in futures:
                self.cancel(job_id)
        for _, future in futures:
            future.exception(timeout)
        self._messages.put((None, ("stop",)))
        self._writer.join(timeout)
        self.project.close()

    # --- scheduling -------------------------------------------------------------------------

    def _schedule(self, resource: str) -> None:
        with self._lock:
            waiting = self._waiting.get(resource, deque())
            running = self._running.setdefault(resource, set())
            while waiting and len(running) < self.slots.get(resource, 1):
                job_id = waiting.popleft()
                job = self._jobs[job_id]
                running.add(job_id)
                job.execution = self.executors[job.executor].start(
                    job.spec, lambda message, job=job: self._send(job, message), job.fn
                )

    def _send(self, job: _Job, message: tuple) -> None:
        """Called where the job runs: hand a message to the writer."""
        if message[0] == "item":
            job.in_flight.acquire()
        self._messages.put((job.spec.job_id, message))

    # --- the writer -------------------------------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            job_id, message = self._messages.get()
            if message[0] == "stop":
                return
            job = self._jobs.get(job_id)
            if job is None:
                continue  # a message after the job's end (a forced cancel racing its finish)
            try:
                self._handle(job_id, job, message)
            except Exception:
                log.exception("recording a message of job %s failed", job_id)

    def _handle(self, job_id: int, job: _Job, message: tuple) -> None:
        kind = message[0]
        if kind == "queued":
            self._broadcast(JobEvent(job_id, "state", JobState.QUEUED, message=job.title))
        elif kind == "running":
            self.project.update_job(
                job_id, state=JobState.RUNNING.value, started_at=time.time(), worker=message[1]
            )
            self._broadcast(JobEvent(job_id, "state", JobState.RUNNING, message=message[1]))
        elif kind == "progress":
            self._progress(job_id, job, *message[1:])
        elif kind == "log":
            self.project.append_job_log(job_id, message[1])
            self._broadcast(JobEvent(job_id, "log", JobState.RUNNING, job.progress, message[1]))
        elif kind == "item":
            try:
                self._record(job_id, job, message[1])
            finally:
                job.in_flight.release()
        elif kind in _FINAL:
            self._end(job_id, job, kind, message[1:])

    def _progress(self, job_id: int, job: _Job, fraction: float, text: str) -> None:
        job.progress, job.message = fraction, text
        now = time.monotonic()
        if now - job.stored_at >= _STORE_PROGRESS_INTERVAL_S:
            job.stored_at = now
            self.project.update_job(job_id, progress=fraction, message=text)
        self._broadcast(JobEvent(job_id, "progress", JobState.RUNNING, fraction, text))

    def _record(self, job_id: int, job: _Job, item: Any) -> None:
        if job.write_error is not None:
            return
        records = records_in(item)
        tasks: frozenset[str] = frozenset()
        if records:
            try:
                tasks = write_records(self.project, job_id, records)
            except Exception as exc:
                # What the job produced cannot be recorded: stop it and say why.
                job.write_error = f"cannot record the job's results: {type(exc).__name__}: {exc}"
                self.project.append_job_log(job_id, job.write_error)
                if job.execution is not None:
                    job.execution.cancel()
                return
        self._broadcast(
            JobEvent(
                job_id, "partial", JobState.RUNNING, job.progress, job.message, item, tasks=tasks
            )
        )

    def _end(self, job_id: int, job: _Job, kind: str, details: tuple) -> None:
        state, error, result = _FINAL[kind], None, None
        if kind == "done":
            result, message, progress = details[0], job.message or "done", 1.0
        elif kind == "cancelled":
            message, progress = (details[0] if details else "cancelled"), job.progress
        else:
            message, trace, error = details
            progress = job.progress
            if trace:
                self.project.append_job_log(job_id, trace)
        if job.write_error is not None:
            state, error, message, result = JobState.FAILED, job.write_error, job.write_error, None
        self.project.update_job(
            job_id,
            state=state.value,
            progress=progress,
            message=message,
            error=error,
            finished_at=time.time(),
        )
        with self._lock:
            del self._jobs[job_id]  # a finished job's handle and execution are dropped
            self._running.get(job.resource, set()).discard(job_id)
        self._broadcast(JobEvent(job_id, "state", state, progress, message, error))
        job.future.set_result(result)
        self._schedule(job.resource)

    def _broadcast(self, event: JobEvent) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(event)
            except Exception:
                log.exception("a job listener failed on %s", event)


def _optional_executor(name: str) -> Executor:
    if name == "ray":
        from nasstudio.jobs.ray_executor import RayExecutor

        return RayExecutor()
    raise ValueError(f"unknown executor '{name}': expected thread, process or ray")
