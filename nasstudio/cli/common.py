"""What every command shares: the project option, errors, tables, JSON, progress bars."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from nasstudio.jobs import JobEvent, JobRunner, JobState
from nasstudio.jobs.async_executor import AsyncExecutor, background_loop
from nasstudio.store import Project
from nasstudio.store.defaults import open_project

PROJECT_ENV = "NASSTUDIO_PROJECT"


class CliError(Exception):
    """A problem with what the user asked for: printed without a traceback."""


# Larger than any subword vocabulary in use (HAT's are 32,768 to 49,600).
MAX_VOCAB_SIZE = 1_000_000
MAX_COUNT = 10**9  # steps, epochs, tokens per batch, beam: beyond any run


def whole_number(maximum: int, minimum: int = 1):
    """An argparse ``type``: a whole number from ``minimum`` to ``maximum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(
                f"expected a whole number from {minimum} to {maximum:,}, got {text!r}"
            )
        return value

    return parse


def real_number(low: float, high: float = math.inf, *, low_allowed: bool = True):
    """An argparse ``type``: a number from ``low`` (or, not ``low_allowed``, above it) to
    ``high``."""
    lowest = f"from {low:g}" if low_allowed else f"above {low:g}"
    highest = "" if math.isinf(high) else (" to" if low_allowed else " and at most") + f" {high:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not ((value >= low if low_allowed else value > low) and value <= high):
            raise argparse.ArgumentTypeError(f"expected a number {lowest}{highest}, got {text!r}")
        return value

    return parse


LEARNING_RATE = real_number(0.0, 1.0, low_allowed=False)


def jsonable(value: Any) -> Any:
    """A table value for JSON: whole numbers as integers, missing values as None."""
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return int(value)
    return value


def records(table: pd.DataFrame, task: str) -> list[dict[str, Any]]:
    value_columns = [c for c in table.columns if not c.startswith("source:")]
    out = []
    for arch_id, row in zip(table.index, table[value_columns].itertuples(index=False), strict=True):
        record = {"id": arch_id, "task": task}
        record.update(
            {c: jsonable(v) for c, v in zip(value_columns, row, strict=True) if c != "added_at"}
        )
        out.append(record)
    return out


MISSING = "-"


def _formatted(column: pd.Series) -> pd.Series:
    """A column as text: whole numbers as integers, others with 3 decimals, missing as '-'."""
    if not pd.api.types.is_numeric_dtype(column):
        return column.fillna(MISSING).astype(str)
    known = column.dropna()
    whole = bool(((known % 1) == 0).all())
    text = column.map(lambda v: MISSING if pd.isna(v) else (f"{v:.0f}" if whole else f"{v:.3f}"))
    return text.astype(str)


def print_table(table: pd.DataFrame, columns: Sequence[str]) -> None:
    shown = table[[c for c in columns if c in table.columns]]
    if shown.empty:
        print("(no architectures)")
        return
    text = shown.apply(_formatted)
    with pd.option_context("display.max_rows", 200, "display.width", 200):
        print(text.to_string())


class ProgressBar:
    """A one-line progress bar on stderr driven by job events, redrawn a few times a second
    on a terminal and every 10 % elsewhere (logs stay short)."""

    def __init__(self, stream=None, width: int = 30) -> None:
        # sys.stderr as it is now, not as it was at import (tests and callers redirect it).
        self.stream, self.width = stream or sys.stderr, width
        self.interactive = self.stream.isatty()
        self._last_draw, self._last_decile, self._last_line = 0.0, -1, ""

    def _due(self, event: JobEvent) -> bool:
        if event.state.finished:
            return True
        if self.interactive:
            return event.time - self._last_draw >= 0.1
        return int(event.progress * 10) > self._last_decile

    def __call__(self, event: JobEvent) -> None:
        if event.kind == "log":
            self.stream.write(f"\n{event.message}\n")
        elif (event.kind == "progress" or event.state.finished) and self._due(event):
            self._last_draw, self._last_decile = event.time, int(event.progress * 10)
            filled = int(event.progress * self.width)
            bar = "#" * filled + "-" * (self.width - filled)
            line = f"[{bar}] {event.progress:6.1%} {event.message[:60]}"
            if self.interactive:
                end = "\n" if event.state.finished else ""
                self.stream.write(f"\r{line:<100}{end}")
            elif line != self._last_line:
                self.stream.write(line + "\n")
            self._last_line = line
        self.stream.flush()


@dataclass
class Execution:
    """Where the commands run their jobs (``--executor``, ``--ray-address``,
    ``--ray-storage``)."""

    executor: str | None = None
    ray_address: str | None = None
    ray_storage: str | None = None


EXECUTION = Execution()


def add_execution_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--executor",
        choices=("thread", "process", "ray"),
        help="where jobs run (default: torch work in a worker process, file work in a thread)",
    )
    parser.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help="Ray cluster to run jobs on with --executor ray (default: a local Ray runtime)",
    )
    parser.add_argument(
        "--ray-storage",
        metavar="FOLDER",
        help="folder every Ray node reaches, for checkpoints (default: beside the project)",
    )


def _runner(store: Project) -> JobRunner:
    # LLM jobs are coroutines: they run on an event loop of the process's own, since the main
    # thread waits for the job.
    executors = {"async": AsyncExecutor(background_loop())}
    if EXECUTION.executor == "ray":
        from nasstudio.jobs.ray_executor import RayExecutor

        executors["ray"] = RayExecutor(EXECUTION.ray_address, EXECUTION.ray_storage)
    return JobRunner(store, executors=executors)


def _resource(params: dict[str, Any]) -> str | None:
    """Jobs that run on a device wait in that device's queue."""
    if EXECUTION.executor == "ray":
        return "ray"
    device = str(params.get("device", ""))
    return device if device.startswith("cuda") else None


def run_job(store: Project, kind: str, title: str, fn, **params: Any) -> Any:
    """Run a job in the foreground with a progress bar; Ctrl+C cancels it cleanly."""
    return _foreground(
        store,
        title,
        lambda runner: runner.submit(
            kind, title, fn, executor=EXECUTION.executor, resource=_resource(params), **params
        ),
    )


def rerun_job(store: Project, job_id: int) -> Any:
    """Run a job of the project again (same function and parameters) in the foreground."""
    title = store.job(job_id).title
    return _foreground(store, title, lambda runner: runner.rerun(job_id))


def _foreground(store: Project, title: str, start) -> Any:
    runner = _runner(store)
    runner.subscribe(ProgressBar())
    job_id = start(runner)
    try:
        result = runner.wait(job_id)
    except KeyboardInterrupt:
        runner.cancel(job_id)
        runner.wait(job_id)
        runner.shutdown()
        print("cancelled; what was done so far is kept", file=sys.stderr)
        raise  # the command ends as Ctrl+C ends one (exit status 130)
    runner.shutdown()
    record = store.job(job_id)
    if record.state == JobState.FAILED:
        raise CliError(f"{title} failed: {record.error}")
    return result


def open_from_args(args: argparse.Namespace) -> Project:
    return open_project(args.project)


def resolve_task(project: Project, requested: str | None) -> str:
    tasks = [t.name for t in project.tasks()]
    if requested:
        if requested not in tasks:
            raise CliError(f"no task '{requested}' in {project.path}; tasks: {tasks or 'none'}")
        return requested
    if len(tasks) == 1:
        return tasks[0]
    raise CliError(f"say which task with --task, one of {tasks or 'none (import or sample first)'}")
