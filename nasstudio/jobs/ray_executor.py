"""Jobs as Ray tasks, for work that outgrows one machine.

Each job is one Ray task that runs ``worker.execute``. Its messages stream back through a
``ray.util.queue.Queue`` that a thread of this process pumps into the runner, which records
them as it does for every executor. Cancel is cooperative first (a small actor carries the
request to the task), then the task is cancelled by force after a grace period.

On a cluster (``address``) every node needs nasstudio and torch installed, and the paths a job
names must mean the same file on every node: the project file (each job opens it read-only),
corpus folders, and the checkpoint storage (``storage``, handed to jobs that take a
``checkpoint_root``). Put them on a shared file system mounted at the same path everywhere.
With a local runtime (no address) the workers run on this machine and see its files.

Ray is imported by this module only: importing nasstudio does not import it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import logging
import os
import socket
import threading
import traceback
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import ray
from ray.actor import ActorHandle
from ray.exceptions import RayError
from ray.util.queue import Empty, Queue

from nasstudio.jobs.executors import CANCEL_GRACE_S
from nasstudio.jobs.model import JobFunction
from nasstudio.jobs.worker import JobSpec, Send, execute, seed_generators

_FINAL = ("done", "cancelled", "failed")
# How long the pump waits for a message before it looks whether the task is still alive.
_POLL_S = 0.5
# Messages a task may put ahead of the runner before it waits: a job that yields faster than
# the project records holds no backlog (and its end does not queue behind one).
_QUEUED_MESSAGES = 64
_connect_lock = threading.Lock()
# Where this module connected Ray (an executor's ``where``): one runtime per process.
_connected_to: str | None = None


@ray.remote(num_cpus=0)
class _CancelBoard:
    """The cancel requests of one executor's jobs: one small actor for all of them (each
    actor is a process of its own)."""

    def __init__(self) -> None:
        self._events: dict[int, asyncio.Event] = {}
        self._cancelled: set[int] = set()

    def _event(self, job_id: int) -> asyncio.Event:
        return self._events.setdefault(job_id, asyncio.Event())

    async def cancel(self, job_id: int) -> None:
        self._cancelled.add(job_id)
        self._event(job_id).set()

    async def wait(self, job_id: int) -> bool:
        """Until the job is cancelled (True) or has ended (False)."""
        await self._event(job_id).wait()
        return job_id in self._cancelled

    async def forget(self, job_id: int) -> None:
        self._cancelled.discard(job_id)
        event = self._events.pop(job_id, None)
        if event is not None:
            event.set()


# No retries: a task whose worker died has already streamed records that were recorded.
@ray.remote(max_retries=0)
def _task(spec: JobSpec, events: Queue, board: ActorHandle) -> None:
    """The task: this worker's generators and thread count, then the job, its messages put on
    ``events``. A thread waits on the cancel board, so the job's frequent cancel checks stay
    local; the driver releases it when the job has ended."""
    seed_generators(spec.seed, spec.threads)
    cancel = threading.Event()
    lock = threading.Lock()

    def send(message: tuple) -> None:
        with lock:  # a job may report from a thread of its own
            events.put(message)

    def listen() -> None:
        with contextlib.suppress(RayError):  # the driver is gone: nobody hears the job anyway
            if ray.get(board.wait.remote(spec.job_id)):
                cancel.set()

    threading.Thread(target=listen, name="nasstudio-cancel-listener", daemon=True).start()
    execute(spec, send, cancel, f"Ray worker {os.getpid()} on {socket.gethostname()}")


class RayExecution:
    """One job on Ray. A thread connects to Ray (the first time), submits the task and pumps
    its messages; a task that ends without its final message (its worker died, or it was
    cancelled by force) still ends its job, with the reason."""

    def __init__(self, executor: RayExecutor, spec: JobSpec, options: dict, send: Send) -> None:
        self._executor = executor
        self._job_id = spec.job_id
        self._send = send
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._finished = threading.Event()
        self._ref: ray.ObjectRef | None = None
        # Connecting may take seconds: never on the caller's (perhaps the GUI's) thread.
        threading.Thread(
            target=self._drive,
            args=(spec, options),
            name=f"nasstudio-ray-job-{spec.job_id}",
            daemon=True,
        ).start()

    def cancel(self) -> None:
        if self._cancel.is_set():
            return
        self._cancel.set()
        with self._lock:
            if self._ref is None or self._finished.is_set():
                return  # not submitted (the driving thread sees the flag), or over
            self._executor.board.cancel.remote(self._job_id)
        timer = threading.Timer(self._executor.grace_s, self._force)
        timer.daemon = True
        timer.start()

    def _force(self) -> None:
        if not self._finished.is_set():
            ray.cancel(self._ref, force=True)

    def _drive(self, spec: JobSpec, options: dict) -> None:
        try:
            board = self._executor.connect()
            with self._lock:
                if not self._cancel.is_set():
                    events = Queue(_QUEUED_MESSAGES, actor_options={"num_cpus": 0})
                    self._ref = _task.options(**options).remote(spec, events, board)
            if self._ref is None:
                self._end(("cancelled", "cancelled before it started"))
                return
            if not self._forward(events, self._ref):
                self._end(self._fate(self._ref))
        # Ray unreachable, or shut down under the job (it raises SystemExit in threads that
        # wait on it then).
        except (Exception, SystemExit) as exc:
            if not self._finished.is_set():
                reason = f"Ray ({self._executor.where}): {type(exc).__name__}: {exc}"
                self._end(("failed", reason, traceback.format_exc(), reason))

    def _forward(self, events: Queue, ref: ray.ObjectRef) -> bool:
        """Pass the task's messages on until its final one (True) or its end without one."""
        ended = False
        while True:
            try:
                message = events.get_nowait() if ended else events.get(timeout=_POLL_S)
            except Empty:
                if ended:
                    return False
                # Its puts return before the task does: once it ended, one more look suffices.
                ended = bool(ray.wait([ref], timeout=0, fetch_local=False)[0])
                continue
            except RayError:
                return False  # the queue went down with its node
            if message[0] in _FINAL:
                self._end(message)
                return True
            self._send(message)

    def _fate(self, ref: ray.ObjectRef) -> tuple:
        """The final message of a task that sent none."""
        if self._cancel.is_set():
            grace = self._executor.grace_s
            self._send(("log", f"the Ray task was ended {grace:g} s after the cancel"))
            return ("cancelled",)
        try:
            ray.get(ref, timeout=_POLL_S)
            reason = "the Ray task ended without reporting how"
        except RayError as exc:
            lines = str(exc).strip().splitlines()
            reason = f"the Ray task died ({type(exc).__name__}: {lines[0] if lines else ''})"
        return ("failed", reason, "", reason)

    def _end(self, message: tuple) -> None:
        with self._lock:
            self._finished.set()
            if self._ref is not None:
                self._executor.board.forget.remote(self._job_id)
        self._send(message)


class RayExecutor:
    """Runs jobs as Ray tasks on the cluster at ``address``, else on a local runtime of
    ``num_cpus`` CPUs (all of them by default) that it starts when the first job starts. When
    this process has already started or joined a runtime, jobs run there.

    ``storage`` is a folder every worker reaches: jobs that keep checkpoints
    (``checkpoint_root``) keep them there instead of beside the project file.
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        storage: str | None = None,
        num_cpus: int | None = None,
        grace_s: float = CANCEL_GRACE_S,
    ) -> None:
        self.address = address
        self.storage = str(Path(storage).absolute()) if storage else None
        self.num_cpus = num_cpus
        self.grace_s = grace_s
        self.board: ActorHandle | None = None

    @property
    def where(self) -> str:
        return f"cluster {self.address}" if self.address else "local runtime"

    def connect(self) -> ActorHandle:
        """Start or join Ray unless this process already has; the cancel board."""
        global _connected_to
        with _connect_lock:
            if ray.is_initialized():
                if _connected_to not in (None, self.where):
                    raise RuntimeError(
                        f"this process runs its Ray jobs on the {_connected_to} already; "
                        f"restart it to run them on the {self.where}"
                    )
            else:
                # Jobs report through their queues; their workers' output would garble the
                # CLI's progress line, and Ray's own notices are not the user's business.
                settings = {"logging_level": logging.ERROR, "log_to_driver": False}
                if self.address:
                    _init_on_lasting_thread(address=self.address, **settings)
                else:
                    _init_on_lasting_thread(
                        num_cpus=self.num_cpus, include_dashboard=False, **settings
                    )
                _connected_to = self.where
            if self.board is None:
                self.board = _CancelBoard.remote()
            return self.board

    def start(self, spec: JobSpec, send: Send, fn: JobFunction) -> RayExecution:
        params = dict(spec.params)
        if self.storage and "checkpoint_root" in inspect.signature(fn).parameters:
            params.setdefault("checkpoint_root", self.storage)
        options = {"num_cpus": spec.threads, "name": f"nasstudio-job-{spec.job_id}"}
        if str(params.get("device", "")).startswith("cuda"):
            # Ray shows the task only the GPU it was given: the job uses that one, as 'cuda'.
            options["num_gpus"] = 1
            params["device"] = "cuda"
        # Workers run elsewhere: a path relative to this process' directory means nothing there.
        project_path = str(Path(spec.project_path).absolute())
        spec = dataclasses.replace(spec, project_path=project_path, params=params)
        return RayExecution(self, spec, options, send)


def _init_on_lasting_thread(**settings: Any) -> None:
    """``ray.init`` on a thread that lives as long as this process. The local runtime's
    processes are killed when the thread that started them ends (Linux's parent-death signal),
    and a job's thread ends with its job."""
    started: Future = Future()

    def keep() -> None:
        try:
            ray.init(**settings)
        except BaseException as exc:
            started.set_exception(exc)
            return
        started.set_result(None)
        threading.Event().wait()

    threading.Thread(target=keep, name="nasstudio-ray-runtime", daemon=True).start()
    started.result()
