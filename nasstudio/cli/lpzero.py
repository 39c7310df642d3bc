"""LPZero zero-cost proxies: search one by genetic programming (as a job), score a formula or
the classic proxies on a benchmark, store a formula as a predictor and list the stored ones.

A benchmark is ``gpt2-wt103`` or ``flexibert`` (read from the LPZero data folder: ``--data``
or ``$NASSTUDIO_LPZERO_DATA``), ``--archs FILE`` (an archs file of the same format) or
``--task T`` (the project's architectures of task T with a measured validation BLEU).
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from nasstudio.cli.common import (
    MAX_COUNT,
    CliError,
    open_from_args,
    real_number,
    run_job,
    whole_number,
)
from nasstudio.store.importers import counted

# torch loads with nasstudio.lpzero: it is imported inside the commands.
_BENCHMARKS = ("gpt2-wt103", "flexibert")
PROBABILITY = real_number(0.0, 1.0)


def add_lpzero_commands(
    add, common: argparse.ArgumentParser, in_process: argparse.ArgumentParser
) -> None:
    """Register ``lpzero search|eval|proxies|save|list``: ``common`` carries the project and
    execution options (search runs as a job), ``in_process`` the project option alone."""
    p = add("lpzero", None, "zero-cost proxies: search, score and store them", jobs=False)
    actions = p.add_subparsers(dest="lpzero_command", metavar="ACTION", required=True)

    search = actions.add_parser(
        "search",
        parents=[common],
        help="search a proxy by genetic programming on a benchmark (a job)",
        description="LPZero's genetic programming over proxy expressions with rule-based "
        "pruning; fitness is |Spearman rho| against the benchmark's ground truth on the "
        "sampled architectures. Every iteration is recorded as it is done (Ctrl+C keeps them).",
    )
    search.set_defaults(handler=cmd_search)
    _add_benchmark_options(search)
    gp = search.add_argument_group("genetic programming (defaults: the paper's)")
    gp.add_argument("--population", type=whole_number(MAX_COUNT, 2), default=80, metavar="N")
    gp.add_argument("--iterations", type=whole_number(MAX_COUNT), default=1000, metavar="N")
    gp.add_argument(
        "--chain-length", type=whole_number(8), default=2, metavar="N", help="unary ops"
    )
    gp.add_argument("--crossover-p", type=PROBABILITY, default=0.5, metavar="P")
    gp.add_argument("--mutation-p", type=PROBABILITY, default=0.5, metavar="P")
    gp.add_argument("--seed", type=int, default=0, metavar="N", help="also draws the sample")
    gp.add_argument(
        "--over-layers",
        choices=("mean", "sum"),  # expr.OVER_LAYERS, not imported here: it loads torch
        default="mean",
        help="average each candidate's per-layer values (LPZero) or sum them (layersum: sees "
        "depth)",
    )
    search.add_argument(
        "--no-classic", action="store_true", help="skip the classic proxies' rho and tau"
    )
    search.add_argument("--save-as", metavar="NAME", help="store the best proxy under NAME")
    search.add_argument("--json", action="store_true", help="machine-readable output")

    evaluate = actions.add_parser(
        "eval",
        parents=[in_process],
        help="Spearman rho and Kendall tau of a proxy formula on a benchmark",
    )
    evaluate.set_defaults(handler=cmd_eval)
    evaluate.add_argument("--expr", required=True, metavar="FORMULA", help="e.g. mul(act, grad)")
    _add_benchmark_options(evaluate)
    evaluate.add_argument("--seed", type=int, default=0, metavar="N", help="draws the sample")
    evaluate.add_argument("--json", action="store_true", help="machine-readable output")

    proxies = actions.add_parser(
        "proxies",
        parents=[in_process],
        help="Spearman rho and Kendall tau of the classic proxies on a benchmark",
    )
    proxies.set_defaults(handler=cmd_proxies)
    _add_benchmark_options(proxies)
    proxies.add_argument("--seed", type=int, default=0, metavar="N", help="draws the sample")
    proxies.add_argument("--json", action="store_true", help="machine-readable output")

    save = actions.add_parser(
        "save",
        parents=[in_process],
        help="store a proxy formula as a predictor (search run --predictor proxy:NAME)",
        description="Score the formula on the benchmark and store it in the project with the "
        "sign that makes higher better, for use as a predictor.",
    )
    save.set_defaults(handler=cmd_save)
    save.add_argument("--expr", required=True, metavar="FORMULA")
    save.add_argument("--name", required=True, help="the name to store it under")
    _add_benchmark_options(save)
    save.add_argument("--seed", type=int, default=0, metavar="N", help="draws the sample")
    save.add_argument("--replace", action="store_true", help="replace a proxy of that name")

    listing = actions.add_parser("list", parents=[in_process], help="the stored proxies")
    listing.set_defaults(handler=cmd_list)
    listing.add_argument("--json", action="store_true", help="machine-readable output")


def _add_benchmark_options(parser: argparse.ArgumentParser) -> None:
    which = parser.add_argument_group("benchmark (one of)").add_mutually_exclusive_group()
    which.add_argument(
        "benchmark",
        nargs="?",
        metavar="BENCHMARK",
        help=f"{' or '.join(_BENCHMARKS)} (from the LPZero data folder)",
    )
    which.add_argument("--benchmark", dest="named", metavar="NAME", help="the same, as an option")
    which.add_argument(
        "--archs",
        metavar="FILE",
        help="an LTS GPT-2 archs file (JSON lines) or a FlexiBERT benchmark (.json)",
    )
    which.add_argument(
        "--task", help="the project's architectures of a task with a measured valid BLEU"
    )
    parser.add_argument(
        "--data",
        metavar="DIR",
        help="the LPZero data folder (holding gpt2_wt103/, flexibert/); "
        "default $NASSTUDIO_LPZERO_DATA",
    )
    parser.add_argument(
        "--sample",
        type=whole_number(MAX_COUNT, 2),
        metavar="N",
        help="N architectures (default all)",
    )


def _benchmark(args: argparse.Namespace) -> str:
    """The benchmark as ``open_suite`` takes it."""
    if args.task:
        return f"task:{args.task}"
    chosen = args.archs or args.named or args.benchmark
    if not chosen:
        raise CliError(f"say which benchmark: {', '.join(_BENCHMARKS)}, --archs FILE or --task T")
    return chosen


def _suite(args: argparse.Namespace) -> Any:
    from nasstudio.lpzero.suites import open_suite

    project = open_from_args(args) if args.task else None
    return open_suite(
        _benchmark(args), project=project, sample=args.sample, seed=args.seed, data_dir=args.data
    )


def _expression(text: str) -> Any:
    from nasstudio.lpzero.expr import ExpressionError, parse

    try:
        return parse(text)
    except ExpressionError as error:
        raise CliError(f"--expr: {error}") from None


def _number(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


def _shown(value: float | None) -> str:
    return "n/a" if _number(value) is None else f"{value:+.3f}"


def cmd_search(args: argparse.Namespace) -> int:
    from nasstudio.lpzero.jobs import LPZeroSpec, lpzero_search_job
    from nasstudio.lpzero.search import GPSettings
    from nasstudio.lpzero.suites import open_suite

    project = open_from_args(args)
    benchmark = _benchmark(args)
    settings = GPSettings(
        args.population,
        args.iterations,
        args.chain_length,
        args.crossover_p,
        args.mutation_p,
        args.seed,
        args.over_layers,
    )
    spec = LPZeroSpec(
        benchmark, args.sample, settings, not args.no_classic, data_dir=args.data or ""
    )
    open_suite(  # a bad benchmark or sample is refused here, before a job is recorded
        benchmark, project=project, sample=args.sample, seed=args.seed, data_dir=args.data
    )
    if args.save_as:
        _check_free(project, args.save_as)
    result = run_job(
        project, "lpzero", f"LPZero search on {benchmark}", lpzero_search_job, spec=spec.as_params()
    )
    if result is None:
        return 1
    (sample,) = project.lpzero_samples(result["job_id"])
    if args.save_as:
        _store(project, args.save_as, result["best"], benchmark, result["rho"], result["tau"])
    if args.json:
        classic = {
            k: {"rho": _number(r), "tau": _number(t)} for k, (r, t) in sample.classic.items()
        }
        print(json.dumps({**result, "n": len(sample.arch_ids), "classic": classic}, indent=1))
        return 0
    print(
        f"LPZero search #{result['job_id']} on {benchmark} ({len(sample.arch_ids)} architectures "
        f"against {sample.truth_label}), seed {args.seed}: "
        f"{counted(result['iterations'], 'iteration')} "
        f"in {result['seconds']:.1f} s"
    )
    print(f"best: {result['best']}")
    print(f"  Spearman rho {_shown(result['rho'])}  Kendall tau {_shown(result['tau'])}")
    if result["sign"] < 0:
        print("  (it ranks in reverse: as a predictor its values are negated)")
    if sample.classic:
        _print_correlations("classic proxies on the same architectures", sample.classic)
    if args.save_as:
        print(f"stored as proxy '{args.save_as}' (search run --predictor proxy:{args.save_as})")
    return 0


def _print_correlations(title: str, rows: dict[str, tuple[float, float]]) -> None:
    print(f"{title}:")
    print(f"  {'proxy':<28} {'rho':>7} {'tau':>7}")
    for name, (rho, tau) in rows.items():
        print(f"  {name:<28} {_shown(rho):>7} {_shown(tau):>7}")


def cmd_eval(args: argparse.Namespace) -> int:
    expression = _expression(args.expr)
    suite = _suite(args)
    score = suite.score(expression)
    failed = sum(not math.isfinite(v) for v in score.values)
    row = {
        "benchmark": suite.name,
        "formula": str(expression),
        "n": len(suite),
        "failed": failed,
        "truth": suite.truth_label,
        "rho": _number(score.rho),
        "tau": _number(score.tau),
        "rejected_by": score.rule,
        "values": dict(zip(suite.arch_ids, map(_number, score.values), strict=False)),
    }
    if args.json:
        print(json.dumps(row, indent=1))
        return 0
    print(f"{expression} on {suite.name} ({len(suite)} architectures against {suite.truth_label})")
    if score.rule:
        print(f"  no ranking: {score.rule}")
        return 1
    print(f"  Spearman rho {_shown(score.rho)}  Kendall tau {_shown(score.tau)}")
    if failed:
        print(f"  (it failed on {failed} of them, left out)")
    return 0


def cmd_proxies(args: argparse.Namespace) -> int:
    from nasstudio.lpzero.suites import classic_correlations

    suite = _suite(args)
    rows = classic_correlations(suite)
    if args.json:
        print(
            json.dumps(
                {
                    "benchmark": suite.name,
                    "n": len(suite),
                    "truth": suite.truth_label,
                    "proxies": {
                        k: {"rho": _number(r), "tau": _number(t)} for k, (r, t) in rows.items()
                    },
                },
                indent=1,
            )
        )
        return 0
    _print_correlations(
        f"classic proxies on {suite.name} ({len(suite)} architectures against {suite.truth_label})",
        rows,
    )
    return 0


def cmd_save(args: argparse.Namespace) -> int:
    expression = _expression(args.expr)
    project = open_from_args(args)
    if not args.replace:
        _check_free(project, args.name)
    suite = _suite(args)
    score = suite.score(expression)
    if score.rule:
        raise CliError(f"{expression} does not rank {suite.name}: {score.rule}")
    _store(project, args.name, str(expression), suite.name, score.rho, score.tau, args.replace)
    sign = "" if score.rho >= 0 else ", negated"
    print(
        f"stored proxy '{args.name}': {expression}{sign} (rho {abs(score.rho):.3f}, tau "
        f"{abs(score.tau):.3f} on {suite.name}); search run --predictor proxy:{args.name}"
    )
    return 0


def _check_free(project: Any, name: str) -> None:
    if any(p.name == name for p in project.proxies()):
        raise CliError(f"a proxy named '{name}' is already stored (lpzero list; --replace)")


def _store(
    project: Any,
    name: str,
    formula: str,
    benchmark: str,
    rho: float,
    tau: float,
    replace: bool = False,
) -> None:
    """Store with the sign that makes higher better; rho and tau are then the signed values'."""
    from nasstudio.store import StoredProxy

    sign = -1 if rho < 0 else 1
    project.add_proxy(
        StoredProxy(name, formula, sign, benchmark, sign * rho, sign * tau), replace=replace
    )


def cmd_list(args: argparse.Namespace) -> int:
    proxies = open_from_args(args).proxies()
    if args.json:
        print(json.dumps([_row(p) for p in proxies], indent=1))
        return 0
    if not proxies:
        print("(no stored proxies; store one with 'nasstudio lpzero save' or search --save-as)")
    for p in proxies:
        print(
            f"{p.name:<16} {'-' if p.sign < 0 else '+'}{p.formula:<44} rho {_shown(p.rho)} "
            f"tau {_shown(p.tau)}  on {p.benchmark}"
        )
    return 0


def _row(proxy: Any) -> dict[str, Any]:
    return {
        "name": proxy.name,
        "formula": proxy.formula,
        "sign": proxy.sign,
        "benchmark": proxy.benchmark,
        "rho": _number(proxy.rho),
        "tau": _number(proxy.tau),
    }
