"""Architecture search: run one (evolution, HS-NAS or NSGA-II), list them, show one generation by
generation, export a search's front or best architecture."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from nasstudio.cli.common import (
    MAX_COUNT,
    CliError,
    open_from_args,
    real_number,
    resolve_task,
    run_job,
    whole_number,
)
from nasstudio.cli.project import format_from_target
from nasstudio.cli.train import add_corpus_options, add_device_option, corpus_spec, device_option
from nasstudio.store import GFLOPS, LATENCY_MS, PARAMS, Project, SearchGeneration
from nasstudio.store.exporters import EXPORT_FORMATS, export
from nasstudio.store.importers import counted

# The search job loads torch: it is imported inside the command.
_KINDS = ("distilled", "fitted", "supernet", "proxy")
_SWITCH_AT = 15  # llmas's HS-NAS: 15 of 30 iterations with the distilled predictor


POSITIVE = real_number(0.0, low_allowed=False)


def add_search_commands(
    add, common: argparse.ArgumentParser, in_process: argparse.ArgumentParser
) -> None:
    """Register ``search run|list|show|export``: ``common`` carries the project and execution
    options, ``in_process`` the project option alone (for the commands that run no job)."""
    p = add("search", None, "search architectures with predictors under a constraint", jobs=False)
    actions = p.add_subparsers(dest="search_command", metavar="ACTION", required=True)
    run = actions.add_parser(
        "run",
        parents=[common],
        help="HAT's evolutionary search (or NSGA-II) ranked by stored predictors",
        description="Search the task's space with HAT's evolutionary search (llmas's HS-NAS "
        "settings by default) ranked by a stored predictor; two predictors make HS-NAS: the "
        "first ranks the iterations before --switch-at, the second the rest. Every generation "
        "is recorded as it is done (Ctrl+C keeps them); its front joins the task.",
    )
    run.set_defaults(handler=cmd_run)
    run.add_argument("--task", help="task whose space to search (needed when several)")
    run.add_argument(
        "--predictor",
        action="append",
        required=True,
        metavar="KIND:NAME",
        help="distilled:NAME or fitted:NAME (stored beside the project), proxy:NAME (an LPZero "
        "proxy stored in the project: lpzero save), or "
        "supernet:CHECKPOINT; twice for HS-NAS",
    )
    run.add_argument(
        "--switch-at",
        type=whole_number(MAX_COUNT),
        metavar="N",
        help="HS-NAS: the iteration from which the second predictor ranks (default 15)",
    )
    limit = run.add_argument_group("constraint (at most one)").add_mutually_exclusive_group()
    limit.add_argument(
        "--latency-ms",
        type=POSITIVE,
        metavar="MS",
        help="predicted latency limit (with --latency-predictor)",
    )
    limit.add_argument("--max-gflops", type=POSITIVE, metavar="GFLOPS", help="GFLOPs limit")
    limit.add_argument("--max-params", type=POSITIVE, metavar="N", help="parameter count limit")
    run.add_argument(
        "--latency-predictor",
        metavar="NAME",
        help="stored latency predictor (latency-predictor train) of the target device",
    )
    evolution = run.add_argument_group("search settings (defaults: llmas's HS-NAS)")
    for name, default, kind, metavar in (
        ("iterations", 30, whole_number(MAX_COUNT), "N"),
        ("population", 125, whole_number(MAX_COUNT), "N"),
        ("parents", 25, whole_number(MAX_COUNT), "N"),
        ("mutations", 50, whole_number(MAX_COUNT, minimum=0), "N"),
        ("mutation-prob", 0.3, real_number(0.0, 1.0), "P"),
        ("crossovers", 50, whole_number(MAX_COUNT, minimum=0), "N"),
    ):
        evolution.add_argument(
            f"--{name}", type=kind, default=default, metavar=metavar, help=f"default {default}"
        )
    evolution.add_argument("--seed", type=int, default=0, metavar="N", help="default 0")
    evolution.add_argument(
        "--mode",
        choices=("evolution", "nsga2"),
        default="evolution",
        help="HAT's evolution (default), or NSGA-II for a front of score against the "
        "constrained metric (or latency, else GFLOPs) in one run",
    )
    run.add_argument("--initial", nargs="+", metavar="ID", help="architectures to start from")
    run.add_argument("--json", action="store_true", help="machine-readable output")
    add_corpus_options(run)
    add_device_option(run)

    listing = actions.add_parser("list", parents=[in_process], help="the project's searches")
    listing.set_defaults(handler=cmd_list)
    listing.add_argument("--json", action="store_true", help="machine-readable output")

    show = actions.add_parser(
        "show", parents=[in_process], help="a search generation by generation"
    )
    show.set_defaults(handler=cmd_show)
    show.add_argument(
        "job", type=int, nargs="?", help="the search's job id (search list; default the latest)"
    )
    show.add_argument("--json", action="store_true", help="machine-readable output")

    out = actions.add_parser(
        "export", parents=[in_process], help="export a search's last front or best architecture"
    )
    out.set_defaults(handler=cmd_export)
    out.add_argument(
        "job", type=int, nargs="?", help="the search's job id (search list; default the latest)"
    )
    which = out.add_mutually_exclusive_group()
    which.add_argument("--front", action="store_true", help="the last front (the default)")
    which.add_argument("--best", action="store_true", help="the last generation's best")
    out.add_argument(
        "--out", "-o", required=True, help="folder (yaml) or file (.json, .jsonl, .csv)"
    )
    out.add_argument("--format", "-f", choices=EXPORT_FORMATS, help="default: from --out")


def cmd_run(args: argparse.Namespace) -> int:
    from nasstudio.predict.search_jobs import SearchSpec, search_job
    from nasstudio.search.evolution import EvolutionSettings

    project = open_from_args(args)
    task = resolve_task(project, args.task)
    predictors = [_predictor(project, args, text) for text in args.predictor]
    _check_settings(args, len(predictors))
    known = set(project.architecture_ids(task))
    missing = [i for i in args.initial or () if i not in known]
    if missing:
        raise CliError(f"--initial: not in task '{task}': {', '.join(missing)}")
    metric, limit = _constraint(args)
    spec = SearchSpec(
        tuple(predictors),
        switch_at=_switch_at(args),
        constraint_metric=metric,
        constraint_limit=limit,
        latency_predictor=_latency_predictor(project, args.latency_predictor),
        settings=EvolutionSettings(
            args.iterations,
            args.population,
            args.parents,
            args.mutations,
            args.mutation_prob,
            args.crossovers,
            args.seed,
        ),
        mode=args.mode,
        initial_arch_ids=tuple(args.initial or ()),
    )
    spec.check()
    names = " then ".join(p.label for p in predictors)
    result = run_job(
        project,
        "search",
        f"Search {task} with {names}",
        search_job,
        task=task,
        spec=spec.as_params(),
    )
    if result is None:
        return 1
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    seconds = ", ".join(f"{name} {s:.1f} s" for name, s in result["seconds"].items())
    print(
        f"search #{result['job_id']}: {counted(result['generations'], 'generation')} of {task}; "
        f"best {result['best_id']} at {result['best_score']:.3f} ({result['score_label']}); "
        f"front of {counted(len(result['front']), 'architecture')}; time in {seconds}"
    )
    return 0


def _predictor(project: Project, args: argparse.Namespace, text: str) -> Any:
    """A --predictor value as a spec, checked against what is stored."""
    from nasstudio.predict.distill import load_distilled
    from nasstudio.predict.search_jobs import PredictorSpec

    kind, _, name = text.partition(":")
    if kind not in _KINDS or not name:
        raise CliError(
            f"--predictor {text}: expected distilled:NAME, fitted:NAME, proxy:NAME or "
            "supernet:CHECKPOINT"
        )
    if kind == "supernet":
        if not Path(name).is_file():
            raise CliError(f"--predictor {text}: no such checkpoint {name}")
        options = {"corpus": corpus_spec(args), "device": device_option(args.device)}
        return PredictorSpec(kind, str(Path(name).resolve()), options)
    if kind == "proxy":
        try:
            project.proxy(name)
        except KeyError as exc:
            raise CliError(f"--predictor {text}: {exc.args[0]}") from None
        return PredictorSpec(kind, name)
    try:
        load_distilled(project.path, name)
    except ValueError as exc:
        raise CliError(f"--predictor {text}: {exc}") from None
    return PredictorSpec(kind, name)


def _check_settings(args: argparse.Namespace, predictors: int) -> None:
    if predictors > 2:
        raise CliError(f"--predictor: given {predictors} times; once, or twice for HS-NAS")
    if args.parents > args.population:
        raise CliError(f"--parents {args.parents}: must not exceed --population {args.population}")
    if args.crossovers and args.parents < 2:
        raise CliError(f"--crossovers {args.crossovers}: crossing needs --parents of 2 or more")
    if predictors == 1 and args.switch_at is not None:
        raise CliError("--switch-at: HS-NAS switches to a second --predictor; only one is given")
    if predictors == 2 and not 1 <= _switch_at(args) < args.iterations:
        raise CliError(
            f"--switch-at {_switch_at(args)}: expected 1 to {args.iterations - 1}, an iteration "
            f"before the last of --iterations {args.iterations}"
        )
    if args.mode == "nsga2" and predictors == 2:
        raise CliError("--mode nsga2 ranks with one --predictor (HS-NAS's switch is evolution's)")


def _switch_at(args: argparse.Namespace) -> int:
    return args.switch_at or _SWITCH_AT


def _constraint(args: argparse.Namespace) -> tuple[str, float | None]:
    if args.latency_ms is not None:
        if not args.latency_predictor:
            raise CliError("--latency-ms: say which latency predictor with --latency-predictor")
        return LATENCY_MS, args.latency_ms
    if args.max_gflops is not None:
        return GFLOPS, args.max_gflops
    if args.max_params is not None:
        return PARAMS, args.max_params
    return "", None


def _latency_predictor(project: Project, name: str | None) -> str | None:
    from nasstudio.predict.latency import latency_predictor_path

    if name is None:
        return None
    path = latency_predictor_path(project.path, name)
    if not path.is_file():
        raise CliError(f"--latency-predictor {name}: no stored latency predictor ({path})")
    return name


def cmd_list(args: argparse.Namespace) -> int:
    rows = open_from_args(args).searches()
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    if not rows:
        print("(no searches; start one with 'nasstudio search run')")
    for r in rows:
        print(
            f"#{r['job_id']:<5} {r['task']:<12} {r['state'] or '-':<10} "
            f"{counted(r['generations'], 'generation'):<15} best {r['best_score']:.3f} "
            f"{r['score_label']}  {r['best_id']}"
        )
    return 0


def _generations(project: Project, job_id: int | None) -> tuple[int, list[SearchGeneration]]:
    """The search ``job_id`` (None: the latest) and its generations."""
    searches = [r["job_id"] for r in project.searches()]
    if job_id is None and not searches:
        raise CliError(f"no searches in {project.path}; start one with 'nasstudio search run'")
    job_id = searches[-1] if job_id is None else job_id
    if job_id not in searches:
        known = ", ".join(f"#{i}" for i in searches) or "none"
        raise CliError(f"search #{job_id}: no such search in {project.path} (searches: {known})")
    return job_id, project.search_generations(job_id)


def cmd_show(args: argparse.Namespace) -> int:
    job_id, generations = _generations(open_from_args(args), args.job)
    rows = [
        {
            "generation": g.generation,
            "scorer": g.scorer,
            "score_label": g.score_label,
            "seconds": g.seconds,
            "best_id": g.best.arch.id,
            "best_score": g.best.score,
            "front": list(g.front),
            "constraint": g.constraint,
            "constraint_value": g.best.metrics.get(g.constraint),
        }
        for g in generations
    ]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    constraint = generations[0].constraint
    print(
        f"search #{job_id} of {generations[0].task}"
        + (f", under a limit on {constraint}" if constraint else "")
    )
    print(f"{'gen':>4}  {'scorer':<28} {'seconds':>8} {'best':>9}  {'front':>5}  best id")
    for r in rows:
        print(
            f"{r['generation']:>4}  {r['scorer']:<28} {r['seconds']:>8.2f} "
            f"{r['best_score']:>9.3f}  {len(r['front']):>5}  {r['best_id']}"
        )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    project = open_from_args(args)
    job_id, generations = _generations(project, args.job)
    last = generations[-1]
    ids = [last.best.arch.id] if args.best else list(last.front)
    fmt = args.format or format_from_target(args.out)
    paths = export(project, last.task, ids, fmt, args.out, x=last.constraint or None)
    what = "best architecture" if args.best else f"front of {counted(len(ids), 'architecture')}"
    where = paths[0] if fmt != "yaml" else f"{args.out} ({counted(len(paths), 'file')})"
    print(f"exported search #{job_id}'s {what} as {fmt} to {where}")
    return 0
