"""LPZero figures on the LTS GPT-2 benchmark (CPU): per-architecture proxy time, the rank
correlation of the classic proxies with -valid_ppl and with LPZero's reference scores, and the
GP search time with and without the per-network input cache.

1. Every architecture of the archs file (or the first --sample) is built, seeded, and its
   proxy inputs and the classic proxies are computed on the fixed minibatch; the time of each
   is recorded per architecture.
2. Spearman rho and Kendall tau of each classic proxy against -valid_ppl, and Spearman rho
   against the reference score of the same proxy where the reference has one.
3. A GP search (--population x --iterations, seeded) on the first --gp-sample architectures,
   once with the input cache and once recomputing every network's inputs for each candidate.

    python benchmarks/bench_lpzero.py                       # all 200, gradient proxies
    python benchmarks/bench_lpzero.py --sample 20 --proxies all
    python benchmarks/bench_lpzero.py --sample 0 --gp-sample 10 --iterations 50
    python benchmarks/bench_lpzero.py --sample 0 --gp-sample 50 --iterations 1000 --cached-only
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
    print(
        f"{'inputs (first 20 archs)':30} {'':>7} {'':>7} {'':>8} "
        f"{statistics.fmean(seconds['inputs']):7.3f}"
    )


def gp_figures(archs, settings: GPSettings, minibatch: Minibatch, uncached: bool) -> str:
    """Runs the search (also without the input cache unless told not to); the best formula."""
    for cached in (True, False) if uncached else (True,):
        cache = InputCache(enabled=cached)
        evaluator = gpt2_evaluator(archs, cache, minibatch=minibatch)
        start = time.perf_counter()
        steps = list(gp_search(evaluator, settings))
        elapsed = time.perf_counter() - start
        best = steps[-1]
        label = "with input cache" if cached else "without input cache"
        print(
            f"GP {label}: {elapsed:.1f} s, {cache.computed} input passes, "
            f"{evaluator.misses} candidates scored, {evaluator.hits} cache hits; "
            f"best rho {best.best_fitness:.3f}: {best.best}"
        )
    return best.best


def held_out_figures(formula: str, archs, minibatch: Minibatch) -> None:
    """The found proxy on architectures the search never saw, inputs computed one at a time."""
    expression = parse(formula)
    start = time.perf_counter()
    evaluator = gpt2_evaluator(archs, InputCache(enabled=False), minibatch=minibatch)
    score = evaluator.score(expression)
    if score.fitness is None:
        print(f"held out ({len(archs)}): no rank correlation ({score.rule or 'NaN'})")
        return
    print(
        f"held out ({len(score.values)} architectures): rho {score.fitness:.3f}, "
        f"tau {score.tau:.3f} "
        f"({time.perf_counter() - start:.0f} s)"
    )


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
    parser.add_argument("--gp-sample", type=int, default=10)
    parser.add_argument("--population", type=int, default=20)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--held-out", action="store_true", help="evaluate the best proxy on the other archs"
    )
    parser.add_argument(
        "--cached-only", action="store_true", help="skip the search without the input cache"
    )
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    archs = read_gpt2_archs(args.archs)
    reference = read_proxy_scores(args.reference) if args.reference.exists() else {}
    minibatch = Minibatch()
    names = list(CLASSIC_PROXIES) if args.proxies == "all" else args.proxies.split(",")
    if args.sample:
        print(
            f"classic proxies on {min(args.sample, len(archs))} architectures "
            f"(batch {minibatch.batch_size} x {minibatch.length} tokens, 1 thread)"
        )
        classic_figures(archs[: args.sample], names, minibatch, reference)
    if args.gp_sample:
        settings = GPSettings(
            population=args.population, iterations=args.iterations, seed=args.seed
        )
        print(
            f"\nGP search: population {settings.population}, {settings.iterations} iterations, "
            f"seed {settings.seed}, {args.gp_sample} architectures"
        )
        best = gp_figures(archs[: args.gp_sample], settings, minibatch, not args.cached_only)
        if args.held_out:
            held_out_figures(best, archs[args.gp_sample :], minibatch)


if __name__ == "__main__":
    main()
