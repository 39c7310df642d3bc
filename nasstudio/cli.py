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


# --- LLM-PP: prompts, predictions, evaluation ----------------------------------------------------
# nasstudio.predict loads openai and scipy: imported inside the commands so that the others start
# fast.


def _llm_profile(args: argparse.Namespace, required: bool):
    """The profile named by --profile, or one built from --base-url/--model; flags override."""
    from dataclasses import replace
    from urllib.parse import urlparse

    from nasstudio.predict.llm import LLMProfile, ProfileStore
    from nasstudio.predict.llm.client import OPENAI_BASE_URL

    overrides = {
        name: getattr(args, name)
        for name in (
            "base_url",
            "model",
            "temperature",
            "max_tokens",
            "timeout",
            "concurrency",
            "max_retries",
            "price_input_per_1k",
            "price_output_per_1k",
            "api_key_env",
        )
        if getattr(args, name) is not None
    }
    if args.send_key_to_custom_url:
        overrides["send_key_to_custom_url"] = True
    if args.profile:
        return replace(ProfileStore(args.profiles).get(args.profile), **overrides)
    if "base_url" in overrides or "model" in overrides:
        if "model" not in overrides:
            raise CliError("--base-url needs --model (the model name the endpoint serves)")
        base_url = overrides.get("base_url", OPENAI_BASE_URL)
        return LLMProfile(name=urlparse(base_url).netloc or "custom", **overrides)
    if required:
        raise CliError("say which LLM with --profile NAME, or --base-url URL and --model NAME")
    return None


def _llm_prompt(project: Project, task: str, args: argparse.Namespace):
    """The task's current prompt (or --prompt-version), with demonstration and example flags."""
    from dataclasses import replace

    from nasstudio.predict.llm.prompt import current_prompt, load_prompt, read_example_pairs

    prompt = load_prompt(project, args.prompt_version) if args.prompt_version else None
    prompt = prompt or current_prompt(project, task)
    if prompt.task != task:
        raise CliError(f"prompt {args.prompt_version} belongs to task '{prompt.task}', not {task}")
    demos = {k: getattr(args, k) for k in ("k", "strategy", "seed") if getattr(args, k) is not None}
    if demos:
        prompt = prompt.with_sections(
            demonstrations=replace(prompt.sections.demonstrations, **demos)
        )
    if args.examples:
        prompt = replace(prompt, examples=read_example_pairs(*args.examples, n=args.example_count))
    return prompt


def cmd_prompt_show(args: argparse.Namespace) -> int:
    project = _project(args)
    task = _task_name(project, args.task)
    prompt = _llm_prompt(project, task, args)
    rendered = prompt.render_sections()
    if args.json:
        print(json.dumps({"version": prompt.version, **prompt.to_json()}, indent=1))
        return 0
    settings = rendered.demonstrations
    print(f"prompt {prompt.version} ({prompt.name}) for task {task}\n")
    print(f"== role (system message)\n{rendered.system}\n")
    print("== instructions")
    for i, text in enumerate(rendered.instructions, 1):
        print(f"{i}. {text}")
    print(f"\n== hyperparameter definitions\n{rendered.definitions or '(none)'}\n")
    print(
        f"== demonstrations\nk = {settings.k}, strategy = {settings.strategy.value}, "
        f"seed = {settings.seed}"
    )
    return 0


def cmd_prompt_render(args: argparse.Namespace) -> int:
    from nasstudio.predict.llm import TaskArchitectures

    project = _project(args)
    task = _task_name(project, args.task)
    prompt = _llm_prompt(project, task, args)
    known = TaskArchitectures.load(project, task)
    (query,) = known.queries([args.arch_id])
    messages = prompt.messages(query, known.demonstrations())
    if args.json:
        print(json.dumps({"version": prompt.version, "messages": messages}, indent=1))
        return 0
    for message in messages:
        print(f"=== {message['role']}\n{message['content']}\n")
    return 0


def cmd_predict_llm(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from nasstudio.predict.llm import llm_predict_job

    project = _project(args)
    task = _task_name(project, args.task)
    profile = _llm_profile(args, required=True)
    prompt = _llm_prompt(project, task, args)
    ids = args.ids or [a.id for a in project.architectures(task)]
    summary = _run_job(
        project,
        "predict-llm",
        f"LLM-PP predictions with {profile.predictor_name}",
        llm_predict_job,
        project=project,
        task=task,
        arch_ids=ids,
        profile=profile,
        prompt=prompt,
        samples=args.samples,
        cache_path=args.cache,
        use_cache=not args.no_cache,
    )
    if summary is None:
        return 1
    usage = summary.usage
    if args.json:
        print(json.dumps({"task": task, **asdict(summary)}, indent=1))
        return 0
    print(
        f"predicted {summary.predicted} of {len(ids)} architectures of {task} as "
        f"pred:bleu_valid@{summary.predictor} (prompt {summary.prompt_version})"
        + (f"; {summary.failed} failed, see the job log" if summary.failed else "")
    )
    print(
        f"{usage.requests} requests ({usage.retries} retries), {usage.cache_hits} answers from "
        f"the cache, {usage.input_tokens} input and {usage.output_tokens} output tokens, "
        f"cost {usage.cost:.4f}"
    )
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from nasstudio.predict.evaluate import (
        evaluate_stored,
        llm_evaluate_job,
        load_seedarchs,
        seedarchs_tasks,
    )
    from nasstudio.predict.llm.prompt import ablation_variants
    from nasstudio.store.importers import LLMAS_BASELINES

    project = _project(args)
    tasks = args.task or seedarchs_tasks(args.seedarchs)
    if not tasks:
        raise CliError(f"{args.seedarchs}: no <seed>/<task>/train.jsonl and test.jsonl found")
    profile = _llm_profile(args, required=False)
    if args.ablations and profile is None:
        raise CliError("--ablations evaluates LLM prompts: say which LLM (--profile or --model)")
    results = []
    for task in tasks:
        benchmark = load_seedarchs(project, args.seedarchs, task)
        names = list(args.predictor or [])
        if args.baselines or not (names or profile):
            names += [n for n in LLMAS_BASELINES if n not in names]
        results += [evaluate_stored(project, benchmark, name) for name in names]
        if profile is None:
            continue
        prompt = _llm_prompt(project, task, args)
        variants = [("", prompt)] + (ablation_variants(prompt) if args.ablations else [])
        for label, variant in variants:
            result = _run_job(
                project,
                "evaluate-llm",
                f"Evaluate {profile.predictor_name} on {task}" + (f" ({label})" if label else ""),
                llm_evaluate_job,
                project=project,
                benchmark=benchmark,
                profile=profile,
                prompt=variant,
                samples=args.samples,
                cache_path=args.cache,
                use_cache=not args.no_cache,
            )
            if result is None:
                return 1
            results.append(result)
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=1))
        return 0
    for task in tasks:
        seeds = next(
            (", ".join(str(s.seed) for s in r.splits) for r in results if r.task == task), ""
        )
        print(f"== {task}: mean (std) over seeds {seeds}")
        print(f"{'predictor':<44} {'MAE':>12} {'Kendall tau':>12} {'Spearman rho':>13}")
        for r in (r for r in results if r.task == task):
            name = r.predictor + (f" [{r.prompt_name}]" if r.prompt_version else "")
            cells = [f"{r.mean(m):.2f} ({r.std(m):.2f})" for m in ("mae", "kendall_tau")]
            cells.append(f"{r.mean('spearman_rho'):.2f} ({r.std('spearman_rho'):.2f})")
            print(f"{name[:44]:<44} {cells[0]:>12} {cells[1]:>12} {cells[2]:>13}")
            if r.usage is not None:
                print(f"{'':<44} {r.usage.requests} requests, cost {r.usage.cost:.4f}")
    return 0


def _add_prompt_options(p: argparse.ArgumentParser, task: bool = True) -> None:
    if task:
        p.add_argument("--task", help="task (needed when the project has several)")
    p.add_argument("--prompt-version", help="a stored prompt version (default: the current one)")
    p.add_argument("--k", type=int, help="number of demonstrations")
    p.add_argument(
        "--strategy", choices=("random", "spread", "nearest"), help="how demonstrations are chosen"
    )
    p.add_argument("--seed", type=int, help="seed of the random demonstration draw")
    p.add_argument(
        "--examples",
        nargs=2,
        metavar=("SOURCE", "TARGET"),
        help="line-aligned corpus files (plain or .gz) to draw example sentence pairs from",
    )
    p.add_argument("--example-count", type=int, default=3, help="sentence pairs (default 3)")


def _add_llm_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("LLM (a stored profile, or an endpoint; flags override the profile)")
    g.add_argument("--profile", help="LLM profile name (see --profiles)")
    g.add_argument("--profiles", help="profiles JSON file (default: the user's config folder)")
    g.add_argument("--base-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080/v1")
    g.add_argument("--model", help="model name to request")
    g.add_argument("--temperature", type=float, help="sampling temperature")
    g.add_argument("--max-tokens", type=int, help="longest answer in tokens")
    g.add_argument("--timeout", type=float, help="seconds per request")
    g.add_argument("--concurrency", type=int, help="requests in flight at once")
    g.add_argument("--max-retries", type=int, help="retries on 429, 5xx and timeouts")
    g.add_argument("--price-input-per-1k", type=float, help="price per 1,000 input tokens")
    g.add_argument("--price-output-per-1k", type=float, help="price per 1,000 output tokens")
    g.add_argument("--api-key-env", help="environment variable holding the API key")
    g.add_argument(
        "--send-key-to-custom-url",
        action="store_true",
        help="send the API key to a base URL other than api.openai.com",
    )
    g.add_argument("--samples", type=int, default=1, help="answers per architecture (default 1)")
    g.add_argument("--cache", help="answer cache file (default: the user's cache folder)")
    g.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _add_llm_commands(add, common: argparse.ArgumentParser) -> None:
    """``prompt show|render``, ``predict llm`` and ``evaluate``."""
    p = add("prompt", None, "show the LLM-PP prompt of a task, or render it for an architecture")
    actions = p.add_subparsers(dest="prompt_command", metavar="ACTION", required=True)
    q = actions.add_parser(
        "show",
        parents=[common],
        help="the sections of the current (or a stored) prompt",
        description="Show the sections of a task's current prompt (or of --prompt-version).",
    )
    q.set_defaults(handler=cmd_prompt_show)
    _add_prompt_options(q)
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q = actions.add_parser(
        "render",
        parents=[common],
        help="the exact messages sent for one architecture",
        description="Render the exact chat messages the LLM gets for one architecture.",
    )
    q.set_defaults(handler=cmd_prompt_render)
    q.add_argument("arch_id", help="architecture id (see 'nasstudio list')")
    _add_prompt_options(q)
    q.add_argument("--json", action="store_true", help="machine-readable output")

    p = add("predict", None, "predict BLEU of architectures (predictors: llm)")
    kinds = p.add_subparsers(dest="predictor_kind", metavar="PREDICTOR", required=True)
    q = kinds.add_parser(
        "llm",
        parents=[common],
        help="LLM-PP through an OpenAI-compatible endpoint",
        description="Predict BLEU with LLM-PP; each prediction is recorded as it arrives and a "
        "cancel (Ctrl+C) keeps them.",
    )
    q.set_defaults(handler=cmd_predict_llm)
    which = q.add_mutually_exclusive_group(required=True)
    which.add_argument("--ids", nargs="+", help="architecture ids to predict")
    which.add_argument("--all", action="store_true", help="every architecture of the task")
    _add_prompt_options(q)
    _add_llm_options(q)

    p = add(
        "evaluate",
        cmd_evaluate,
        "score predictors with the llmas seed-architecture protocol (MAE, Kendall tau, "
        "Spearman rho; mean and std over seeds)",
    )
    p.add_argument(
        "--seedarchs",
        required=True,
        help="folder of <seed>/<task>/{train,test}.jsonl (imported into the project)",
    )
    p.add_argument("--task", nargs="+", help="tasks to evaluate (default: all in the folder)")
    p.add_argument(
        "--baselines", action="store_true", help="the four supernet baselines (default without LLM)"
    )
    p.add_argument("--predictor", nargs="+", help="stored predictors to score, by name")
    p.add_argument(
        "--ablations",
        action="store_true",
        help="with an LLM: also each instruction removed, no instructions, no definitions, other k",
    )
    _add_prompt_options(p, task=False)
    _add_llm_options(p)


# --- training, latency and the supernet ----------------------------------------------------------
# The jobs behind these commands load torch: imported inside the commands.


def _corpus_spec(args: argparse.Namespace) -> dict[str, Any]:
    """The ``data.spec`` corpus spec of --corpus, --corpus-path, --src and --tgt."""
    if args.corpus == "demo":
        return {"kind": "demo"}
    if not args.corpus_path:
        raise CliError(f"--corpus {args.corpus} needs --corpus-path FOLDER")
    return {"kind": args.corpus, "path": args.corpus_path, "src": args.src, "tgt": args.tgt}


def _device(requested: str | None) -> str:
    """--device checked against this machine; by default CUDA when there is a GPU."""
    import torch

    if requested is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise CliError(f"--device {requested}: expected cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise CliError(f"--device {requested}: expected cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CliError(f"--device {requested}: CUDA is not available on this machine")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise CliError(f"--device {requested}: this machine has {torch.cuda.device_count()} GPUs")
    return requested


def _arch_ids(project: Project, task: str, args: argparse.Namespace) -> list[str]:
    """--ids (checked against the task) or --all, the first --limit of them."""
    known = [a.id for a in project.architectures(task)]
    missing = sorted(set(args.ids or ()) - set(known))
    if missing:
        raise CliError(f"not in task '{task}': {', '.join(missing)}")
    ids = args.ids or known
    return ids[: args.limit] if args.limit else ids


def _train_config(args: argparse.Namespace) -> dict[str, Any]:
    """TrainConfig fields from the flags given. A budget flag replaces the default budget
    (2,000 steps) rather than adding to it."""
    config = {
        key: value
        for key, value in (
            ("lr", args.lr),
            ("warmup_steps", args.warmup),
            ("max_tokens", args.max_tokens),
            ("seed", args.seed),
        )
        if value is not None
    }
    budget = {"max_steps": args.steps, "max_epochs": args.epochs, "max_minutes": args.minutes}
    if any(value is not None for value in budget.values()):
        config.update(budget)
    return config


def cmd_train(args: argparse.Namespace) -> int:
    from nasstudio.data.spec import task_name
    from nasstudio.train.job import train_job

    project = _project(args)
    task = _task_name(project, args.task)
    ids = _arch_ids(project, task, args)
    corpus, device, config = _corpus_spec(args), _device(args.device), _train_config(args)
    if args.beam is not None:
        config["beam"] = args.beam
    results = []
    for n, arch_id in enumerate(ids, 1):
        scores = _run_job(
            project,
            "train",
            f"Train {arch_id} ({n}/{len(ids)})",
            train_job,
            project=project,
            task=task,
            arch_id=arch_id,
            corpus=corpus,
            config=config,
            device=device,
            vocab_size=args.vocab_size,
            vocab_type=args.vocab_type,
        )
        if scores is None:
            break
        results.append({"id": arch_id, "task": task_name(corpus), **scores})
        if not args.json:
            print(f"{arch_id}  " + "  ".join(f"{m} {v:.2f}" for m, v in scores.items()))
    if args.json:
        print(json.dumps(results, indent=1))
    return 0 if len(results) == len(ids) else 1


def cmd_latency(args: argparse.Namespace) -> int:
    from nasstudio.jobs.latency import latency_job

    project = _project(args)
    task = _task_name(project, args.task)
    ids = _arch_ids(project, task, args)
    device = _device(args.device)
    estimates = _run_job(
        project,
        "latency",
        f"Measure the latency of {len(ids)} architectures on {device}",
        latency_job,
        project=project,
        task=task,
        arch_ids=ids,
        device=device,
        beam=args.beam,
        repeats=args.repeats,
        warmup=args.warmup,
        threads=args.threads,
    )
    if estimates is None:
        return 1
    rows = [
        {
            "id": arch_id,
            "task": task,
            "device": e.device,
            "latency_ms": e.total_ms,
            "encoder_ms": e.encoder_ms,
            "decoder_ms": e.decoder_ms,
            "encoder_std_ms": e.encoder_std_ms,
            "decoder_std_ms": e.decoder_std_ms,
        }
        for arch_id, e in estimates.items()
    ]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"latency on {rows[0]['device'] if rows else device} (beam {args.beam}), ms")
    for r in rows:
        print(
            f"{r['id']}  {r['latency_ms']:9.2f}  (encoder {r['encoder_ms']:.2f} "
            f"± {r['encoder_std_ms']:.2f}, decoder {r['decoder_ms']:.2f} "
            f"± {r['decoder_std_ms']:.2f})"
        )
    return 0


def cmd_supernet_train(args: argparse.Namespace) -> int:
    from nasstudio.train.supernet import supernet_train_job

    project = _project(args)
    task = _task_name(project, args.task)
    result = _run_job(
        project,
        "supernet-train",
        f"Train the supernet of {task}",
        supernet_train_job,
        project=project,
        task=task,
        corpus=_corpus_spec(args),
        config=_train_config(args),
        device=_device(args.device),
        vocab_size=args.vocab_size,
        checkpoint=args.out,
        vocab_type=args.vocab_type,
    )
    if result is None:
        return 1
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    loss = result["best_valid_loss"]
    print(
        f"supernet at step {result['step']}: {result['checkpoint']}"
        + (f" (best valid loss of the largest {loss:.3f})" if loss is not None else "")
    )
    return 0


def cmd_supernet_score(args: argparse.Namespace) -> int:
    from nasstudio.data.spec import task_name
    from nasstudio.train.supernet import supernet_score_job

    project = _project(args)
    task = _task_name(project, args.task)
    ids = _arch_ids(project, task, args)
    corpus = _corpus_spec(args)
    scores = _run_job(
        project,
        "supernet-score",
        f"Score {len(ids)} architectures with {Path(args.checkpoint).name}",
        supernet_score_job,
        project=project,
        task=task,
        arch_ids=ids,
        checkpoint=args.checkpoint,
        corpus=corpus,
        device=_device(args.device),
        bleu_sentences=args.bleu_sentences,
    )
    if scores is None:
        return 1
    rows = [{"id": arch_id, "task": task_name(corpus), **s} for arch_id, s in scores.items()]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for r in rows:
        print(f"{r['id']}  valid_loss {r['valid_loss']:.3f}  bleu_valid {r['bleu_valid']:.2f}")
    return 0


def _add_selection_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", help="task of the architectures (needed when the project has several)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--ids", nargs="+", help="architecture ids")
    which.add_argument("--all", action="store_true", help="every architecture of the task")
    p.add_argument("--limit", type=int, help="only the first N of them")


def _add_device_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device", help="cpu, cuda or cuda:N (default: cuda when there is a GPU, else cpu)"
    )


def _add_corpus_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("corpus (results go to its task: demo, or <folder>-<src><tgt>)")
    g.add_argument(
        "--corpus",
        choices=("demo", "multi30k", "folder"),
        default="demo",
        help="the built-in synthetic pair, Multi30k as distributed, or a folder of "
        "{train,valid,test}.<lang>[.gz] files (default demo)",
    )
    g.add_argument("--corpus-path", help="the corpus folder (multi30k, folder)")
    g.add_argument("--src", default="en", help="source language (default en)")
    g.add_argument("--tgt", default="de", help="target language (default de)")


def _add_training_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("training (a budget flag replaces the default of 2,000 steps)")
    g.add_argument("--steps", type=int, help="optimiser steps")
    g.add_argument("--epochs", type=int, help="passes over the training data")
    g.add_argument("--minutes", type=float, help="wall-clock minutes")
    g.add_argument("--lr", type=float, help="peak learning rate (default 1e-3)")
    g.add_argument("--warmup", type=int, help="warm-up steps (default 200)")
    g.add_argument("--max-tokens", type=int, help="padded tokens per batch (default 4096)")
    g.add_argument("--seed", type=int, help="random seed (default 1)")
    g.add_argument("--vocab-size", type=int, help="subwords (default: the task's vocabulary size)")
    g.add_argument("--vocab-type", choices=("bpe", "unigram"), default="bpe", help="default bpe")
    _add_device_option(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _add_training_commands(add, common: argparse.ArgumentParser) -> None:
    """``train``, ``latency`` and ``supernet train|score``."""
    p = add(
        "train",
        cmd_train,
        "train architectures from scratch on a corpus, one after another, and record their "
        "BLEU on valid and test (Ctrl+C keeps a checkpoint; the same command resumes it)",
    )
    _add_selection_options(p)
    _add_corpus_options(p)
    _add_training_options(p)
    p.add_argument("--beam", type=int, help="beam of the final BLEU (default 5; 1: greedy)")

    p = add(
        "latency",
        cmd_latency,
        "measure the latency of architectures on this machine with HAT's protocol "
        "(random weights, 30-token source, 30 decoder steps) and record it as latency_ms",
    )
    _add_selection_options(p)
    _add_device_option(p)
    p.add_argument("--beam", type=int, default=5, help="beam rows decoded (default 5)")
    p.add_argument("--repeats", type=int, default=20, help="timed runs (default 20)")
    p.add_argument("--warmup", type=int, default=5, help="untimed runs first (default 5)")
    p.add_argument("--threads", type=int, help="CPU threads (default: torch's setting)")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = add("supernet", None, "train a weight-sharing supernet, and score architectures with it")
    actions = p.add_subparsers(dest="supernet_command", metavar="ACTION", required=True)
    q = actions.add_parser(
        "train",
        parents=[common],
        help="train the task space's SuperTransformer with the sandwich rule",
        description="Train the SuperTransformer of the task's search space on a corpus with "
        "the sandwich rule (largest, smallest and one random sub-architecture per step). "
        "Ctrl+C keeps the checkpoint; the same command resumes it.",
    )
    q.set_defaults(handler=cmd_supernet_train)
    q.add_argument("--task", help="task whose search space to train (needed when several)")
    q.add_argument("--out", "-o", help="checkpoint file (default: beside the project)")
    _add_corpus_options(q)
    _add_training_options(q)
    q = actions.add_parser(
        "score",
        parents=[common],
        help="record the valid loss and BLEU of architectures with inherited weights",
        description="Score architectures with the weights they inherit from a supernet "
        "checkpoint: validation loss and greedy BLEU, recorded as supernet predictions.",
    )
    q.set_defaults(handler=cmd_supernet_score)
    _add_selection_options(q)
    q.add_argument("--checkpoint", required=True, help="supernet checkpoint (supernet train)")
    q.add_argument(
        "--bleu-sentences", type=int, default=200, help="validation sentences decoded (200)"
    )
    _add_corpus_options(q)
    _add_device_option(q)
    q.add_argument("--json", action="store_true", help="machine-readable output")


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
    _add_llm_commands(add, common)
    _add_training_commands(add, common)
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
