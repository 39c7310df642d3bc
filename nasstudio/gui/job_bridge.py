"""Turns JobRunner events, which arrive on the runner's writer thread, into Qt signals in the
GUI thread. One bridge per open project; every panel listens to it."""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Signal

from nasstudio.jobs import JobEvent, JobRunner


class JobBridge(QObject):
    """Subscribes to a runner; ``job_event`` is emitted in the thread this object lives in."""

    # Not named 'event': that would shadow QObject.event(), which Qt calls for every event the
    # object receives (PySide then leaks the object on each queued call).
    job_event = Signal(object)  # JobEvent
    # A job was queued from this window (emitted at once, before its first event): panels add
    # its row and may select it.
    submitted = Signal(int)
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
            self.job_event.emit(event)
