"""The project's jobs: list them (queued, running, interrupted ...) and run one again."""

from __future__ import annotations

import argparse
import json
import time

from nasstudio.cli.common import CliError, open_from_args, rerun_job
from nasstudio.jobs import JobState


def cmd_jobs(args: argparse.Namespace) -> int:
    project = open_from_args(args)
    if args.rerun is not None:
        record = project.job(args.rerun)
        if not JobState(record.state).finished:
            raise CliError(f"job {args.rerun} is {record.state}: it can run again once it ended")
        result = rerun_job(project, args.rerun)
        print(f"job {args.rerun} ({record.title}) ran again: {result}")
        return 0
    records = project.jobs(args.state)
    if args.json:
        print(json.dumps([_row(r) for r in records], indent=1))
        return 0
    if not records:
        print("(no jobs)")
    for r in records:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created_at))
        print(f"{r.id:>5}  {r.state:<11} {r.progress:>6.1%}  {when}  {r.title}  {r.message}")
    return 0


def _row(record) -> dict:
    keys = ("id", "kind", "title", "state", "progress", "message", "error", "created_at")
    return {key: getattr(record, key) for key in keys} | {
        "executor": record.executor,
        "resource": record.resource,
        "can_run_again": bool(record.function),
    }


def add_job_commands(add) -> None:
    p = add("jobs", cmd_jobs, "list the project's jobs, or run one again")
    p.add_argument(
        "--state",
        action="append",
        choices=[s.value for s in JobState],
        help="only jobs in this state (repeatable)",
    )
    p.add_argument("--rerun", type=int, metavar="ID", help="run job ID again in the foreground")
    p.add_argument("--json", action="store_true", help="machine-readable output")
