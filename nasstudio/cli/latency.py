"""Latency predictors fitted on HAT latency tables, and the tables a project imported."""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import asdict
from pathlib import Path

from nasstudio.cli.common import MAX_COUNT, CliError, open_from_args, whole_number
from nasstudio.store.defaults import default_project_path
from nasstudio.store.importers import read_hat_latency

# A file name on every system: no separators, not hidden.
_PREDICTOR_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")

# torch loads with the predictor module: it is imported inside the commands.


def add_latency_commands(add) -> None:
    """Register latency-predictor (train, eval) and latency-tables."""
    p = add("latency-tables", cmd_latency_tables, "list the latency tables the project imported")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = add("latency-predictor", None, "fit HAT's latency predictor on latency tables or score one")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    train = actions.add_parser(
        "train", help="fit on a HAT latency CSV; prints held-out MAPE and tau"
    )
    train.set_defaults(handler=cmd_train)
    train.add_argument(
        "files", nargs="+", help="HAT latency CSVs of one device (<task>_<device>_all.csv)"
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
        type=float,
        default=1e-5,
        help="Adam's learning rate (default 1e-5, HAT's)",
    )
    train.add_argument("--json", action="store_true", help="machine-readable output")

    evaluate = actions.add_parser("eval", help="MAPE and tau of a stored predictor on a table")
    evaluate.set_defaults(handler=cmd_eval)
    evaluate.add_argument("file", help="HAT latency CSV")
    evaluate.add_argument("--name", required=True, help="the stored predictor")
    evaluate.add_argument("--json", action="store_true", help="machine-readable output")


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


def _predictor_path(args: argparse.Namespace, name: str) -> Path:
    """Predictors live beside the project file, in ``<project>.latency/<name>.pt``."""
    if not _PREDICTOR_NAME.fullmatch(name):
        raise CliError(f"'{name}' is not a predictor name (letters, digits, '.', '-', '_')")
    project = Path(args.project) if args.project else default_project_path()
    return project.with_name(project.name + ".latency") / f"{name}.pt"


def cmd_train(args: argparse.Namespace) -> int:
    from nasstudio.predict.latency import fit_latency_predictor

    path = _predictor_path(args, args.name)
    tables = [read_hat_latency(f) for f in args.files]
    predictor = fit_latency_predictor(args.name, tables, args.seed, args.steps, args.learning_rate)
    predictor.save(path)
    _report(
        args,
        predictor.held_out,
        f"{args.name} ({', '.join(t.name for t in tables)}), held-out 10 %",
        path,
    )
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from nasstudio.predict.latency import LatencyPredictor, LatencyTable

    path = _predictor_path(args, args.name)
    if not path.exists():
        raise CliError(f"no latency predictor '{args.name}' (looked for {path})")
    predictor = LatencyPredictor.load(path)
    table = read_hat_latency(args.file)
    scores = predictor.score(LatencyTable.from_file(table))
    _report(args, scores, f"{args.name} on {table.name}", path)
    return 0


def _report(args: argparse.Namespace, scores, what: str, path: Path) -> None:
    if args.json:
        print(json.dumps({"name": args.name, "predictor": str(path), **asdict(scores)}))
    else:
        print(
            f"{what}: MAPE {scores.mape:.2f} %, Kendall tau {scores.tau:.3f} ({scores.rows} rows)"
        )
