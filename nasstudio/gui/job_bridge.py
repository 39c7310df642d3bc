"""Turns JobRunner events, which arrive on worker threads, into a Qt signal in the GUI thread."""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Signal

from nasstudio.jobs import JobEvent, JobRunner


class JobBridge(QObject):
    """Subscribes to a runner; ``event`` is emitted in the thread this object lives in."""

    event = Signal(object)  # JobEvent
    _from_worker = Signal(object)

    def __init__(self, runner: JobRunner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        # Always queued, even for the 'queued' event that submit() sends from the GUI thread,
        # so that a job's events never arrive before submit() has returned its id.
        self._from_worker.connect(self._deliver, Qt.ConnectionType.QueuedConnection)
        self._unsubscribe = runner.subscribe(self._from_worker.emit)

    def detach(self) -> None:
        """Stop listening; events already on their way are dropped."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _deliver(self, event: JobEvent) -> None:
        if self._unsubscribe is not None:
            self.event.emit(event)
