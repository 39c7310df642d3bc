"""The nasstudio command line: everything the window does, without one."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from nasstudio import __version__
from nasstudio.jobs import JobEvent, JobRunner, JobState, sample_job
from nasstudio.search import Direction, pareto_front_2d
from nasstudio.space import PRESETS, get_space, to_arch_info
from nasstudio.store import BLEU_VALID, GFLOPS, KNOWN_TASKS, Project
from nasstudio.store.defaults import default_project_path, open_project
from nasstudio.store.exporters import EXPORT_FORMATS, export
from nasstudio.store.importers import import_files, task_for

PROJECT_ENV = "NASSTUDIO_PROJECT"


class CliError(Exception):
    """A problem with what the user asked for: printed without a traceback."""


# --- output helpers ------------------------------------------------------------------------------


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def _records(table: pd.DataFrame, task: str) -> list[dict[str, Any]]:
    value_columns = [c for c in table.columns if not c.startswith("source:")]
    out = []
    for arch_id, row in zip(table.index, table[value_columns].itertuples(index=False), strict=True):
        record = {"id": arch_id, "task": task}
        record.update(
            {c: _clean(v) for c, v in zip(value_columns, row, strict=True) if c != "added_at"}
        )
        out.append(record)
    return out


def _print_table(table: pd.DataFrame, columns: Sequence[str]) -> None:
    shown = table[[c for c in columns if c in table.columns]]
    with pd.option_context(
        "display.max_rows", 200, "display.width", 200, "display.float_format", "{:.3f}".format
    ):
        print(shown.to_string() if not shown.empty else "(no architectures)")


class ProgressBar:
    """A one-line progress bar on stderr driven by job events, redrawn a few times a second
    on a terminal and every 10 % elsewhere (logs stay short)."""

    def __init__(self, stream=sys.stderr, width: int = 30) -> None:
        self.stream, self.width = stream, width
        self.interactive = stream.isatty()
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


def _run_job(store: Project, kind: str, title: str, fn, **params: Any) -> Any:
    """Run a job in the foreground with a progress bar; Ctrl+C cancels it cleanly."""
    runner = JobRunner(store, max_workers=1)
    runner.subscribe(ProgressBar())
    job_id = runner.submit(kind, title, fn, **params)
    try:
        result = runner.wait(job_id)
    except KeyboardInterrupt:
        runner.cancel(job_id)
        runner.wait(job_id)
        print("cancelled; what was done so far is kept", file=sys.stderr)
        result = None
    runner.shutdown()
    record = store.job(job_id)
    if record.state == JobState.FAILED:
        raise CliError(f"{title} failed: {record.error}")
    return result


# --- commands ------------------------------------------------------------------------------------


def _project(args: argparse.Namespace) -> Project:
    return open_project(args.project)


def _task_name(project: Project, requested: str | None) -> str:
    tasks = [t.name for t in project.tasks()]
    if requested:
        if requested not in tasks:
            raise CliError(f"no task '{requested}' in {project.path}; tasks: {tasks or 'none'}")
        return requested
    if len(tasks) == 1:
        return tasks[0]
    raise CliError(f"say which task with --task, one of {tasks or 'none (import or sample first)'}")


def cmd_gui(args: argparse.Namespace) -> int:
    from nasstudio.gui.app import run  # Qt is loaded only when a window is wanted

    return run(args.project)


def cmd_tasks(args: argparse.Namespace) -> int:
    project = _project(args)
    rows = [
        {
            "name": t.name,
            "space": t.space,
            "vocab_size": t.vocab_size,
            "architectures": project.count_architectures(t.name),
            "description": t.description,
        }
        for t in project.tasks()
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            print(
                f"{r['name']:<14} {r['space']:<10} vocab {r['vocab_size']:>6}  "
                f"{r['architectures']:>7} architectures  {r['description']}"
            )
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    if args.out:
        space = get_space(args.space or KNOWN_TASKS.get(args.task or "", KNOWN_TASKS["demo"]).space)
        archs = space.sample_many(args.count, args.seed)
        with open(args.out, "w", encoding="utf-8") as handle:
            for arch in archs:
                handle.write(json.dumps({"scratch": {"arch_info": to_arch_info(arch)}}) + "\n")
        print(f"wrote {len(archs)} architectures of {space.name} to {args.out}")
        return 0
    project = _project(args)
    task_name = args.task or "demo"
    if project.task(task_name) is None:
        project.ensure_task(task_for(task_name, args.vocab_size))
    added = _run_job(
        project,
        "sample",
        f"Sample {args.count} architectures",
        sample_job,
        project=project,
        task=task_name,
        count=args.count,
        seed=args.seed,
    )
    print(f"added {added or 0} architectures to {task_name} in {project.path}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    project = _project(args)
    reports = import_files(project, args.files, task=args.task, vocab_size=args.vocab_size)
    for report in reports:
        print(report.describe())
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    project = _project(args)
    names = [args.task] if args.task else [t.name for t in project.tasks()]
    records, tables = [], []
    for name in names:
        _task_name(project, name)
        table = project.table(name)
        if args.sort:
            if args.sort not in table.columns:
                raise CliError(f"cannot sort by '{args.sort}': columns are {list(table.columns)}")
            table = table.sort_values(args.sort, ascending=not args.descending)
        if args.limit:
            table = table.head(args.limit)
        tables.append((name, table))
        records += _records(table, name)
    if args.json:
        json.dump(records, sys.stdout, indent=1)
        print()
        return 0
    for name, table in tables:
        print(f"== {name}: {len(table)} architectures")
        _print_table(
            table,
            [
                "origin",
                "encoder_embed_dim",
                "decoder_embed_dim",
                "decoder_layer_num",
                GFLOPS,
                "params",
                BLEU_VALID,
                "bleu_test",
            ],
        )
    return 0


def _front(project: Project, task: str, x: str, y: str) -> pd.DataFrame:
    table = project.table(task)
    for column in (x, y):
        if column not in table.columns:
            options = [c for c in table.columns if not c.startswith("source:")]
            raise CliError(f"task '{task}' has no column '{column}'; columns are {options}")
    known = table[[x, y]].dropna()
    order = pareto_front_2d(
        known[x].to_numpy(), known[y].to_numpy(), Direction.MINIMIZE, Direction.MAXIMIZE
    )
    return table.loc[known.index[order]]


def cmd_pareto(args: argparse.Namespace) -> int:
    project = _project(args)
    task = _task_name(project, args.task)
    front = _front(project, task, args.x, args.y)
    if args.json:
        records = [
            {"id": r["id"], args.x: r[args.x], args.y: r[args.y]} for r in _records(front, task)
        ]
        print(json.dumps({"task": task, "x": args.x, "y": args.y, "front": records}, indent=1))
    else:
        print(
            f"Pareto front of {task}: {len(front)} architectures "
            f"(minimise {args.x}, maximise {args.y})"
        )
        _print_table(front, [args.x, args.y, "origin"])
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    project = _project(args)
    task = _task_name(project, args.task)
    if args.pareto:
        ids = list(_front(project, task, args.x, args.y).index)
    elif args.ids:
        ids = args.ids
    else:
        ids = list(project.table(task).index)
    fmt = args.format or _format_from_target(args.out)
    paths = export(project, task, ids, fmt, args.out)
    print(
        f"exported {len(ids)} architectures as {fmt} to "
        + (str(paths[0]) if fmt != "yaml" else f"{args.out} ({len(paths)} files)")
    )
    return 0


def _format_from_target(target: str) -> str:
    suffix = Path(target).suffix.lower().lstrip(".")
    return suffix if suffix in ("json", "csv") else "yaml"


# --- parser --------------------------------------------------------------------------------------


def _add_project_option(parser: argparse.ArgumentParser, dest: str) -> None:
    parser.add_argument(
        "--project",
        "-p",
        dest=dest,
        help=f"project file (default: ${PROJECT_ENV}, else {default_project_path()})",
    )


def build_parser() -> argparse.ArgumentParser:
    # The option is accepted before and after the command. argparse lets a subcommand's
    # default overwrite the value given before it, so the two spellings get separate dests.
    common = argparse.ArgumentParser(add_help=False)
    _add_project_option(common, "project")
    parser = argparse.ArgumentParser(
        prog="nasstudio",
        description="Hardware-aware NAS workbench for Transformer MT. Without a command: the GUI.",
    )
    _add_project_option(parser, "project_before_command")
    parser.add_argument("--version", action="version", version=f"nasstudio {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        return p

    add("gui", cmd_gui, "open the main window (the default)")
    p = add("tasks", cmd_tasks, "list the project's tasks")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = add("sample", cmd_sample, "sample architectures into the project or a jsonl file")
    p.add_argument("--task", help="task to add them to (default: demo; created if it is known)")
    p.add_argument("--count", "-n", type=int, default=100, help="how many (default 100)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--vocab-size", type=int, help="vocabulary size of a new, unknown task")
    p.add_argument("--out", help="write llmas-style jsonl here instead of the project")
    p.add_argument("--space", choices=sorted(PRESETS), help="search space for --out")

    p = add("import", cmd_import, "import llmas .jsonl(.gz), HAT latency .csv or HAT .yml files")
    p.add_argument("files", nargs="+", help="files to import (all or none are imported)")
    p.add_argument("--task", help="task the files belong to (default: from the file path)")
    p.add_argument("--vocab-size", type=int, help="vocabulary size of a new, unknown task")

    p = add("list", cmd_list, "list architectures with their metrics and predictions")
    p.add_argument("--task", help="only this task")
    p.add_argument("--sort", help="column to sort by, e.g. bleu_valid or gflops")
    p.add_argument("--descending", action="store_true", help="sort from largest")
    p.add_argument("--limit", type=int, help="at most this many per task")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    for name, handler, text in (
        ("pareto", cmd_pareto, "the Pareto front for two objectives"),
        ("export", cmd_export, "export architectures as HAT YAML, JSON or CSV"),
    ):
        p = add(name, handler, text)
        p.add_argument("--task", help="task (needed when the project has several)")
        p.add_argument(
            "--x",
            default=GFLOPS,
            help="cost to minimise: gflops, params, latency_ms@<device> (default gflops)",
        )
        p.add_argument(
            "--y",
            default=BLEU_VALID,
            help="quality to maximise: bleu_valid, bleu_test, pred:bleu_valid@<predictor>",
        )
    sub.choices["pareto"].add_argument("--json", action="store_true", help="machine-readable")
    p = sub.choices["export"]
    p.add_argument("--out", "-o", required=True, help="folder (yaml) or file (.json, .csv)")
    p.add_argument("--format", "-f", choices=EXPORT_FORMATS, help="default: from --out")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--ids", nargs="+", help="architecture ids to export")
    which.add_argument("--pareto", action="store_true", help="export the Pareto front of --x/--y")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.project = (
        getattr(args, "project", None) or args.project_before_command or os.environ.get(PROJECT_ENV)
    )
    handler = getattr(args, "handler", cmd_gui)
    try:
        return handler(args)
    except (CliError, ValueError, KeyError, OSError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"nasstudio: error: {message}", file=sys.stderr)
        return 1
