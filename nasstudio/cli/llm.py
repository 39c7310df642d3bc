"""LLM-PP commands: prompts, predictions, evaluation."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from nasstudio.cli.common import (
    EXECUTION,
    CliError,
    open_from_args,
    resolve_task,
    run_job,
    whole_number,
)
from nasstudio.store import Project

if TYPE_CHECKING:
    from nasstudio.predict.llm.job import LLMJobSummary

# nasstudio.predict loads openai and scipy: imported inside the commands so that the others start
# fast.


def llm_profile(args: argparse.Namespace, required: bool):
    """The profile named by --profile, or one built from --base-url/--model; flags override."""
    from dataclasses import replace
    from urllib.parse import urlparse

    from nasstudio.predict.llm import LLMProfile, ProfileStore
    from nasstudio.predict.llm.client import OPENAI_BASE_URL

    overrides = _profile_overrides(args)
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


def _profile_overrides(args: argparse.Namespace) -> dict:
    """The profile fields set by flags."""
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
            "decoding",
        )
        if getattr(args, name) is not None
    }
    if args.send_key_to_custom_url:
        overrides["send_key_to_custom_url"] = True
    return overrides


def llm_prompt(
    project: Project, task: str, args: argparse.Namespace, default=None, filled: bool = True
):
    """The task's current prompt (or --prompt-version, or ``default`` for a task the project
    does not have yet), with demonstration and example flags. An llmas prompt is ``filled``
    with its task-example corpus (--examples) and seed."""
    from dataclasses import replace

    from nasstudio.predict.llm.llmas import LlmasTemplate
    from nasstudio.predict.llm.prompt import current_prompt, load_prompt, read_example_pairs

    prompt = load_prompt(project, args.prompt_version) if args.prompt_version else None
    prompt = prompt or default or current_prompt(project, task)
    if prompt.task != task:
        raise CliError(f"prompt {args.prompt_version} belongs to task '{prompt.task}', not {task}")
    if isinstance(prompt, LlmasTemplate):
        if args.k is not None or args.strategy is not None:
            raise CliError(
                f"--k and --strategy do not apply to the llmas prompt {prompt.name}: it shows "
                "the first 10 demonstrations of the pool in order (restrict it with --demos)"
            )
        return _filled_llmas(prompt, args) if filled else prompt
    demos = {k: getattr(args, k) for k in ("k", "strategy", "seed") if getattr(args, k) is not None}
    if demos:
        prompt = prompt.with_sections(
            demonstrations=replace(prompt.sections.demonstrations, **demos)
        )
    if args.examples:
        prompt = replace(prompt, examples=read_example_pairs(*args.examples, n=args.example_count))
    return prompt


def _task_examples(args: argparse.Namespace):
    from nasstudio.predict.llm.llmas import TaskExamples

    return TaskExamples(*map(str, args.examples)) if args.examples else None


def _filled_llmas(template, args: argparse.Namespace):
    """An llmas template with the task-example corpus and seed its predictions draw with."""
    examples = _task_examples(args)
    if examples is None:
        raise CliError(
            f"the llmas prompt {template.name} shows 5 task examples drawn from a parallel "
            "corpus: give its source and target files with --examples SOURCE TARGET"
        )
    return template.filled_with(examples, args.seed or 0)


def demo_ids_option(args: argparse.Namespace, task) -> list[str] | None:
    """The demonstration pool's ids from --demo-ids or --demos, None when neither is given."""
    from nasstudio.predict.llm.llmas import train_file_ids

    if args.demo_ids is not None:
        return [i.strip() for i in args.demo_ids.split(",") if i.strip()]
    if args.demos is not None:
        return train_file_ids(args.demos, task)
    return None


def cmd_prompt_import_llmas(args: argparse.Namespace) -> int:
    from nasstudio.predict.llm.llmas import import_templates

    project = open_from_args(args)
    summary = import_templates(project, args.folder, args.task)
    if args.json:
        data = {
            "imported": [
                {"name": t.name, "task": t.task, "version": t.version, "new": new}
                for t, new in summary.imported
            ],
            "skipped": [{"file": name, "why": why} for name, why in summary.skipped],
        }
        print(json.dumps(data, indent=1))
        return 0
    print(f"imported {summary.describe()}")
    return 0


def cmd_prompt_show(args: argparse.Namespace) -> int:
    project = open_from_args(args)
    task = resolve_task(project, args.task)
    prompt = llm_prompt(project, task, args, filled=False)
    if args.json:
        print(json.dumps({"version": prompt.version, **prompt.to_json()}, indent=1))
        return 0
    if not hasattr(prompt, "render_sections"):  # an llmas template: its text is the prompt
        print(f"llmas prompt {prompt.version} ({prompt.name}) for task {task}\n")
        print(prompt.template)
        return 0
    rendered = prompt.render_sections()
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
    prompt = llm_prompt(project, task, args)
    known = TaskArchitectures.load(project, task)
    (query,) = known.queries([args.arch_id])
    demo_ids = demo_ids_option(args, project.task(task))
    pool = known.demonstrations() if demo_ids is None else known.restricted_pool(demo_ids)
    messages = prompt.messages(query, pool)
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


def run_llm_predictions(
    project: Project, task: str, ids: list[str], args: argparse.Namespace, title: str
) -> LLMJobSummary | None:
    """Predict ``ids`` with the LLM the options name, as a job; its summary, None if cancelled."""
    from nasstudio.predict.llm import llm_predict_job

    return run_job(
        project,
        "predict-llm",
        title,
        llm_predict_job,
        task=task,
        arch_ids=ids,
        profile=llm_profile(args, required=True),
        prompt=llm_prompt(project, task, args),
        samples=args.samples,
        demo_ids=demo_ids_option(args, project.task(task)),
        cache_path=args.cache,
        use_cache=not args.no_cache,
    )


def cmd_predict_llm(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from nasstudio.predict.llm.job import asked_again_note

    check_executor()
    project = open_from_args(args)
    task = resolve_task(project, args.task)
    profile = llm_profile(args, required=True)
    ids = args.ids or [a.id for a in project.architectures(task)]
    summary = run_llm_predictions(
        project, task, ids, args, f"LLM-PP predictions with {profile.predictor_name}"
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
        f"cost {usage.cost:.4f}{asked_again_note(profile, usage)}"
    )
    return 0


def cmd_propose(args: argparse.Namespace) -> int:
    from nasstudio.predict.llm.propose import LLM_PROPOSED, propose_job, read_proposer_template

    check_executor()
    project = open_from_args(args)
    task = resolve_task(project, args.task)
    profile = llm_profile(args, required=True)
    summary = run_job(
        project,
        "propose-llm",
        f"LLM proposes {args.k} architectures of {task} at {args.gflops:g} GFLOPs",
        propose_job,
        task=task,
        profile=profile,
        template=read_proposer_template(args.template),
        target_gflops=args.gflops,
        count=args.k,
        examples=_task_examples(args),
        seed=args.seed or 0,
        demo_ids=demo_ids_option(args, project.task(task)),
        tolerance=None if args.tolerance is None else args.tolerance / 100,
        max_tokens=args.max_tokens,
        cache_path=args.cache,
        use_cache=not args.no_cache,
    )
    if summary is None:
        return 1
    if args.json:
        print(json.dumps(summary.as_dict(), indent=1))
        return 0
    for proposal in summary.proposals:
        print(proposal.describe())
    print(
        f"{len(summary.added)} new architectures of {task} with origin {LLM_PROPOSED}; "
        f"{len(summary.proposals) - len(summary.valid_ids)} rejected; "
        f"{summary.usage.requests} requests, cost {summary.usage.cost:.4f}"
    )
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from nasstudio.predict.evaluate import seedarchs_tasks
    from nasstudio.predict.llm.prompt import default_prompt
    from nasstudio.predict.prompt_jobs import evaluate_prompts_job
    from nasstudio.store.importers import LLMAS_BASELINES, task_for

    check_executor()
    project = open_from_args(args)
    tasks = args.task or seedarchs_tasks(args.seedarchs)
    if not tasks:
        raise CliError(f"{args.seedarchs}: no <seed>/<task>/train.jsonl and test.jsonl found")
    profile = llm_profile(args, required=False)
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
            prompt = llm_prompt(project, task, args, default)
            prompts = [("", prompt)] + (
                _ablations(project, task, prompt, args) if args.ablations else []
            )
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
            demo_ids=demo_ids_option(args, project.task(task) or task_for(task)),
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


def _ablations(project: Project, task: str, prompt, args: argparse.Namespace) -> list:
    """The ablation rows of ``prompt``: the project's leave-one-out variants (of a project
    prompt) and llmas's cumulative templates imported for ``task``, filled with --examples."""
    from nasstudio.predict.llm.llmas import cumulative_ablations
    from nasstudio.predict.llm.prompt import Prompt, ablation_variants

    variants = ablation_variants(prompt) if isinstance(prompt, Prompt) else []
    cumulative = [(v, t) for v, t in cumulative_ablations(project, task) if t.name != prompt.name]
    return variants + [(v, _filled_llmas(t, args)) for v, t in cumulative]


def _print_evaluations(task: str, results: list) -> None:
    """One row per predictor: each figure, and on how many of the asked test architectures
    it rests (``n=35/60``: the others got no prediction); with ablations, which kind each is."""
    from nasstudio.predict.evaluate import METRIC_LABELS, METRICS, coverage_text

    seeds = ", ".join(str(s.seed) for s in results[0].splits) if results else ""
    print(f"== {task}: mean (std) over seeds {seeds}")
    kinds = ["ablation"] if any(r.ablation for r in results) else []
    header = ["predictor", *(METRIC_LABELS[m] for m in METRICS), "n", *kinds]
    rows = [
        [
            (r.predictor + (f" [{r.prompt_name}]" if r.prompt_version else ""))[:72],
            *(r.figure(m) for m in METRICS),
            coverage_text(r.predicted, r.asked),
            *([r.ablation] if kinds else []),
        ]
        for r in results
    ]
    figures = len(METRICS) + 1  # right-aligned: the metrics and n
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row, r in zip([header, *rows], [None, *results], strict=True):
        cells = [
            row[0].ljust(widths[0]),
            *(c.rjust(w) for c, w in zip(row[1 : figures + 1], widths[1:], strict=False)),
            *row[figures + 1 :],
        ]
        print("  ".join(cells).rstrip())
        if r is not None and r.usage is not None:
            print(f"{'':<{widths[0]}}  {r.usage.requests} requests, cost {r.usage.cost:.4f}")


def check_executor() -> None:
    if EXECUTION.executor is not None:
        raise CliError(
            "LLM requests run as coroutines on an event loop: --executor is for torch and file work"
        )


def add_prompt_options(p: argparse.ArgumentParser, task: bool = True) -> None:
    if task:
        p.add_argument("--task", help="task (needed when the project has several)")
    p.add_argument("--prompt-version", help="a stored prompt version (default: the current one)")
    p.add_argument("--k", type=int, help="number of demonstrations")
    p.add_argument(
        "--strategy", choices=("random", "spread", "nearest"), help="how demonstrations are chosen"
    )
    p.add_argument(
        "--seed",
        type=int,
        help="seed of the random demonstration draw; of an llmas prompt's task-example draw "
        "(default 0; an evaluation uses each seed's own)",
    )
    p.add_argument(
        "--examples",
        nargs=2,
        metavar=("SOURCE", "TARGET"),
        help="line-aligned corpus files (plain or .gz) to draw example sentence pairs from "
        "(an llmas prompt needs them: it shows 5, drawn with --seed)",
    )
    p.add_argument("--example-count", type=int, default=3, help="sentence pairs (default 3)")


def add_pool_options(p: argparse.ArgumentParser) -> None:
    pool = p.add_mutually_exclusive_group()
    pool.add_argument(
        "--demo-ids",
        metavar="ID,ID,...",
        help="draw demonstrations only from these architectures (each with a measured BLEU)",
    )
    pool.add_argument(
        "--demos",
        metavar="TRAIN_JSONL",
        help="draw demonstrations only from one seed's train.jsonl architectures, in file order "
        "(as llmas labels its distillation pool)",
    )


def add_llm_options(p: argparse.ArgumentParser, samples: bool = True) -> None:
    g = p.add_argument_group("LLM (a stored profile, or an endpoint; flags override the profile)")
    g.add_argument("--profile", help="LLM profile name (see 'nasstudio profile list')")
    g.add_argument("--profiles", help="profiles JSON file (default: the user's config folder)")
    _add_profile_fields(g)
    if samples:
        g.add_argument(
            "--samples", type=int, default=1, help="answers per architecture (default 1)"
        )
    g.add_argument("--cache", help="answer cache file (default: the user's cache folder)")
    g.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def cmd_profile_list(args: argparse.Namespace) -> int:
    from nasstudio.predict.llm import ProfileStore
    from nasstudio.predict.llm.client import DECODINGS

    store = ProfileStore(args.profiles)
    profiles = store.load()
    if args.json:
        print(json.dumps([p.to_json() for p in profiles.values()], indent=1))
        return 0
    print(f"LLM profiles ({store.path}):")
    for p in profiles.values():
        print(f"  {p.name}: {p.model} at {p.base_url}, decoding {p.decoding}")
    print("decoding presets:")
    for name, what in DECODINGS.items():
        print(f"  {name}: {what}")
    return 0


def cmd_profile_save(args: argparse.Namespace) -> int:
    """Save profile NAME: the stored one (else the defaults) with the flags given."""
    from dataclasses import replace

    from nasstudio.predict.llm import LLMProfile, ProfileStore

    store = ProfileStore(args.profiles)
    base = store.load().get(args.name) or LLMProfile(args.name)
    profile = replace(base, **_profile_overrides(args))
    store.save(profile)
    print(f"saved profile '{profile.name}' in {store.path}: decoding {profile.decoding}")
    return 0


def _add_profile_commands(add) -> None:
    p = add("profile", None, "list or save the LLM profiles (endpoint, model, decoding preset)")
    actions = p.add_subparsers(dest="profile_command", metavar="ACTION", required=True)
    q = actions.add_parser(
        "list",
        help="the profiles and what each decoding preset does",
        description="List the LLM profiles and what each decoding preset does.",
    )
    q.set_defaults(handler=cmd_profile_list)
    q.add_argument("--profiles", help="profiles JSON file (default: the user's config folder)")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q = actions.add_parser(
        "save",
        help="add a profile, or change the fields given of a stored one",
        description="Save profile NAME: a stored profile keeps the fields not given; a new one "
        "starts from the defaults.",
    )
    q.set_defaults(handler=cmd_profile_save)
    q.add_argument("name", metavar="NAME", help="profile name")
    q.add_argument("--profiles", help="profiles JSON file (default: the user's config folder)")
    _add_profile_fields(q)


def _add_profile_fields(g: argparse._ActionsContainer) -> None:
    """The flags that set a profile's fields (each overrides the stored profile's)."""
    g.add_argument("--base-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080/v1")
    g.add_argument("--model", help="model name to request")
    g.add_argument(
        "--temperature", type=float, help="sampling temperature (the project decoding's)"
    )
    g.add_argument(
        "--max-tokens", type=int, help="longest answer in tokens (the project decoding's)"
    )
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
    # The presets' names, not imported: nasstudio.predict.llm loads openai (slow to start).
    g.add_argument(
        "--decoding",
        choices=("project", "llmas"),
        help="decoding preset: project (the default) or llmas (as llmas's gpt_scorer.py: its "
        "max tokens and the endpoint's default temperature; an answer that does not start "
        "with a number is asked again); 'nasstudio profile list' says what each does",
    )


def add_llm_commands(add, common: argparse.ArgumentParser) -> None:
    """``prompt show|render|import-llmas|render-llmas``, ``predict llm``, ``propose``,
    ``evaluate`` and ``profile``."""
    _add_profile_commands(add)
    p = add("prompt", None, "show the LLM-PP prompt of a task, or render it for an architecture")
    actions = p.add_subparsers(dest="prompt_command", metavar="ACTION", required=True)
    q = actions.add_parser(
        "show",
        parents=[common],
        help="the sections of the current (or a stored) prompt",
        description="Show the sections of a task's current prompt (or of --prompt-version).",
    )
    q.set_defaults(handler=cmd_prompt_show)
    add_prompt_options(q)
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q = actions.add_parser(
        "render",
        parents=[common],
        help="the exact messages sent for one architecture",
        description="Render the exact chat messages the LLM gets for one architecture.",
    )
    q.set_defaults(handler=cmd_prompt_render)
    q.add_argument("arch_id", help="architecture id (see 'nasstudio list')")
    add_prompt_options(q)
    add_pool_options(q)
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q = actions.add_parser(
        "import-llmas",
        parents=[common],
        help="store an llmas template folder's predictor templates as prompts",
        description="Store each predictor template of an llmas instruction_templates/<task> "
        "folder as a prompt of the project, named llmas/<file> and versioned by its content "
        "(importing again keeps them). The search-agent template (default_flops) is skipped. "
        "Use one with --prompt-version; evaluate --ablations lists them as llmas's cumulative "
        "ablation.",
    )
    q.set_defaults(handler=cmd_prompt_import_llmas)
    q.add_argument("folder", metavar="FOLDER", help="e.g. instruction_templates/wmt14ende")
    q.add_argument("--task", help="the task the templates are for (default: the folder's name)")
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
    add_prompt_options(q)
    add_pool_options(q)
    add_llm_options(q)

    p = add(
        "propose",
        cmd_propose,
        "ask the LLM for architectures at a GFLOPs target with llmas's search-agent template "
        "(default_flops); the valid ones are added with origin llm-proposed, each rejected one "
        "is reported with why",
    )
    p.add_argument("--task", help="task (needed when the project has several)")
    p.add_argument(
        "-k", type=whole_number(100), default=5, help="architectures to ask for (default 5)"
    )
    p.add_argument("--gflops", type=float, required=True, metavar="G", help="the GFLOPs target")
    p.add_argument(
        "--template",
        required=True,
        metavar="PATH",
        help="llmas's search-agent template, or its template folder (instruction_templates/"
        "<task>, which holds default_flops)",
    )
    p.add_argument(
        "--tolerance",
        type=float,
        metavar="PERCENT",
        help="reject proposals further than this from the target (default: none, as llmas: "
        "each proposal's GFLOPs are reported)",
    )
    p.add_argument(
        "--examples",
        nargs=2,
        metavar=("SOURCE", "TARGET"),
        help="line-aligned corpus files (plain or .gz) the template's 5 task examples are drawn "
        "from, with --seed",
    )
    p.add_argument("--seed", type=int, help="seed of the task-example draw (default 0)")
    add_pool_options(p)
    add_llm_options(p, samples=False)

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
        help="with an LLM: also each instruction removed, no instructions, no definitions, other "
        "k (leave-one-out), and llmas's cumulative templates imported for the task "
        "(prompt import-llmas; they need --examples)",
    )
    add_prompt_options(p, task=False)
    add_pool_options(p)
    add_llm_options(p)
