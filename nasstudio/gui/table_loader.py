"""Reads ``Project.table`` off the GUI thread, at most a few times a second.

A task's table takes about 1.5 s to read at 70,000 architectures, so the window asks this
loader and gets the frame back through a signal; requests that arrive while a read runs, or
sooner than the throttle allows, collapse into one later read.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pandas as pd
from PySide6.QtCore import QObject, Qt, QTimer, Signal

from nasstudio.store import Project

MIN_INTERVAL_MS = 250


@dataclass(frozen=True)
class TableSnapshot:
    task: str
    table: pd.DataFrame
    value_columns: dict[str, list[str]]


class TableLoader(QObject):
    """Loads one task's table in a worker thread; ``loaded`` fires in the GUI thread."""

    loaded = Signal(object)  # TableSnapshot
    failed = Signal(str)
    _done = Signal(object, float)  # from the worker: snapshot, None (unchanged) or exception

    def __init__(
        self,
        project: Project,
        min_interval_ms: int = MIN_INTERVAL_MS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._project = project
        self._min_interval_ms = min_interval_ms
        # One thread, so the project keeps one extra connection for the whole session.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="nasstudio-table")
        self._task: str | None = None
        self._force = False
        self._busy = False
        self._pending = False
        self._closed = False
        self._next_allowed = 0.0
        self._last: TableSnapshot | None = None  # touched by the worker thread only
        self._timer = QTimer(self, singleShot=True)
        self._timer.timeout.connect(self._start)
        self._done.connect(self._finished, Qt.ConnectionType.QueuedConnection)

    @property
    def busy(self) -> bool:
        return self._busy or self._timer.isActive()

    def request(self, task: str | None, force: bool = False) -> None:
        """Read ``task`` soon; ``force`` reads at once and reports even an unchanged table."""
        if self._closed or task is None:
            return
        if task != self._task:
            force = True
        self._task = task
        self._force |= force
        if self._busy:
            self._pending = True
            return
        wait_ms = 0 if self._force else (self._next_allowed - time.monotonic()) * 1000
        if self._force or not self._timer.isActive():
            self._timer.start(max(0, int(wait_ms)))

    def shutdown(self) -> None:
        """Stop reading; a read in progress is allowed to finish (the project stays open)."""
        self._closed = True
        self._timer.stop()
        self._executor.shutdown(wait=True)

    def _start(self) -> None:
        if self._closed:
            return
        self._busy, self._pending = True, False
        task, force, self._force = self._task, self._force, False
        self._executor.submit(self._read, task, force)

    def _read(self, task: str, force: bool) -> None:
        started = time.monotonic()
        try:
            snapshot = TableSnapshot(
                task, self._project.table(task), self._project.value_columns(task)
            )
        except Exception as exc:  # reported in the GUI thread
            self._done.emit(exc, time.monotonic() - started)
            return
        last, self._last = self._last, snapshot
        unchanged = (
            not force
            and last is not None
            and last.task == task
            and last.value_columns == snapshot.value_columns
            and last.table.equals(snapshot.table)
        )
        self._done.emit(None if unchanged else snapshot, time.monotonic() - started)

    def _finished(self, result: object, seconds: float) -> None:
        self._busy = False
        if self._closed:
            return
        # Leave the worker idle at least as long as it was busy, so big tables are read less.
        interval = max(self._min_interval_ms / 1000, 2 * seconds)
        self._next_allowed = time.monotonic() + interval
        if isinstance(result, Exception):
            self.failed.emit(f"cannot read the table of '{self._task}': {result}")
        elif result is not None and result.task == self._task:
            self.loaded.emit(result)
        if self._pending:
            self.request(self._task)
