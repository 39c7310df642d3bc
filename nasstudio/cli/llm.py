"""LLM-PP commands: prompts, predictions, evaluation."""

from __future__ import annotations

import argparse
import json

from nasstudio.cli.common import (
    EXECUTION,
    CliError,
    open_from_args,
    resolve_task,
    run_job,
)
from nasstudio.store import Project

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


def _llm_prompt(project: Project, task: str, args: argparse.Namespace, default=None):
    """The task's current prompt (or --prompt-version, or ``default`` for a task the project
    does not have yet), with demonstration and example flags."""
    from dataclasses import replace

    from nasstudio.predict.llm.prompt import current_prompt, load_prompt, read_example_pairs

    prompt = load_prompt(project, args.prompt_version) if args.prompt_version else None
    prompt = prompt or default or current_prompt(project, task)
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
    project = open_from_args(args)
    task = resolve_task(project, args.task)
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

    project = open_from_args(args)
    task = resolve_task(project, args.task)
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


def cmd_prompt_render_llmas(args: argparse.Namespace) -> int:
    from nasstudio.predict.llm.llmas import render_files

    prompt = render_files(
        args.template, args.demos, args.query, args.index, tuple(args.examples), args.seed
    )
    if args.json:
        data = {"messages": prompt.messages, "example_line_indices": prompt.example_line_indices}
        print(json.dumps(data, indent=1, ensure_ascii=False))
        return 0
    # Exactly the message, no newline after its final "BLEU: ": "> file" keeps it byte for byte.
    print(prompt.content, end="")
    return 0


def cmd_predict_llm(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from nasstudio.predict.llm import llm_predict_job

    _check_executor()
    project = open_from_args(args)
    task = resolve_task(project, args.task)
    profile = _llm_profile(args, required=True)
    prompt = _llm_prompt(project, task, args)
    ids = args.ids or [a.id for a in project.architectures(task)]
    summary = run_job(
        project,
        "predict-llm",
        f"LLM-PP predictions with {profile.predictor_name}",
        llm_predict_job,
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
    from nasstudio.predict.evaluate import seedarchs_tasks
    from nasstudio.predict.llm.prompt import ablation_variants, default_prompt
    from nasstudio.predict.prompt_jobs import evaluate_prompts_job
    from nasstudio.store.importers import LLMAS_BASELINES, task_for

    _check_executor()
    project = open_from_args(args)
    tasks = args.task or seedarchs_tasks(args.seedarchs)
    if not tasks:
        raise CliError(f"{args.seedarchs}: no <seed>/<task>/train.jsonl and test.jsonl found")
    profile = _llm_profile(args, required=False)
    if args.ablations and profile is None:
        raise CliError("--ablations evaluates LLM prompts: say which LLM (--profile or --model)")
    results = []
    for task in tasks:
        names = list(args.predictor or [])
        if args.baselines or not (names or profile):
            names += [n for n in LLMAS_BASELINES if n not in names]
        prompts = []
        if profile is not None:
            # The job imports the task; until then its prompt is the default one.
            default = None if project.task(task) else default_prompt(task_for(task))
            prompt = _llm_prompt(project, task, args, default)
            prompts = [("", prompt)] + (ablation_variants(prompt) if args.ablations else [])
        evaluated = run_job(
            project,
            "evaluate-llm" if prompts else "evaluate",
            f"Evaluate on {task}" + (f" with {profile.predictor_name}" if prompts else ""),
            evaluate_prompts_job,
            folder=args.seedarchs,
            task=task,
            profile=profile,
            prompts=prompts,
            predictors=names,
            samples=args.samples,
            cache_path=args.cache,
            use_cache=not args.no_cache,
        )
        if evaluated is None:
            return 1
        results += evaluated
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=1))
        return 0
    for task in tasks:
        _print_evaluations(task, [r for r in results if r.task == task])
    print(f"recorded in {project.path} (the GUI's Evaluation tab shows them)")
    return 0


def _print_evaluations(task: str, results: list) -> None:
    """One row per predictor: each figure, and on how many of the asked test architectures
    it rests (``n=35/60``: the others got no prediction)."""
    from nasstudio.predict.evaluate import METRIC_LABELS, METRICS, coverage_text

    seeds = ", ".join(str(s.seed) for s in results[0].splits) if results else ""
    print(f"== {task}: mean (std) over seeds {seeds}")
    header = ["predictor", *(METRIC_LABELS[m] for m in METRICS), "n"]
    rows = [
        [
            (r.predictor + (f" [{r.prompt_name}]" if r.prompt_version else ""))[:44],
            *(r.figure(m) for m in METRICS),
            coverage_text(r.predicted, r.asked),
        ]
        for r in results
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row, r in zip([header, *rows], [None, *results], strict=True):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        print("  ".join(cells))
        if r is not None and r.usage is not None:
            print(f"{'':<{widths[0]}}  {r.usage.requests} requests, cost {r.usage.cost:.4f}")


def _check_executor() -> None:
    if EXECUTION.executor is not None:
        raise CliError(
            "LLM requests run as coroutines on an event loop: --executor is for torch and file work"
        )


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
        help="send the API key to a base URL other than api.openai.com (over https, or over "
        "http to this machine only)",
    )
    g.add_argument("--samples", type=int, default=1, help="answers per architecture (default 1)")
    g.add_argument("--cache", help="answer cache file (default: the user's cache folder)")
    g.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def add_llm_commands(add, common: argparse.ArgumentParser) -> None:
    """``prompt show|render|render-llmas``, ``predict llm`` and ``evaluate``."""
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
    q = actions.add_parser(
        "render-llmas",
        help="the exact user message llmas's gpt_scorer.py sends for one test architecture",
        description="Print exactly the one user message llmas sends for line INDEX (0-based) of "
        "the test file: the template with task examples drawn with the seed and the first 10 "
        "demonstrations in file order, then the test architecture ending in 'BLEU: ' (printed "
        "without a final newline).",
    )
    q.set_defaults(handler=cmd_prompt_render_llmas)
    q.add_argument(
        "template",
        metavar="TEMPLATE",
        help="an llmas template file, e.g. gpt_scorer_concentrate_statement",
    )
    q.add_argument(
        "--demos",
        required=True,
        metavar="TRAIN_JSONL",
        help="a seed's train.jsonl (its first 10 are shown)",
    )
    q.add_argument("--query", required=True, metavar="TEST_JSONL", help="a seed's test.jsonl")
    q.add_argument(
        "--index", type=int, required=True, metavar="I", help="0-based line of the test file"
    )
    q.add_argument(
        "--examples",
        nargs=2,
        required=True,
        metavar=("SOURCE", "TARGET"),
        help="line-aligned corpus files (plain or .gz) the 5 task examples are drawn from",
    )
    q.add_argument(
        "--seed", type=int, required=True, metavar="S", help="llmas's seed (123, 456 or 789)"
    )
    q.add_argument(
        "--json", action="store_true", help="the messages and the example lines drawn, as JSON"
    )

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
        "Spearman rho; mean and std over seeds) and record the scores in the project",
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
