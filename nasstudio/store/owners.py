"""Who owns a job: the host, pid and start time of the process whose runner queued it."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from functools import cache

import psutil

# psutil derives start times from clock ticks: compare them with some slack.
_START_TOLERANCE_S = 1.0


@dataclass(frozen=True, slots=True)
class JobOwner:
    """The process that runs a job's runner: a job whose owner is gone was interrupted."""

    host: str
    pid: int
    started: float


@cache
def this_process() -> JobOwner:
    pid = os.getpid()
    return JobOwner(socket.gethostname(), pid, psutil.Process(pid).create_time())


def owner_alive(owner: JobOwner) -> bool:
    """Whether the owning process still runs. A pid reused by a later process does not count;
    an owner on another host is taken to be alive (it cannot be checked from here)."""
    if not owner.host:  # a job recorded before owners were (schema version 1)
        return False
    if owner.host != socket.gethostname():
        return True
    try:
        started = psutil.Process(owner.pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return abs(started - owner.started) < _START_TOLERANCE_S
