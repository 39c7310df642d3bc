"""``nasstudio distill``: label architectures with LLM-PP, then fit llmas's regressor on the
labels (LLM-Distill-PP), or on measured BLEU (the fitted predictor); list the stored ones."""

from __future__ import annotations

import argparse
import json
import sys

from nasstudio.cli.common import (
    LEARNING_RATE,
    MAX_COUNT,
    CliError,
    open_from_args,
    resolve_task,
    run_job,
    whole_number,
)
from nasstudio.cli.llm import (
    add_llm_options,
    add_pool_options,
    add_prompt_options,
    check_executor,
    demo_ids_option,
    llm_profile,
    llm_prompt,
    run_llm_predictions,
)
from nasstudio.store import Project

# torch and openai load with the predictors: imported inside the commands.


def add_distill_command(add) -> None:
    p = add(
        "distill",
        cmd_distill,
        "fit llmas's regressor on a task's LLM predictions (LLM-Distill-PP) or measured BLEU "
        "(a fitted predictor); with --label N, first label N architectures with LLM-PP",
    )
    p.add_argument("--task", help="task (needed when the project has several)")
    p.add_argument(
        "--labels",
        metavar="COLUMN",
        help="the column to fit on, e.g. pred:bleu_valid@MODEL@PROFILE or bleu_valid (default: "
        "the LLM column with the most values, else measured bleu_valid)",
    )
    p.add_argument(
        "--name",
        help="name to store the predictor under, in <project>.distilled/ (default: from the "
        "labels' predictor); its predictions are the column pred:bleu_valid@<kind>:<name>",
    )
    p.add_argument(
        "--seedarchs",
        metavar="FOLDER",
        help="score it as LLM-PP is scored: on <seed>/<task>/test.jsonl of this folder",
    )
    p.add_argument("--list", action="store_true", help="list the stored predictors and stop")
    label = p.add_argument_group("labelling with LLM-PP first (the LLM prediction job)")
    label.add_argument(
        "--label",
        type=whole_number(MAX_COUNT),
        metavar="N",
        help="predict N architectures the LLM has not predicted yet, then fit on its predictions",
    )
    label.add_argument(
        "--pool",
        metavar="FILE",
        help="import this llmas pool (e.g. pool/wmt14ende.jsonl.gz) and label N of its "
        "architectures (default: the task's, sampling more when it has too few)",
    )
    label.add_argument(
        "--draw-seed",
        type=int,
        default=0,
        help="seed of which architectures are labelled and of those sampled (default 0)",
    )
    label.add_argument(
        "--estimate",
        action="store_true",
        help="print what labelling would cost and stop",
    )
    add_prompt_options(p, task=False)
    add_pool_options(p)
    add_llm_options(p)
    fit = p.add_argument_group("fitting (defaults: llmas's)")
    fit.add_argument(
        "--steps", type=whole_number(MAX_COUNT), default=5000, help="Adam steps (default 5000)"
    )
    fit.add_argument("--learning-rate", type=LEARNING_RATE, default=1e-5, help="(default 1e-5)")
    fit.add_argument(
        "--batch-size", type=whole_number(MAX_COUNT), default=128, help="(default 128)"
    )
    fit.add_argument(
        "--hidden-dim",
        type=whole_number(MAX_COUNT),
        default=400,
        help="units a layer (default 400)",
    )
    fit.add_argument(
        "--hidden-layers",
        type=whole_number(100),
        default=3,
        help="layers after the first (default 3, llmas's --hidden-layer-num)",
    )
    fit.add_argument(
        "--ensemble",
        type=whole_number(100),
        default=3,
        help="networks fitted with seeds 0, 1, ...; their spread is the std (default 3)",
    )
    fit.add_argument(
        "--start-at-mean",
        action="store_true",
        help="start the output at the labels' mean (fewer steps needed; llmas starts near 0)",
    )
    fit.add_argument(
        "--split-seed", type=int, default=0, help="seed of the held-out 10 %% (default 0)"
    )


def cmd_distill(args: argparse.Namespace) -> int:
    from nasstudio.predict.distill import distilled_path

    project = open_from_args(args)
    if args.list:
        return _list(project, args.json)
    task = resolve_task(project, args.task)
    if args.name:
        distilled_path(project.path, args.name)  # a bad name fails before any work
    column = _label(project, task, args) if args.label else None
    if args.estimate:
        return 0
    return _fit(project, task, column or args.labels, args)


def _label(project: Project, task: str, args: argparse.Namespace) -> str | None:
    """Label ``--label`` architectures with the LLM (after the estimate); the labels' column,
    or None when only the estimate was asked."""
    from nasstudio.predict.distill_jobs import PREDICTED, choose_unlabelled

    check_executor()
    profile = llm_profile(args, required=True)
    prompt = llm_prompt(project, task, args)
    column = PREDICTED + profile.predictor_name
    if args.labels and args.labels != column:
        raise CliError(f"--label writes {column}: --labels {args.labels} would fit on another")
    among = _import_pool(project, task, args.pool) if args.pool else None
    ids = choose_unlabelled(project.table(task), column, args.label, args.draw_seed, among)
    if len(ids) < args.label and among is None:
        _sample(project, task, args.label - len(ids), args.draw_seed)
        ids = choose_unlabelled(project.table(task), column, args.label, args.draw_seed)
    if not ids:
        raise CliError(f"every architecture {'of the pool ' if among else ''}has {column}")
    demo_ids = demo_ids_option(args, project.task(task))
    cost = _estimate(project, task, ids, profile, prompt, demo_ids, args.samples)
    print(f"labelling {len(ids)} architectures: {cost}", file=sys.stderr)
    if args.estimate:
        return None
    title = f"LLM-PP labels for distillation with {profile.predictor_name}"
    summary = run_llm_predictions(project, task, ids, args, title)
    if summary is None:
        raise CliError("labelling was cancelled")
    print(
        f"labelled {summary.predicted} of {len(ids)} architectures as {column}, cost "
        f"{summary.usage.cost:.4f}",
        file=sys.stderr,
    )
    return column


def _import_pool(project: Project, task: str, pool: str) -> list[str]:
    """Import the pool file as ``nasstudio import`` does; its architectures' ids."""
    from nasstudio.store.importers import read_llmas

    file = read_llmas(pool, task)
    with project.transaction():
        file.write(project)
    print(file.report.describe(), file=sys.stderr)
    return [r.arch.id for r in file.records]


def _sample(project: Project, task: str, count: int, seed: int) -> None:
    from nasstudio.jobs.sampling import sample_job

    run_job(
        project,
        "sample",
        f"Sample {count} architectures to label",
        sample_job,
        task=task,
        count=count,
        seed=seed,
    )


def _estimate(project: Project, task: str, ids, profile, prompt, demo_ids, samples: int) -> str:
    """The cost of labelling ``ids``, from the prompt of the first (as the GUI's Predict
    dialog estimates it)."""
    from nasstudio.gui.prompt_tokens import count_tokens
    from nasstudio.predict.distill_jobs import labelling_cost
    from nasstudio.predict.llm import TaskArchitectures

    known = TaskArchitectures.load(project, task)
    pool = known.demonstrations() if demo_ids is None else known.restricted_pool(demo_ids)
    (query,) = known.queries(ids[:1])
    tokens = count_tokens(prompt.messages(query, pool), profile.model)
    return labelling_cost(profile, len(ids) * samples, tokens.tokens, tokens.exact)


def _fit(project: Project, task: str, column: str | None, args: argparse.Namespace) -> int:
    from nasstudio.predict.distill import FitSettings
    from nasstudio.predict.distill_jobs import (
        DISTILL_KIND,
        default_labels_column,
        default_name,
        distill_job,
    )

    column = column or default_labels_column(project.table(task))
    name = args.name or default_name(column)
    settings = FitSettings(
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        hidden_dim=args.hidden_dim,
        hidden_layers=args.hidden_layers,
        seeds=tuple(range(args.ensemble)),
        start_at_mean=args.start_at_mean,
    )
    summary = run_job(
        project,
        DISTILL_KIND,
        f"Distil {column} of {task} into {name}",
        distill_job,
        task=task,
        labels_column=column,
        name=name,
        settings=settings,
        seedarchs=args.seedarchs,
        split_seed=args.split_seed,
    )
    if summary is None:
        return 1
    if args.json:
        print(json.dumps(summary, indent=1))
        return 0
    held = summary["held_out"]
    print(
        f"{summary['kind']} predictor {name} fitted on {summary['fitted_on']} values of "
        f"{column}; held out ({held['n']}): Kendall tau {_figure(held['kendall_tau'])}, "
        f"MAE {_figure(held['mae'])}"
    )
    if summary["seedarchs"]:
        from nasstudio.predict.evaluate import METRIC_LABELS, METRICS

        scores = summary["seedarchs"]
        figures = ", ".join(
            f"{METRIC_LABELS[m]} {_figure(scores[m]['mean'])} ({_figure(scores[m]['std'])})"
            for m in METRICS
        )
        print(f"on the seed architectures (mean (std) over seeds): {figures}")
    print(f"predictions of {summary['predicted']} architectures in {summary['column']}")
    print(f"stored as {summary['path']}")
    return 0


def _figure(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.3f}"


def _list(project: Project, as_json: bool) -> int:
    """The stored predictors with what they were fitted on and how well they did."""
    from nasstudio.predict.distill import distilled_dir, stored_distilled

    stored = stored_distilled(project.path)
    if as_json:
        rows = [
            {
                "name": p.stored_name,
                "predictor": p.name,
                "kind": p.kind,
                "metric": p.metric,
                "fitted_on": p.provenance,
                "evaluation": p.evaluation,
            }
            for p in stored
        ]
        print(json.dumps(rows, indent=1))
        return 0
    if not stored:
        print(f"(no distilled or fitted predictors in {distilled_dir(project.path)})")
    for p in stored:
        fitted = p.provenance
        held = p.evaluation.get("held_out", {})
        seeds = p.evaluation.get("seedarchs", {}).get("kendall_tau", {})
        line = (
            f"{p.stored_name:<24} {p.kind:<9} {fitted.get('task', '?')}: "
            f"{fitted.get('architectures', '?')} values of {fitted.get('labels', '?')}; "
            f"held-out tau {_figure(held.get('kendall_tau'))}"
        )
        if seeds:
            line += f", seed-architecture tau {_figure(seeds.get('mean'))}"
        print(line)
    return 0
