"""Latency predictors fitted on HAT latency tables or the project's own measurements, and the
tables a project imported."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from nasstudio.cli.common import (
    LEARNING_RATE,
    MAX_COUNT,
    CliError,
    add_execution_options,
    open_from_args,
    run_job,
    whole_number,
)
from nasstudio.store import Project
from nasstudio.store.defaults import default_project_path
from nasstudio.store.importers import read_hat_latency

# torch loads with the predictor module: it is imported inside the commands.


def add_latency_commands(add) -> None:
    """Register latency-predictor (train, eval, list) and latency-tables. Only training runs as
    a job, so only it takes the job options (--executor, --ray-*)."""
    p = add(
        "latency-tables",
        cmd_latency_tables,
        "list the latency tables the project imported",
        jobs=False,
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = add(
        "latency-predictor",
        None,
        "fit HAT's latency predictor on latency tables or measurements, score or list them",
        jobs=False,
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    _add_train(actions)

    evaluate = actions.add_parser("eval", help="MAPE and tau of a stored predictor on a table")
    evaluate.set_defaults(handler=cmd_eval)
    evaluate.add_argument("file", help="HAT latency CSV")
    evaluate.add_argument("--name", required=True, help="the stored predictor")
    evaluate.add_argument("--json", action="store_true", help="machine-readable output")

    listing = actions.add_parser(
        "list", help="stored predictors: task, device, held-out MAPE and tau, what they fit"
    )
    listing.set_defaults(handler=cmd_list)
    listing.add_argument("--json", action="store_true", help="machine-readable output")


def _add_train(actions) -> None:
    train = actions.add_parser(
        "train",
        help="fit on HAT latency CSVs, an imported table or the project's measurements (a job);"
        " prints held-out MAPE and tau",
    )
    train.set_defaults(handler=cmd_train)
    train.add_argument(
        "files", nargs="*", help="HAT latency CSVs of one device (<task>_<device>_all.csv)"
    )
    train.add_argument("--table", help="a latency table the project imported (latency-tables)")
    train.add_argument(
        "--from-project",
        action="store_true",
        help="fit on the project's measured latency of --task on --device",
    )
    train.add_argument("--task", help="with --from-project: the task")
    train.add_argument(
        "--device", help="with --from-project: the device the latency was measured on"
    )
    train.add_argument("--name", required=True, help="name to store the predictor under")
    train.add_argument("--seed", type=int, default=0, help="split and training seed (default 0)")
    train.add_argument(
        "--steps",
        type=whole_number(MAX_COUNT),
        default=5000,
        help="training steps of 128 rows (default 5000, HAT's)",
    )
    train.add_argument(
        "--learning-rate",
        type=LEARNING_RATE,
        default=1e-5,
        metavar="RATE",
        help="Adam's learning rate, above 0 and at most 1 (default 1e-5, HAT's)",
    )
    train.add_argument("--json", action="store_true", help="machine-readable output")
    add_execution_options(train)


def cmd_latency_tables(args: argparse.Namespace) -> int:
    tables = open_from_args(args).latency_tables()
    rows = tables.to_dict("records")
    if args.json:
        print(json.dumps(rows, indent=2, default=int))
        return 0
    if not rows:
        print("(no latency tables; import a HAT latency CSV with 'nasstudio import')")
    for r in rows:
        print(
            f"{r['name']:<32} {r['task']:<12} {r['device']:<18} {r['rows']:>6} rows  {r['source']}"
        )
    return 0


def _project_path(args: argparse.Namespace) -> Path:
    return Path(args.project) if args.project else default_project_path()


def _checked_name(name: str) -> str:
    from nasstudio.predict.latency import PREDICTOR_NAME

    if not PREDICTOR_NAME.fullmatch(name):
        raise CliError(f"'{name}' is not a predictor name (letters, digits, '.', '-', '_')")
    return name


def _source(args: argparse.Namespace, project: Project) -> dict[str, object]:
    """The training job's parameters that say what it fits on, read and checked here so that a
    bad request fails before a job starts (with the file and line, or what the project has)."""
    from nasstudio.predict.latency import latency_source

    if sum([bool(args.files), bool(args.table), args.from_project]) != 1:
        raise CliError("fit on one of: HAT CSV files, --table NAME, or --from-project")
    if args.files:
        source = {"files": [str(Path(f).resolve()) for f in args.files]}
    elif args.table:
        source = {"table": args.table}
    elif args.task and args.device:
        source = {"task": args.task, "device": args.device}
    else:
        raise CliError("--from-project needs --task and --device")
    latency_source(project, **source)
    return source


def cmd_train(args: argparse.Namespace) -> int:
    from nasstudio.predict.latency import latency_predictor_job

    name = _checked_name(args.name)
    project = open_from_args(args)
    summary = run_job(
        project,
        "latency-predictor",
        f"fit latency predictor '{name}'",
        latency_predictor_job,
        name=name,
        seed=args.seed,
        steps=args.steps,
        learning_rate=args.learning_rate,
        **_source(args, project),
    )
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"{name} ({summary['trained_on']}), held-out 10 %: MAPE {summary['mape']:.2f} %,"
            f" Kendall tau {summary['tau']:.3f} ({summary['rows']} rows)"
        )
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from nasstudio.predict.latency import (
        LatencyTable,
        latency_predictor_path,
        load_latency_predictor,
    )

    name = _checked_name(args.name)
    predictor = load_latency_predictor(_project_path(args), name)
    table = read_hat_latency(args.file)
    scores = predictor.score(LatencyTable.from_file(table))
    if args.json:
        path = latency_predictor_path(_project_path(args), name)
        print(json.dumps({"name": name, "predictor": str(path), **asdict(scores)}))
    else:
        print(
            f"{name} on {table.name}: MAPE {scores.mape:.2f} %,"
            f" Kendall tau {scores.tau:.3f} ({scores.rows} rows)"
        )
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from nasstudio.predict.latency import latency_predictors

    rows = [
        {
            "name": p.name,
            "task": p.task,
            "device": p.device,
            "trained_on": p.trained_on,
            "training_rows": p.training_rows,
            **({"held_out_" + k: v for k, v in asdict(p.held_out).items()} if p.held_out else {}),
        }
        for p in latency_predictors(_project_path(args))
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("(no latency predictors; fit one with 'nasstudio latency-predictor train')")
    for r in rows:
        held_out = (
            f"MAPE {r['held_out_mape']:6.2f} %  tau {r['held_out_tau']:.3f}"
            if "held_out_mape" in r
            else "(no held-out scores)"
        )
        print(f"{r['name']:<20} {r['task']:<12} {r['device']:<24} {held_out}  {r['trained_on']}")
    return 0
