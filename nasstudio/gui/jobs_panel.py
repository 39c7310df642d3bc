"""The jobs panel: every job of the project with its state, progress and message, a Cancel
button for the running jobs this window started, and the selected job's log."""

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

ID, TITLE, STATE, PROGRESS, MESSAGE, CANCEL = range(6)
_HEADERS = ("#", "Job", "State", "Progress", "Message", "")
_STATE_COLORS = {
    JobState.FAILED: QColor("#b00020"),
    JobState.CANCELLED: QColor("#777777"),
    JobState.DONE: QColor("#1b7a1b"),
}


class JobsPanel(QWidget):
    """Lists jobs from the store and follows live JobEvents."""

    cancel_requested = Signal(int)  # job id

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._project: Project | None = None
        self._items: dict[int, QTreeWidgetItem] = {}
        self._states: dict[int, JobState] = {}
        self._own: set[int] = set()  # started by this window: they can be cancelled
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
        for column, width in ((ID, 40), (TITLE, 240), (STATE, 80), (PROGRESS, 140), (CANCEL, 80)):
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
        self._items.clear()
        self._states.clear()
        self._own.clear()
        self._live.clear()
        self.refresh()

    def refresh(self) -> None:
        """Re-read the jobs from the store (jobs of another process appear this way)."""
        if self._project is None:
            return
        for record in self._project.jobs():
            if record.id not in self._live:
                self._update(
                    record.id,
                    record.title,
                    JobState(record.state),
                    record.progress,
                    record.message or record.error or "",
                )
                self._items[record.id].setToolTip(TITLE, _record_tooltip(record))

    def track(self, job_id: int) -> None:
        """A job this window submitted: it gets a Cancel button while it runs."""
        self._own.add(job_id)
        record = self._project.job(job_id) if self._project else None
        if record is not None:
            self._update(job_id, record.title, JobState(record.state), record.progress, "")
            self._items[job_id].setToolTip(TITLE, _record_tooltip(record))

    def on_event(self, event: JobEvent) -> None:
        """Apply one JobEvent (in the GUI thread)."""
        if event.kind == "log":
            if self._selected_job() == event.job_id:
                self.log.appendPlainText(event.message)
            return
        if event.state.finished:
            self._live.discard(event.job_id)
        else:
            self._live.add(event.job_id)
        title = None
        if event.job_id not in self._items and self._project is not None:
            title = self._project.job(event.job_id).title
        message = event.message if event.kind != "state" or event.state != JobState.QUEUED else ""
        self._update(event.job_id, title, event.state, event.progress, message)
        if event.state.finished and self._selected_job() == event.job_id:
            self._show_log()

    def state(self, job_id: int) -> JobState | None:
        return self._states.get(job_id)

    def progress_bar(self, job_id: int) -> QProgressBar | None:
        item = self._items.get(job_id)
        return self.tree.itemWidget(item, PROGRESS) if item else None

    def cancel_button(self, job_id: int) -> QPushButton | None:
        item = self._items.get(job_id)
        return self.tree.itemWidget(item, CANCEL) if item else None

    def select_job(self, job_id: int) -> None:
        if job_id in self._items:
            self.tree.setCurrentItem(self._items[job_id])

    def running_count(self) -> int:
        return sum(not state.finished for state in self._states.values())

    # --- internals ----------------------------------------------------------------------------

    def _update(
        self, job_id: int, title: str | None, state: JobState, progress: float, message: str
    ) -> None:
        item = self._items.get(job_id) or self._add_item(job_id)
        if title is not None:
            item.setText(TITLE, title)
        item.setText(STATE, state.value)
        item.setForeground(STATE, QBrush(_STATE_COLORS.get(state, QColor("#000000"))))
        if message:
            item.setText(MESSAGE, message)
            item.setToolTip(MESSAGE, message)
        bar = self.tree.itemWidget(item, PROGRESS)
        bar.setValue(round(100 * progress))
        self._states[job_id] = state
        self._update_cancel(item, job_id, state)

    def _add_item(self, job_id: int) -> QTreeWidgetItem:
        item = _JobItem([str(job_id)])
        item.setData(ID, Qt.ItemDataRole.UserRole, job_id)
        self.tree.addTopLevelItem(item)
        bar = QProgressBar(maximum=100, textVisible=True)
        bar.setMaximumHeight(self.tree.fontMetrics().height() + 4)
        self.tree.setItemWidget(item, PROGRESS, bar)
        self._items[job_id] = item
        return item

    def _update_cancel(self, item: QTreeWidgetItem, job_id: int, state: JobState) -> None:
        wanted = job_id in self._own and not state.finished
        button = self.tree.itemWidget(item, CANCEL)
        if wanted and button is None:
            button = QPushButton("Cancel", toolTip="Stop this job; what it already saved is kept")
            button.clicked.connect(lambda: self._cancel(job_id))
            self.tree.setItemWidget(item, CANCEL, button)
        elif not wanted and button is not None:
            self.tree.removeItemWidget(item, CANCEL)

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
        f"created {when(record.created_at)}, started {when(record.started_at)}, "
        f"finished {when(record.finished_at)}"
    )
