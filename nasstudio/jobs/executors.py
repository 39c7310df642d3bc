"""Where a job runs: a thread of this process (short I/O work) or a spawned worker process
(torch work: its own generators, thread counts and crash boundary). Both run
``worker.execute`` and pass its messages to the runner's ``send``."""

from __future__ import annotations

import multiprocessing
import signal
import threading
from typing import Any, Protocol

from nasstudio.jobs.model import JobFunction
from nasstudio.jobs.worker import JobSpec, Send, execute, process_main

# After a cancel, a worker process gets this long to stop by itself (and write its
# checkpoint) before it is terminated.
CANCEL_GRACE_S = 1.5
_KILL_AFTER_TERMINATE_S = 1.0


class Execution(Protocol):
    """A started job."""

    def cancel(self) -> None:
        """Ask the job to stop; an executor that can may end it after a grace period."""
        ...


class Executor(Protocol):
    name: str

    def start(self, spec: JobSpec, send: Send, fn: JobFunction) -> Execution: ...


class ThreadExecution:
    def __init__(self, spec: JobSpec, send: Send, fn: JobFunction) -> None:
        self._cancel = threading.Event()
        self._thread = threading.Thread(
            target=execute,
            args=(spec, send, self._cancel, "thread", fn),
            name=f"nasstudio-job-{spec.job_id}",
            daemon=True,
        )
        self._thread.start()

    def cancel(self) -> None:
        self._cancel.set()


class ThreadExecutor:
    name = "thread"

    def start(self, spec: JobSpec, send: Send, fn: JobFunction) -> ThreadExecution:
        return ThreadExecution(spec, send, fn)


class ProcessExecution:
    """One spawned process per job; a reader thread forwards its messages. A process that dies
    without its final message (a crash, out of memory, the kill after a cancel) still ends its
    job, with the reason."""

    def __init__(self, spec: JobSpec, send: Send, grace_s: float) -> None:
        context = multiprocessing.get_context("spawn")
        reader, writer = context.Pipe(duplex=False)
        self._cancel = context.Event()
        self._grace_s = grace_s
        self._send = send
        self._process = context.Process(
            target=process_main,
            args=(spec, writer, self._cancel),
            name=f"nasstudio-job-{spec.job_id}",
            daemon=True,  # ends with the app that started it
        )
        self._process.start()
        writer.close()  # the child holds the only write end: EOF once it exits
        self._reader = threading.Thread(
            target=self._forward, args=(reader,), name=f"nasstudio-job-{spec.job_id}-reader"
        )
        self._reader.daemon = True
        self._reader.start()

    def cancel(self) -> None:
        self._cancel.set()
        timer = threading.Timer(self._grace_s, self._end)
        timer.daemon = True
        timer.start()

    def _end(self) -> None:
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(_KILL_AFTER_TERMINATE_S)
        if self._process.is_alive():
            self._process.kill()

    def _forward(self, reader: Any) -> None:
        finished = False
        while True:
            try:
                message = reader.recv()
            except (EOFError, OSError):
                break
            finished = finished or message[0] in ("done", "cancelled", "failed")
            self._send(message)
        reader.close()
        self._process.join()
        if finished:
            return
        if self._cancel.is_set():
            self._send(("log", f"the worker was ended {self._grace_s:g} s after the cancel"))
            self._send(("cancelled",))
        else:
            reason = f"the worker process died ({_describe_exit(self._process.exitcode)})"
            self._send(("failed", reason, "", reason))


class ProcessExecutor:
    name = "process"

    def __init__(self, grace_s: float = CANCEL_GRACE_S) -> None:
        self.grace_s = grace_s

    def start(self, spec: JobSpec, send: Send, fn: JobFunction) -> ProcessExecution:
        return ProcessExecution(spec, send, self.grace_s)


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "no exit code"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
