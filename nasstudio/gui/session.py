"""One open project with what the window needs around it: the job runner (the single writer),
the one bridge of its events into Qt, and the background table loader."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject

from nasstudio.gui.job_bridge import JobBridge
from nasstudio.gui.table_loader import TableLoader
from nasstudio.jobs import JobRunner
from nasstudio.jobs.async_executor import AsyncExecutor
from nasstudio.jobs.model import JobFunction
from nasstudio.store import Project


class ProjectSession:
    def __init__(self, project: Project, parent: QObject) -> None:
        self.project = project
        # LLM jobs are coroutines on the GUI thread's (qasync) event loop.
        self.runner = JobRunner(project, executors={"async": AsyncExecutor()})
        self.bridge = JobBridge(self.runner, parent)
        self.loader = TableLoader(project, parent=parent)
        self._version = project.data_version()
        self._revisions = project.revisions()
        self._ray: tuple[str | None, str | None] | None = None  # address and storage in use

    def submit(
        self,
        kind: str,
        title: str,
        fn: JobFunction,
        *,
        executor: str | None = None,
        resource: str | None = None,
        **params: Any,
    ) -> int:
        """Queue a job in the runner (``JobRunner.submit``); its row shows at once."""
        job_id = self.runner.submit(kind, title, fn, executor=executor, resource=resource, **params)
        self.bridge.submitted.emit(job_id)
        return job_id

    def rerun(self, job_id: int) -> int:
        """Queue a finished job again (a training resumes from its checkpoint)."""
        new_id = self.runner.rerun(job_id)
        self.bridge.submitted.emit(new_id)
        return new_id

    def cancel(self, job_id: int) -> None:
        self.runner.cancel(job_id)

    def use_ray(self, address: str | None, storage: str | None = None) -> None:
        """Run the 'ray' executor's jobs on the cluster at ``address`` (None: a local Ray
        runtime), their checkpoints in ``storage`` (a folder every worker reaches; None:
        beside the project). Ray loads only when asked for."""
        wanted = (address or None, storage or None)
        if wanted == self._ray:
            return
        from nasstudio.jobs.ray_executor import RayExecutor

        self.runner.executors["ray"] = RayExecutor(*wanted)
        self._ray = wanted

    def changed_tasks(self) -> set[str] | None:
        """The tasks whose data any connection (the runner, another process) changed since the
        last call; None when nothing at all was committed (a cheap check to poll). A commit
        that changed no task (job progress, logs) gives an empty set."""
        version = self.project.data_version()
        if version == self._version:
            return None
        self._version = version
        revisions = self.project.revisions()
        changed = {t for t, r in revisions.items() if self._revisions.get(t) != r}
        self._revisions = revisions
        return changed

    def close(self) -> None:
        """Cancel this window's jobs, wait for them, and close the project."""
        self.bridge.detach()
        self.runner.shutdown(cancel=True)
        self.loader.shutdown()
        # Owned by this session from now on: deleted with it, on the GUI thread, rather than
        # kept as the window's children until the window goes.
        self.bridge.setParent(None)
        self.loader.setParent(None)
        self.project.close()
