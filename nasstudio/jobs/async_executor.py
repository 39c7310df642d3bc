"""Jobs whose work is waiting on the network (LLM requests): an *async-generator* function
``async def fn(handle, project, **params)`` that runs as a task on an asyncio event loop, not in
a thread. In the app that is the GUI thread's qasync loop; without one (the CLI, scripts) it is
``background_loop()``.

It reports as ``worker.execute`` does (see there). An async generator cannot ``return`` a value,
so the job yields ``Returned(value)`` last instead. It must not block: its inner loops await.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from nasstudio.jobs.model import CancelFlag, JobFunction
from nasstudio.jobs.worker import JobSpec, Send, begin, reporting
from nasstudio.store import Project

_FINAL = ("done", "cancelled", "failed")


@dataclass(frozen=True, slots=True)
class Returned:
    """What an async-generator job yields last, in place of ``return value``: its result."""

    value: Any


async def execute_async(
    spec: JobSpec, send: Send, cancel: CancelFlag, worker: str, fn: JobFunction
) -> None:
    """The async twin of ``worker.execute``: run the job to its end and report every step of
    it through ``send``. Raises only asyncio.CancelledError, when its task is cancelled."""
    with reporting(send), Project(spec.project_path, readonly=True) as project:
        if not inspect.isasyncgenfunction(fn):
            raise TypeError(f"{fn.__qualname__} is not an async generator function")
        handle, generator = begin(spec, send, cancel, worker, project, fn)
        result = None
        try:
            while True:
                handle.check_cancelled()
                try:
                    item = await anext(generator)
                except StopAsyncIteration:
                    break
                if isinstance(item, Returned):
                    result = item.value
                    break
                send(("item", item))
        finally:
            await generator.aclose()
        send(("done", result))


class AsyncExecution:
    """One job as a task on ``loop``. Its messages pass through here, so that nothing it sends
    after its final message (a cancel ends it at once) reaches the runner."""

    def __init__(
        self, spec: JobSpec, send: Send, fn: JobFunction, loop: asyncio.AbstractEventLoop
    ) -> None:
        self._spec, self._fn, self._loop, self._forward = spec, fn, loop, send
        self._cancel = threading.Event()
        self._task: asyncio.Task | None = None
        self._ended = False
        self._on_loop(self._start)

    def cancel(self) -> None:
        self._cancel.set()
        self._on_loop(self._stop)

    def _on_loop(self, callback: Callable[[], None]) -> None:
        # Called on the loop's own thread (the GUI's), it acts at once: the runner may be
        # waiting for the job's end on that thread, which the loop then cannot run.
        if asyncio._get_running_loop() is self._loop:
            callback()
        else:
            self._loop.call_soon_threadsafe(callback)

    def _start(self) -> None:
        if not self._ended:  # else cancelled before it started
            self._task = self._loop.create_task(
                self._run(), name=f"nasstudio-job-{self._spec.job_id}"
            )

    async def _run(self) -> None:
        worker = f"event loop in thread {threading.current_thread().name}"
        try:
            await execute_async(self._spec, self._send, self._cancel, worker, self._fn)
        except asyncio.CancelledError:
            self._send(("cancelled",))

    def _stop(self) -> None:
        """The job ends now: the task is cancelled where it waits (requests in flight are
        dropped) and what it recorded so far stays."""
        self._send(("cancelled",))
        if self._task is not None:
            self._task.cancel()

    def _send(self, message: tuple) -> None:
        # Only ever called on the loop's thread: no lock needed.
        if self._ended:
            return
        self._ended = message[0] in _FINAL
        self._forward(message)


class AsyncExecutor:
    """Runs async-generator jobs on ``loop``: by default the event loop of the thread that makes
    the executor (in the app, the GUI thread's qasync loop)."""

    name = "async"

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.loop = loop or asyncio.get_event_loop()

    def start(self, spec: JobSpec, send: Send, fn: JobFunction) -> AsyncExecution:
        return AsyncExecution(spec, send, fn, self.loop)


@cache
def background_loop() -> asyncio.AbstractEventLoop:
    """An event loop running in a daemon thread of its own, one per process, for callers that
    run none (the CLI waits for its jobs on the main thread)."""
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="nasstudio-event-loop", daemon=True).start()
    return loop
