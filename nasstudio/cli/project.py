"""Commands on the project itself: open the window, tasks, sample, import, list, pareto, export."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from nasstudio.cli.common import (
    MAX_VOCAB_SIZE,
    CliError,
    open_from_args,
    print_table,
    records,
    resolve_task,
    run_job,
    whole_number,
)
from nasstudio.jobs import sample_job
from nasstudio.search import Direction, pareto_front_2d
from nasstudio.space import PRESETS, get_space, to_arch_info
from nasstudio.store import BLEU_VALID, GFLOPS, KNOWN_TASKS, Project
from nasstudio.store.exporters import EXPORT_FORMATS, export
from nasstudio.store.importers import counted, import_files, task_for


def cmd_gui(args: argparse.Namespace) -> int:
    from nasstudio.gui.app import run  # Qt is loaded only when a window is wanted

    return run(args.project)


def cmd_tasks(args: argparse.Namespace) -> int:
    project = open_from_args(args)
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
                f"{counted(r['architectures'], 'architecture'):>19}  {r['description']}"
            )
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    if args.out:
        space = get_space(args.space or KNOWN_TASKS.get(args.task or "", KNOWN_TASKS["demo"]).space)
        archs = space.sample_many(args.count, args.seed)
        with open(args.out, "w", encoding="utf-8") as handle:
            for arch in archs:
                handle.write(json.dumps({"scratch": {"arch_info": to_arch_info(arch)}}) + "\n")
        print(f"wrote {counted(len(archs), 'architecture')} of {space.name} to {args.out}")
        return 0
    project = open_from_args(args)
    task_name = args.task or "demo"
    if project.task(task_name) is None:
        project.ensure_task(task_for(task_name, args.vocab_size))
    added = run_job(
        project,
        "sample",
        f"Sample {counted(args.count, 'architecture')}",
        sample_job,
        task=task_name,
        count=args.count,
        seed=args.seed,
    )
    print(f"added {counted(added or 0, 'architecture')} to {task_name} in {project.path}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    project = open_from_args(args)
    reports = import_files(project, args.files, task=args.task, vocab_size=args.vocab_size)
    for report in reports:
        print(report.describe())
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    project = open_from_args(args)
    names = [args.task] if args.task else [t.name for t in project.tasks()]
    rows, tables = [], []
    for name in names:
        resolve_task(project, name)
        table = project.table(name)
        if args.sort:
            if args.sort not in table.columns:
                raise CliError(f"cannot sort by '{args.sort}': columns are {list(table.columns)}")
            table = table.sort_values(args.sort, ascending=not args.descending)
        if args.limit:
            table = table.head(args.limit)
        tables.append((name, table))
        rows += records(table, name)
    if args.json:
        json.dump(rows, sys.stdout, indent=1)
        print()
        return 0
    for name, table in tables:
        print(f"== {name}: {counted(len(table), 'architecture')}")
        print_table(
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
    project = open_from_args(args)
    task = resolve_task(project, args.task)
    front = _front(project, task, args.x, args.y)
    if args.json:
        points = [
            {"id": r["id"], args.x: r[args.x], args.y: r[args.y]} for r in records(front, task)
        ]
        print(json.dumps({"task": task, "x": args.x, "y": args.y, "front": points}, indent=1))
    else:
        print(
            f"Pareto front of {task}: {counted(len(front), 'architecture')} "
            f"(minimise {args.x}, maximise {args.y})"
        )
        print_table(front, [args.x, args.y, "origin"])
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    project = open_from_args(args)
    task = resolve_task(project, args.task)
    # Without --pareto or --ids (None) all of the task's are streamed from the project.
    ids = list(_front(project, task, args.x, args.y).index) if args.pareto else args.ids
    fmt = args.format or format_from_target(args.out)
    paths = export(project, task, ids, fmt, args.out, x=args.x)
    count = len(ids) if ids is not None else project.count_architectures(task)
    print(
        f"exported {counted(count, 'architecture')} as {fmt} to "
        + (str(paths[0]) if fmt != "yaml" else f"{args.out} ({counted(len(paths), 'file')})")
    )
    return 0


def format_from_target(target: str) -> str:
    suffix = Path(target).suffix.lower().lstrip(".")
    return suffix if suffix in ("json", "jsonl", "csv") else "yaml"


def add_project_commands(add) -> None:
    """Register gui, tasks, sample, import, list, pareto and export."""
    add("gui", cmd_gui, "open the main window (the default)")
    p = add("tasks", cmd_tasks, "list the project's tasks")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = add("sample", cmd_sample, "sample architectures into the project or a jsonl file")
    p.add_argument("--task", help="task to add them to (default: demo; created if it is known)")
    p.add_argument("--count", "-n", type=int, default=100, help="how many (default 100)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--vocab-size",
        type=whole_number(MAX_VOCAB_SIZE),
        help="vocabulary size of a new, unknown task",
    )
    p.add_argument("--out", help="write llmas-style jsonl here instead of the project")
    p.add_argument("--space", choices=sorted(PRESETS), help="search space for --out")

    p = add("import", cmd_import, "import llmas .jsonl(.gz), HAT latency .csv or HAT .yml files")
    p.add_argument("files", nargs="+", help="files to import (all or none are imported)")
    p.add_argument("--task", help="task the files belong to (default: from the file path)")
    p.add_argument(
        "--vocab-size",
        type=whole_number(MAX_VOCAB_SIZE),
        help="vocabulary size of a new, unknown task",
    )

    p = add("list", cmd_list, "list architectures with their metrics and predictions")
    p.add_argument("--task", help="only this task")
    p.add_argument("--sort", help="column to sort by, e.g. bleu_valid or gflops")
    p.add_argument("--descending", action="store_true", help="sort from largest")
    p.add_argument("--limit", type=int, help="at most this many per task")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    parsers = {}
    for name, handler, text in (
        ("pareto", cmd_pareto, "the Pareto front for two objectives"),
        ("export", cmd_export, "export architectures as HAT YAML, JSON, JSON lines or CSV"),
    ):
        p = parsers[name] = add(name, handler, text)
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
    parsers["pareto"].add_argument("--json", action="store_true", help="machine-readable")
    p = parsers["export"]
    p.add_argument("--out", "-o", required=True, help="folder (yaml) or file (.json, .jsonl, .csv)")
    p.add_argument("--format", "-f", choices=EXPORT_FORMATS, help="default: from --out")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--ids", nargs="+", help="architecture ids to export")
    which.add_argument("--pareto", action="store_true", help="export the Pareto front of --x/--y")
