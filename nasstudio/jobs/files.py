"""Importing files into the project and exporting architectures from it, as jobs."""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from pathlib import Path

from nasstudio.jobs.model import JobHandle, job_defaults
from nasstudio.store import Project
from nasstudio.store.exporters import export
from nasstudio.store.importers import (
    ImportReport,
    ParsedFile,
    check_consistent,
    counted,
    read_file,
)


@job_defaults("thread")
def import_job(
    handle: JobHandle,
    project: Project,
    paths: Sequence[str],
    tasks: Mapping[str, tuple[str, int | None]] | None = None,
) -> Generator[list[ParsedFile], None, list[ImportReport]]:
    """Import ``paths`` all together, like ``import_files``, with progress per file.

    ``tasks`` gives the task (and a new task's vocabulary size) of the files whose name does
    not say it; the importers guess the others. Every file is read and checked before the
    runner records them, in one transaction: a bad file or a cancel leaves the project as it
    was, and other writers wait only for the writing, not the reading.
    """
    tasks = tasks or {}
    parsed: list[ParsedFile] = []
    for done, path in enumerate(paths):
        handle.check_cancelled()
        handle.progress(done / len(paths), f"reading {Path(path).name}")
        task, vocab_size = tasks.get(path, (None, None))
        parsed.append(read_file(project, path, task, vocab_size))
    check_consistent(parsed)
    handle.progress(1.0, f"recording {len(paths)} file(s)")
    yield parsed
    return [file.report for file in parsed]


@job_defaults("thread")
def export_job(
    handle: JobHandle,
    project: Project,
    task: str,
    arch_ids: Sequence[str],
    fmt: str,
    target: str,
    x: str | None = None,
) -> Generator[list[Path], None, list[Path]]:
    """Write the chosen architectures with ``exporters.export`` (YAML files named by the cost
    ``x``); yields the files written."""
    handle.progress(0.0, f"exporting {counted(len(arch_ids), 'architecture')} as {fmt}")
    written = export(project, task, arch_ids, fmt, target, x)
    handle.progress(1.0, f"wrote {counted(len(written), 'file')}")
    for path in written:
        handle.log(str(path))
    yield written
    return written
