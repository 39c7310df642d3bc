"""Reading a task's table in a process of its own, for ``table_loader``. No Qt here: this module
is all the reader process imports (with the store, pandas and numpy).

Building the table of 30,000 architectures takes about a second of mostly GIL-holding work
(sqlite rows into Python objects, pandas pivots); done by a thread of the app, it would stall
the GUI thread for as long. In a process, only the finished frame crosses over.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import OrderedDict
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from nasstudio.store import Project

_OPEN_PROJECTS = 4  # read-only connections the reader keeps
_projects: OrderedDict[str, Project] = OrderedDict()  # in the reader process
_pool: ProcessPoolExecutor | None = None  # in the app


def read_table(path: str, task: str, known_revision: int | None) -> tuple[int, Any, Any] | None:
    """In the reader process: ``(revision, table, value_columns)`` of ``task``, or None when
    its revision is still ``known_revision``."""
    stat = os.stat(path)
    key = f"{path}:{stat.st_dev}:{stat.st_ino}"  # a project made anew at the same path is another
    project = _projects.pop(key, None) or Project(path, readonly=True)
    _projects[key] = project
    while len(_projects) > _OPEN_PROJECTS:
        _projects.popitem(last=False)[1].close()
    # Read before the table: a write in between only makes the next read come sooner.
    revision = project.revisions().get(task, 0)
    if revision == known_revision:
        return None
    # Number columns can come out as objects (a pivot over mixed frames): as floats they cross
    # to the app as raw buffers, and the app unpickles them holding the GIL.
    return revision, project.table(task).infer_objects(), project.value_columns(task)


def submit(path: str, task: str, known_revision: int | None) -> Future:
    """Read in the app's one reader process (started on first use, again after a crash)."""
    global _pool
    if _pool is None:
        _pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    try:
        return _pool.submit(read_table, path, task, known_revision)
    except BrokenProcessPool:
        _pool = None
        return submit(path, task, known_revision)
