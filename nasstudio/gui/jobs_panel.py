"""The jobs panel: every job of the project with its state, progress and message, Cancel for
the queued and running jobs of this window, Run again for interrupted, failed and cancelled
ones, and the selected job's log."""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from nasstudio.jobs import JobEvent, JobState
from nasstudio.store import JobRecord, Project

ID, TITLE, STATE, PROGRESS, MESSAGE, ACTION = range(6)
_HEADERS = ("#", "Job", "State", "Progress", "Message", "")
_STATE_COLORS = {
    JobState.QUEUED: QColor("#1f5fa8"),
    JobState.FAILED: QColor("#b00020"),
    JobState.CANCELLED: QColor("#777777"),
    JobState.INTERRUPTED: QColor("#b35c00"),
    JobState.DONE: QColor("#1b7a1b"),
}
_RERUNNABLE = (JobState.INTERRUPTED, JobState.FAILED, JobState.CANCELLED)
_AGAIN = "Run again starts it anew with the same settings; a training resumes from its checkpoint."


class JobsPanel(QWidget):
    """Lists jobs from the store and follows the live JobEvents of this window's runner."""

    cancel_requested = Signal(int)  # job id
    rerun_requested = Signal(int)  # job id

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._project: Project | None = None
        self._items: dict[int, QTreeWidgetItem] = {}
        self._states: dict[int, JobState] = {}
        self._records: dict[int, JobRecord] = {}  # as last read from the store
        self._own: set[int] = set()  # run by this window's runner: they can be cancelled
        self._live: set[int] = set()  # unfinished jobs whose events are newer than the store
        self.tree = self._make_tree()
        self.log = QPlainTextEdit(readOnly=True, placeholderText="Select a job to see its log")
        self.log.setToolTip("Log of the selected job")
        self.log.setMaximumBlockCount(5000)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.tree)
        splitter.addWidget(self.log)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)
        self.tree.currentItemChanged.connect(self._show_log)

    def _make_tree(self) -> QTreeWidget:
        tree = QTreeWidget(self)
        tree.setHeaderLabels(_HEADERS)
        tree.setRootIsDecorated(False)
        tree.setUniformRowHeights(True)
        tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        tree.setToolTip("Jobs of this project, newest first; select one to see its log")
        header = tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(MESSAGE, QHeaderView.ResizeMode.Stretch)
        for column, width in ((ID, 40), (TITLE, 240), (STATE, 90), (PROGRESS, 140), (ACTION, 90)):
            tree.setColumnWidth(column, width)
        tree.setSortingEnabled(True)
        tree.sortByColumn(ID, Qt.SortOrder.DescendingOrder)
        return tree

    # --- public API ---------------------------------------------------------------------------

    def set_project(self, project: Project | None) -> None:
        """Show ``project``'s jobs (clears everything from the previous one)."""
        self._project = project
        self.tree.clear()
        self.log.clear()
        for collection in (self._items, self._states, self._records, self._own, self._live):
            collection.clear()
        self.refresh()

    def refresh(self) -> list[JobRecord]:
        """Re-read the jobs from the store (jobs of another process appear this way); only
        rows whose record changed are touched. Returns those records."""
        if self._project is None:
            return []
        changed = [
            record
            for record in self._project.jobs()
            if record.id not in self._live and self._records.get(record.id) != record
        ]
        for record in changed:
            self._show_record(record)
        return changed

    def add_job(self, job_id: int) -> None:
        """A job this window queued: show its row at once, selected, with a Cancel button.
        Its events are newer than the store from now on, until its end."""
        self._own.add(job_id)
        self._live.add(job_id)
        if self._project is not None:
            self._show_record(self._project.job(job_id))
            self.select_job(job_id)

    def on_event(self, event: JobEvent) -> None:
        """Apply one JobEvent of this window's runner (in the GUI thread)."""
        if event.kind == "log":
            if self._selected_job() == event.job_id:
                self.log.appendPlainText(event.message)
            return
        self._own.add(event.job_id)
        if event.state.finished:
            # The final row (message, error, whether it can run again) is in the store now.
            self._live.discard(event.job_id)
            if self._project is not None:
                self._show_record(self._project.job(event.job_id))
            if self._selected_job() == event.job_id:
                self._show_log()
            return
        self._live.add(event.job_id)
        if event.job_id not in self._items and self._project is not None:
            self._show_record(self._project.job(event.job_id))
        message = "" if event.kind == "state" and event.state == JobState.QUEUED else event.message
        self._update(event.job_id, event.state, event.progress, message)

    def state(self, job_id: int) -> JobState | None:
        return self._states.get(job_id)

    def progress_bar(self, job_id: int) -> QProgressBar | None:
        item = self._items.get(job_id)
        return self.tree.itemWidget(item, PROGRESS) if item else None

    def cancel_button(self, job_id: int) -> QPushButton | None:
        return self._action_button(job_id, "cancel")

    def rerun_button(self, job_id: int) -> QPushButton | None:
        return self._action_button(job_id, "rerun")

    def select_job(self, job_id: int) -> None:
        if job_id in self._items:
            self.tree.setCurrentItem(self._items[job_id])

    def running_count(self) -> int:
        """Jobs queued or running."""
        return sum(not state.finished for state in self._states.values())

    # --- internals ----------------------------------------------------------------------------

    def _show_record(self, record: JobRecord) -> None:
        self._records[record.id] = record
        item = self._items.get(record.id) or self._add_item(record.id)
        item.setText(TITLE, record.title)
        item.setToolTip(TITLE, _record_tooltip(record))
        self._update(record.id, JobState(record.state), record.progress, record.message or "")

    def _update(self, job_id: int, state: JobState, progress: float, message: str) -> None:
        item = self._items.get(job_id) or self._add_item(job_id)
        item.setText(STATE, state.value)
        item.setForeground(STATE, QBrush(_STATE_COLORS.get(state, QColor("#000000"))))
        item.setToolTip(STATE, self._state_tooltip(job_id, state))
        if message:
            item.setText(MESSAGE, message)
            item.setToolTip(MESSAGE, message)
        self.tree.itemWidget(item, PROGRESS).setValue(round(100 * progress))
        self._states[job_id] = state
        self._update_action(item, job_id, state)

    def _state_tooltip(self, job_id: int, state: JobState) -> str:
        record = self._records.get(job_id)
        where = f"{record.executor} executor, {record.resource} queue" if record else ""
        if state == JobState.QUEUED:
            return f"Waiting for a free slot of its resource ({where})"
        if state == JobState.RUNNING:
            return f"Running: {record.worker or where}" if record else "Running"
        if state == JobState.INTERRUPTED:
            why = record.message if record and record.message else "interrupted"
            return f"{why[:1].upper()}{why[1:]}: it did not finish.\n{_AGAIN}"
        if state in _RERUNNABLE:
            return f"{state.value.capitalize()}.\n{_AGAIN}"
        return state.value.capitalize()

    def _add_item(self, job_id: int) -> QTreeWidgetItem:
        item = _JobItem([str(job_id)])
        item.setData(ID, Qt.ItemDataRole.UserRole, job_id)
        self.tree.addTopLevelItem(item)
        bar = QProgressBar(maximum=100, textVisible=True)
        bar.setMaximumHeight(self.tree.fontMetrics().height() + 4)
        self.tree.setItemWidget(item, PROGRESS, bar)
        self._items[job_id] = item
        return item

    def _update_action(self, item: QTreeWidgetItem, job_id: int, state: JobState) -> None:
        """Cancel for this window's queued and running jobs; Run again for an interrupted,
        failed or cancelled job whose function and parameters are in the store."""
        record = self._records.get(job_id)
        wanted = None
        if not state.finished and job_id in self._own:
            wanted = "cancel"
        elif state in _RERUNNABLE and record is not None and record.function:
            wanted = "rerun"
        button = self.tree.itemWidget(item, ACTION)
        if button is not None and button.property("action") == wanted:
            return
        if button is not None:
            self.tree.removeItemWidget(item, ACTION)
        if wanted == "cancel":
            button = QPushButton("Cancel", toolTip="Stop this job; what it already saved is kept")
            button.clicked.connect(lambda: self._cancel(job_id))
        elif wanted == "rerun":
            button = QPushButton("Run again", toolTip=_AGAIN)
            button.clicked.connect(lambda: self.rerun_requested.emit(job_id))
        else:
            return
        button.setProperty("action", wanted)
        self.tree.setItemWidget(item, ACTION, button)

    def _action_button(self, job_id: int, action: str) -> QPushButton | None:
        item = self._items.get(job_id)
        button = self.tree.itemWidget(item, ACTION) if item else None
        return button if button is not None and button.property("action") == action else None

    def _cancel(self, job_id: int) -> None:
        button = self.cancel_button(job_id)
        if button is not None:
            button.setEnabled(False)
            button.setText("Cancelling…")
        self.cancel_requested.emit(job_id)

    def _selected_job(self) -> int | None:
        item = self.tree.currentItem()
        return item.data(ID, Qt.ItemDataRole.UserRole) if item else None

    def _show_log(self) -> None:
        job_id = self._selected_job()
        self.log.clear()
        if job_id is None or self._project is None:
            return
        record = self._project.job(job_id)
        lines = self._project.job_log(job_id)
        if record.error:
            lines.append(f"error: {record.error}")
        self.log.setPlainText("\n".join(lines) if lines else "(no log lines)")


class _JobItem(QTreeWidgetItem):
    """Sorts the id column as a number."""

    def __lt__(self, other: QTreeWidgetItem) -> bool:
        column = self.treeWidget().sortColumn() if self.treeWidget() else ID
        if column == ID:
            return int(self.text(ID)) < int(other.text(ID))
        return super().__lt__(other)


def _record_tooltip(record: JobRecord) -> str:
    def when(timestamp: float | None) -> str:
        return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S") if timestamp else "—"

    params = ", ".join(f"{k}={v}" for k, v in record.params.items())
    return (
        f"{record.kind}: {record.title}\n{params}\n"
        f"{record.executor} executor, {record.resource} queue\n"
        f"created {when(record.created_at)}, started {when(record.started_at)}, "
        f"finished {when(record.finished_at)}"
    )
