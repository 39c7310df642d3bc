"""The jobs panel: every job of the project with its state, progress and message, Cancel for
the queued and running jobs of this window, Run again for interrupted, failed and cancelled
ones, and the selected job's log."""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import QModelIndex, QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionProgressBar,
    QStyleOptionViewItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import signals_blocked

from nasstudio.jobs import JobEvent, JobState
from nasstudio.predict.llm.client import LLMRequestError
from nasstudio.store import JobRecord, Project, SchemaError

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
_TRACEBACK = "Traceback (most recent call last):"
# Errors of what a user gave (a wrong task, a missing file, a bad value, no API key, an
# endpoint that is down): the message says what to do, no traceback is needed.
_USER_ERRORS = (ValueError, KeyError, OSError, LLMRequestError, SchemaError)
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
        self.details_button = QPushButton("Details", checkable=True, visible=False)
        self.details_button.setToolTip(
            "Show the traceback of this unexpected failure (worth a bug report)"
        )
        self.details_button.toggled.connect(self._show_log)
        log_pane = QWidget()
        log_layout = QVBoxLayout(log_pane)
        log_layout.setContentsMargins(0, 0, 0, 0)
        log_layout.addWidget(self.log, 1)
        log_layout.addWidget(self.details_button, 0, Qt.AlignmentFlag.AlignRight)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.tree)
        splitter.addWidget(log_pane)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)
        self.tree.currentItemChanged.connect(self._on_job_chosen)

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
        tree.setItemDelegateForColumn(PROGRESS, _ProgressDelegate(tree))
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

    def progress(self, job_id: int) -> int | None:
        """The percentage the job's progress bar shows."""
        item = self._items.get(job_id)
        return item.data(PROGRESS, Qt.ItemDataRole.UserRole) if item else None

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
        message = failure_line(record) or record.message or ""
        self._update(record.id, JobState(record.state), record.progress, message)

    def _update(self, job_id: int, state: JobState, progress: float, message: str) -> None:
        item = self._items.get(job_id) or self._add_item(job_id)
        item.setText(STATE, state.value)
        item.setForeground(STATE, QBrush(_STATE_COLORS.get(state, QColor("#000000"))))
        item.setToolTip(STATE, self._state_tooltip(job_id, state))
        if message:
            item.setText(MESSAGE, message)
            item.setToolTip(MESSAGE, message)
        item.setData(PROGRESS, Qt.ItemDataRole.UserRole, round(100 * progress))
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

    def _on_job_chosen(self) -> None:
        with signals_blocked(self.details_button):
            self.details_button.setChecked(False)  # each job's traceback is asked for anew
        self._show_log()

    def _show_log(self) -> None:
        """The job's log lines, then for a failure one line that says what went wrong; the
        traceback of an unexpected failure only with Details."""
        job_id = self._selected_job()
        self.log.clear()
        if job_id is None or self._project is None:
            self.details_button.hide()
            return
        record = self._project.job(job_id)
        entries = self._project.job_log(job_id)
        traces = [entry for entry in entries if entry.startswith(_TRACEBACK)]
        lines = [entry for entry in entries if not entry.startswith(_TRACEBACK)]
        failure = failure_line(record)
        if failure:
            lines.append(failure)
        elif record.error:  # not failed, yet an error (a result that could not be recorded)
            lines.append(f"error: {record.error}")
        unexpected = bool(traces) and failure is not None and not is_user_error(record)
        self.details_button.setVisible(unexpected)
        if unexpected and self.details_button.isChecked():
            lines += traces
        self.log.setPlainText("\n".join(lines) if lines else "(no log lines)")


class _ProgressDelegate(QStyledItemDelegate):
    """Paints a job's progress as a bar in its cell. Painted with its row, the bar cannot
    drift off it, as an item widget does when rows move or change height. Rows are as tall as
    a button, with or without one, so they keep their height when a Cancel button goes."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self._row_height = QPushButton("Run again").sizeHint().height()

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        super().paint(painter, option, index)  # background and selection
        value = index.data(Qt.ItemDataRole.UserRole)
        if value is None:
            return
        bar = QStyleOptionProgressBar()
        bar.rect = option.rect.adjusted(2, 2, -2, -2)
        bar.minimum, bar.maximum, bar.progress = 0, 100, value
        bar.text, bar.textVisible = f"{value}%", True
        bar.state = QStyle.StateFlag.State_Enabled | QStyle.StateFlag.State_Horizontal
        style = option.widget.style()
        style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter, option.widget)

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        size = super().sizeHint(option, index)
        return QSize(size.width(), max(size.height(), self._row_height))


def _error_type(record: JobRecord) -> tuple[str, str]:
    """A failed job's message split into the exception's type name and its text (the runner
    writes 'TypeName: text'); ('', message) when it names no type."""
    name, colon, text = (record.message or "").partition(": ")
    return (name, text) if colon and name.isidentifier() else ("", record.message or "")


def _names_of(bases: tuple[type[BaseException], ...]) -> set[str]:
    """The names of ``bases`` and of every subclass loaded so far (CorpusError, …)."""
    names, todo = set(), list(bases)
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo += cls.__subclasses__()
    return names


def is_user_error(record: JobRecord) -> bool:
    """Whether a failed job failed on something its user can put right: bad input, a missing
    file, no API key, an endpoint that does not answer; not a bug."""
    return _error_type(record)[0] in _names_of(_USER_ERRORS)


def failure_line(record: JobRecord) -> str | None:
    """The one line that says why a job failed (None when it did not): a user error in its
    own words, which say what to do; anything else as unexpected."""
    if record.state != JobState.FAILED.value:
        return None
    name, text = _error_type(record)
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if not is_user_error(record):
        return f"failed unexpectedly: {name}: {first}" if name else f"failed: {first}"
    if name == "KeyError" and len(first) > 1 and first[0] == first[-1] and first[0] in "'\"":
        first = first[1:-1]  # str(KeyError) quotes its text
    return f"failed: {first}"


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
