"""LPZero figures on the LTS GPT-2 benchmark (CPU): per-architecture proxy time, the rank
correlation of the classic proxies with -valid_ppl and with LPZero's reference scores, the GP
search time with and without the per-network input cache, and the found proxy on all 200.

1. Every architecture of the archs file (or the first --sample) is built, seeded, and its
   proxy inputs and the classic proxies are computed on the fixed minibatch; the time of each
   is recorded per architecture.
2. Spearman rho and Kendall tau of each classic proxy against -valid_ppl, and Spearman rho
   against the reference score of the same proxy where the reference has one.
3. A short search on the first --cache-sample architectures, once with the input cache and
   once recomputing every network's inputs for each candidate, and the ratio of their times.
4. The GP search (--population x --iterations, seeded; fitness |rho|) on --gp-sample
   architectures evenly spaced through the file, with the input cache.
5. The best formula (or --expr) on the first --held-out architectures (all 200 by default),
   one network at a time, and on those the search never saw.

    python benchmarks/bench_lpzero.py --quick               # a smoke run of every part
    python benchmarks/bench_lpzero.py --sample 0 --cache-sample 0 --seed 6   # the search
    python benchmarks/bench_lpzero.py --sample 20 --proxies all --gp-sample 0 --held-out 0
    python benchmarks/bench_lpzero.py --sample 0 --cache-sample 0 --expr "mul(...)"
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nasstudio.lpzero.benchmarks import read_gpt2_archs, read_proxy_scores
from nasstudio.lpzero.expr import parse
from nasstudio.lpzero.gpt2 import build_gpt2
from nasstudio.lpzero.inputs import InputCache, Minibatch, network_inputs
from nasstudio.lpzero.proxies import CLASSIC_PROXIES, gradient_proxies
from nasstudio.lpzero.search import GPSettings, gp_search, gpt2_evaluator, rank_correlations

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "lpzero" / "gpt2_wt103"
# Our proxy name -> the reference file's name for the same proxy.
REFERENCE_NAMES = {
    "num_parameters": "num_parameters",
    "snip": "snip",
    "grad_norm": "grad_norm",
    "synflow": "synflow",
    "logsynflow": "logsynflow",
    "fisher": "fisher",
    "grasp": "grasp",
    "head_importance": "head_importance",
    "attention_confidence": "attention_confidence",
}
GRADIENT_SET = ("snip", "grad_norm", "head_importance")
# Architectures whose input pass is timed (the time per architecture is what matters).
INPUT_TIMINGS = 20


def classic_figures(archs, names: list[str], minibatch: Minibatch, reference) -> None:
    values: dict[str, list[float]] = {name: [] for name in names}
    seconds: dict[str, list[float]] = {name: [] for name in [*names, "inputs"]}
    for number, arch in enumerate(archs, start=1):
        model = build_gpt2(arch.config)
        tokens = minibatch.tokens(arch.config.n_token)
        if number <= INPUT_TIMINGS:
            start = time.perf_counter()
            network_inputs(model, tokens)
            seconds["inputs"].append(time.perf_counter() - start)
        shared = {}
        if set(GRADIENT_SET) & set(names):
            start = time.perf_counter()
            shared = gradient_proxies(model, tokens)
            for name in GRADIENT_SET:
                seconds.setdefault(name, []).append(time.perf_counter() - start)
        for name in names:
            if name in shared:
                values[name].append(shared[name])
                continue
            start = time.perf_counter()
            values[name].append(CLASSIC_PROXIES[name](model, tokens))
            seconds[name].append(time.perf_counter() - start)
        if number % 20 == 0:
            print(f"  {number}/{len(archs)} architectures", flush=True)
    truth = [arch.ground_truth for arch in archs]
    print(f"\n{'proxy':30} {'rho':>7} {'tau':>7} {'rho ref':>8} {'s/arch':>7}")
    for name in names:
        rho, tau = rank_correlations(values[name], truth)
        ref_name = REFERENCE_NAMES.get(name)
        ref_rho = float("nan")
        if ref_name in reference:
            theirs = [reference[ref_name][arch.arch_id] for arch in archs]
            ref_rho, _ = rank_correlations(values[name], theirs)
        mean_s = statistics.fmean(seconds[name]) if seconds[name] else 0.0
        print(f"{name:30} {rho:7.3f} {tau:7.3f} {ref_rho:8.3f} {mean_s:7.3f}")
    timed = f"inputs (first {len(seconds['inputs'])} archs)"
    print(f"{timed:30} {'':>7} {'':>7} {'':>8} {statistics.fmean(seconds['inputs']):7.3f}")


def spread(archs, count: int):
    """``count`` architectures evenly spaced through the file (every 4th of 200 for 50)."""
    count = min(count, len(archs))
    return [archs[i * len(archs) // count] for i in range(count)]


def cache_figures(archs, settings: GPSettings, minibatch: Minibatch) -> None:
    """The same short search with the input cache and recomputing every network's inputs for
    each candidate; the ratio is what the cache saves."""
    seconds = {}
    for cached in (True, False):
        cache = InputCache(enabled=cached)
        evaluator = gpt2_evaluator(archs, cache, minibatch=minibatch)
        start = time.perf_counter()
        for _ in gp_search(evaluator, settings):
            pass
        seconds[cached] = time.perf_counter() - start
        label = "with input cache" if cached else "without input cache"
        print(
            f"GP {label}: {seconds[cached]:.1f} s, {cache.computed} input passes, "
            f"{evaluator.misses} candidates scored, {evaluator.hits} fitness cache hits"
        )
    print(f"input cache speed-up: {seconds[False] / seconds[True]:.1f}x")


def gp_figures(archs, settings: GPSettings, minibatch: Minibatch) -> str:
    """The search with the input cache; the best formula."""
    cache = InputCache()
    evaluator = gpt2_evaluator(archs, cache, minibatch=minibatch)
    start = time.perf_counter()
    for step in gp_search(evaluator, settings):
        if step.best_values is not None:
            print(
                f"  iteration {step.index}: |rho| {step.best_fitness:.3f} "
                f"(rho {step.best_rho:+.3f}, tau {step.best_tau:+.3f}) {step.best}",
                flush=True,
            )
    elapsed = time.perf_counter() - start
    print(
        f"GP search: {elapsed:.0f} s, {cache.computed} input passes, "
        f"{evaluator.misses} candidates scored, {evaluator.hits} fitness cache hits; "
        f"best rho {step.best_rho:+.3f}, tau {step.best_tau:+.3f}: {step.best}"
    )
    return step.best


def held_out_figures(formula: str, archs, searched, minibatch: Minibatch) -> None:
    """The found proxy on every architecture, inputs computed one network at a time (the
    inputs of all 200 do not fit in memory), and on those the search never saw."""
    seen = {arch.arch_id for arch in searched}
    start = time.perf_counter()
    evaluator = gpt2_evaluator(archs, InputCache(enabled=False), minibatch=minibatch)
    score = evaluator.score(parse(formula))
    elapsed = time.perf_counter() - start
    if score.rho is None:
        print(f"all {len(archs)}: no rank correlation ({score.rule or 'NaN'})")
        return
    print(
        f"all {len(archs)} architectures: rho {score.rho:+.3f}, tau {score.tau:+.3f} "
        f"({elapsed:.0f} s)"
    )
    unseen = [
        (value, arch.ground_truth)
        for value, arch in zip(score.values, archs, strict=True)
        if arch.arch_id not in seen
    ]
    if len(unseen) > 2:
        rho, tau = rank_correlations(*zip(*unseen, strict=True))
        print(f"the {len(unseen)} the search never saw: rho {rho:+.3f}, tau {tau:+.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=Path, default=DATA / "archs.jsonl")
    parser.add_argument("--reference", type=Path, default=DATA / "reference_proxy_scores.json")
    parser.add_argument("--sample", type=int, default=200, help="architectures for the proxies")
    parser.add_argument(
        "--proxies",
        default="num_parameters,num_parameters_nonembedding," + ",".join(GRADIENT_SET),
        help="comma-separated names, or 'all'",
    )
    parser.add_argument("--cache-sample", type=int, default=5, help="0 skips the cache figures")
    parser.add_argument("--gp-sample", type=int, default=50, help="0 skips the search")
    parser.add_argument("--population", type=int, default=80)
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--held-out", type=int, default=200, help="architectures; 0 skips it")
    parser.add_argument("--expr", help="evaluate this formula on --held-out instead of searching")
    parser.add_argument("--quick", action="store_true", help="a smoke run of every part")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.quick:
        args.sample, args.cache_sample, args.gp_sample, args.held_out = 2, 2, 4, 6
        args.population, args.iterations = 6, 10
    torch.set_num_threads(args.threads)
    archs = read_gpt2_archs(args.archs)
    reference = read_proxy_scores(args.reference) if args.reference.exists() else {}
    minibatch = Minibatch()
    names = list(CLASSIC_PROXIES) if args.proxies == "all" else args.proxies.split(",")
    if args.sample:
        print(
            f"classic proxies on {min(args.sample, len(archs))} architectures "
            f"(batch {minibatch.batch_size} x {minibatch.length} tokens, {args.threads} thread)"
        )
        classic_figures(archs[: args.sample], names, minibatch, reference)
    if args.cache_sample:
        short = GPSettings(
            population=min(8, args.population), iterations=min(10, args.iterations), seed=args.seed
        )
        print(
            f"\ninput cache: population {short.population}, {short.iterations} iterations, "
            f"{args.cache_sample} architectures"
        )
        cache_figures(archs[: args.cache_sample], short, minibatch)
    searched, best = [], args.expr
    if args.gp_sample and not best:
        searched = spread(archs, args.gp_sample)
        settings = GPSettings(
            population=args.population, iterations=args.iterations, seed=args.seed
        )
        print(
            f"\nGP search: population {settings.population}, {settings.iterations} iterations, "
            f"seed {settings.seed}, {len(searched)} architectures evenly spaced"
        )
        best = gp_figures(searched, settings, minibatch)
    if best and args.held_out:
        print(f"\n{best} against -valid_ppl")
        held_out_figures(best, archs[: args.held_out], searched, minibatch)


if __name__ == "__main__":
    main()
