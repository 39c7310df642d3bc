"""One open project with what the window needs around it: a job runner, the bridge of its
events into Qt, the background table loader, and the jobs this window started."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject

from nasstudio.gui.job_bridge import JobBridge
from nasstudio.gui.table_loader import TableLoader
from nasstudio.jobs import JobRunner
from nasstudio.jobs.model import JobFunction
from nasstudio.store import Project


class ProjectSession:
    def __init__(self, project: Project, parent: QObject) -> None:
        self.project = project
        self.runner = JobRunner(project)
        self.bridge = JobBridge(self.runner, parent)
        self.loader = TableLoader(project, parent=parent)
        self.job_kinds: dict[int, str] = {}  # job id -> kind, for the jobs started here
        self.job_results: dict[int, Any] = {}  # job id -> its last partial result
        self._version = project.data_version()

    def submit(self, kind: str, title: str, fn: JobFunction, **params: Any) -> int:
        job_id = self.runner.submit(kind, title, fn, project=self.project, **params)
        self.job_kinds[job_id] = kind
        return job_id

    def store_changed(self) -> bool:
        """Whether any connection (a job, another process) committed since the last call."""
        version = self.project.data_version()
        changed, self._version = version != self._version, version
        return changed

    def close(self) -> None:
        """Cancel this window's jobs, wait for them, and close the project."""
        self.bridge.detach()
        self.runner.shutdown(cancel=True)
        self.loader.shutdown()
        self.bridge.deleteLater()
        self.loader.deleteLater()
        self.project.close()
