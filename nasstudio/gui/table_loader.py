"""Reads ``Project.table`` away from the GUI thread, at most a few times a second.

A task's table takes about a second to read at 30,000 architectures, so the window asks this
loader and gets the frame back through a signal. The read runs in a reader process
(``table_reader``): a thread would hold the GIL, and so the GUI, most of that second. Requests
that arrive while a read runs, or sooner than the throttle allows, collapse into one later read.
A read first checks the task's revision (``Project.revisions``) and skips the table when the task
did not change since the last one.
"""

from __future__ import annotations

import time
from concurrent.futures import Future
from dataclasses import dataclass

import pandas as pd
from PySide6.QtCore import QObject, QTimer, Signal

from nasstudio.gui import table_reader
from nasstudio.store import Project

MIN_INTERVAL_MS = 250
# How often a read in flight is looked at: no thread of the reader ever touches a Qt object.
_POLL_MS = 10


@dataclass(frozen=True)
class TableSnapshot:
    task: str
    table: pd.DataFrame
    value_columns: dict[str, list[str]]


class TableLoader(QObject):
    """Loads one task's table in the reader process; ``loaded`` fires in the GUI thread."""

    loaded = Signal(object)  # TableSnapshot
    failed = Signal(str)

    def __init__(
        self,
        project: Project,
        min_interval_ms: int = MIN_INTERVAL_MS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._path = str(project.path)
        self._min_interval_ms = min_interval_ms
        self._task: str | None = None
        self._force = False
        self._pending = False
        self._closed = False
        self._next_allowed = 0.0
        self._last: tuple[str, int] | None = None  # task and revision of the last snapshot
        self._read: tuple[str, Future, float] | None = None  # task, future, start: in flight
        self._timer = QTimer(self, singleShot=True)
        self._timer.timeout.connect(self._start)
        self._poll = QTimer(self, interval=_POLL_MS)
        self._poll.timeout.connect(self._check)

    def request(self, task: str | None, force: bool = False) -> None:
        """Read ``task`` soon; ``force`` reads at once and reports even an unchanged table."""
        if self._closed or task is None:
            return
        if task != self._task:
            force = True
        self._task = task
        self._force |= force
        if self._read is not None:
            self._pending = True
            return
        wait_ms = 0 if self._force else (self._next_allowed - time.monotonic()) * 1000
        if self._force or not self._timer.isActive():
            self._timer.start(max(0, int(wait_ms)))

    def shutdown(self) -> None:
        """Stop reading; a read in flight finishes in the reader, unheard."""
        self._closed = True
        self._timer.stop()
        self._poll.stop()
        self._read = None

    def _start(self) -> None:
        if self._closed:
            return
        self._pending = False
        task, force, self._force = self._task, self._force, False
        known = self._last[1] if self._last is not None and self._last[0] == task else None
        future = table_reader.submit(self._path, task, None if force else known)
        self._read = (task, future, time.monotonic())
        self._poll.start()

    def _check(self) -> None:
        task, future, started = self._read
        if not future.done():
            return
        self._poll.stop()
        self._read = None
        # Leave the reader idle at least as long as it was busy: big tables are read less often.
        seconds = time.monotonic() - started
        self._next_allowed = time.monotonic() + max(self._min_interval_ms / 1000, seconds)
        error = future.exception()
        if error is not None:
            self.failed.emit(f"cannot read the table of '{task}': {error}")
        elif (result := future.result()) is not None:
            revision, table, value_columns = result
            self._last = (task, revision)
            if task == self._task:
                self.loaded.emit(TableSnapshot(task, table, value_columns))
        if self._pending:
            self.request(self._task)
