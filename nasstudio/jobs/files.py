"""Importing files into the project and exporting architectures from it, as jobs."""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from pathlib import Path

from nasstudio.jobs.model import JobHandle
from nasstudio.store import Project
from nasstudio.store.exporters import export
from nasstudio.store.importers import ImportReport, import_file


def import_job(
    handle: JobHandle,
    project: Project,
    paths: Sequence[str],
    tasks: Mapping[str, tuple[str, int | None]] | None = None,
) -> Generator[list[ImportReport], None, list[ImportReport]]:
    """Import ``paths`` all together, like ``import_files``, with progress per file.

    ``tasks`` gives the task (and a new task's vocabulary size) of the files whose name does
    not say it; the importers guess the others. One transaction: a bad file or a cancel
    leaves the project as it was. Yields the reports once they are committed.
    """
    tasks = tasks or {}
    reports: list[ImportReport] = []
    with project.transaction():
        for done, path in enumerate(paths):
            handle.check_cancelled()
            handle.progress(done / len(paths), f"importing {Path(path).name}")
            task, vocab_size = tasks.get(path, (None, None))
            reports.append(import_file(project, path, task, vocab_size))
            handle.log(reports[-1].describe())
    handle.progress(1.0, f"imported {len(paths)} file(s)")
    yield reports
    return reports


def export_job(
    handle: JobHandle,
    project: Project,
    task: str,
    arch_ids: Sequence[str],
    fmt: str,
    target: str,
) -> Generator[list[Path], None, list[Path]]:
    """Write the chosen architectures with ``exporters.export``; yields the files written."""
    handle.progress(0.0, f"exporting {len(arch_ids)} architectures as {fmt}")
    written = export(project, task, arch_ids, fmt, target)
    handle.progress(1.0, f"wrote {len(written)} file(s)")
    for path in written:
        handle.log(str(path))
    yield written
    return written
