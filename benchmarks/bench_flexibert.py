"""LPZero figures on FlexiBERT (NAS-Bench-BERT, 500 encoders against GLUE; CPU): per-architecture
proxy time, the classic proxies' rank correlations, a GP search and the found proxy on all 500.

1. The first --sample architectures are built, seeded, and their proxy inputs and classic
   proxies computed on the fixed masked batch, each timed; the classic proxies' Spearman rho
   and Kendall tau against GLUE, and the rho between each and the reference code's score of
   the same proxy (BERT_results_activation_lpzero.csv; that code built every network with
   hidden size 256 and FFN width 1,024, so --reference-sizes builds them so for this part).
2. A GP search (--population x --iterations, seeded) on --gp-sample architectures drawn with
   --seed, with the input cache; its time and best formula.
3. The found formula (or --expr) on all 500, inputs computed one network at a time, beside
   the parameter count's rho and tau on the same 500.

By default the search's candidates average their per-layer values over a network's layers, as
LPZero does; ``--over-layers sum`` makes them ``layersum`` expressions (the depth, GLUE's main
factor here, is invisible to a mean).

    python benchmarks/bench_flexibert.py --quick
    python benchmarks/bench_flexibert.py --sample 100 --reference-sizes --gp-sample 0
    python benchmarks/bench_flexibert.py --sample 0 --gp-sample 100 --iterations 1000 --seed 1
    python benchmarks/bench_flexibert.py --sample 0 --gp-sample 60 --iterations 300 --seed 2 \
        --over-layers sum
    python benchmarks/bench_flexibert.py --sample 0 --gp-sample 0 --expr "mul(...)"
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nasstudio.lpzero.benchmarks import read_flexibert
from nasstudio.lpzero.expr import OVER_LAYERS, parse
from nasstudio.lpzero.flexibert import (
    count_parameters,
    flexibert_classic,
    flexibert_config,
    flexibert_inputs,
)
from nasstudio.lpzero.inputs import InputCache
from nasstudio.lpzero.search import GPSettings, ProxyEvaluator, gp_search, rank_correlations

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "lpzero" / "flexibert"
# Our proxy name -> the reference CSV's column for the same proxy (where it has one).
REFERENCE_COLUMNS = {
    "num_parameters": "Number of Parameters",
    "snip": "Synaptic Saliency",
    "head_confidence": "Head Confidence",
    "attention_confidence": "Head Softmax Confidence",
}


def classic_figures(archs, reference: dict[int, dict[str, str]], reference_sizes: bool) -> None:
    values: dict[str, list[float]] = {}
    seconds: dict[str, list[float]] = {"inputs": [], "classic": []}
    for number, arch in enumerate(archs, start=1):
        start = time.perf_counter()
        flexibert_inputs(arch, reference_sizes=reference_sizes)
        seconds["inputs"].append(time.perf_counter() - start)
        start = time.perf_counter()
        for name, value in flexibert_classic(arch, reference_sizes=reference_sizes).items():
            values.setdefault(name, []).append(value)
        seconds["classic"].append(time.perf_counter() - start)
        if number % 50 == 0:
            print(f"  {number}/{len(archs)} architectures", flush=True)
    truth = [arch.ground_truth for arch in archs]
    print(f"\n{'proxy':24} {'rho':>7} {'tau':>7} {'rho ref':>8}")
    for name, proxy in values.items():
        rho, tau = rank_correlations(proxy, truth)
        ref_rho = float("nan")
        column = REFERENCE_COLUMNS.get(name)
        if column and all(arch.arch_id in reference for arch in archs):
            theirs = [float(reference[arch.arch_id][column]) for arch in archs]
            ref_rho, _ = rank_correlations(proxy, theirs)
        print(f"{name:24} {rho:7.3f} {tau:7.3f} {ref_rho:8.3f}")
    for part, times in seconds.items():
        print(f"{part} per architecture: {statistics.fmean(times):.3f} s")


def gp_figures(archs, settings: GPSettings) -> str:
    cache = InputCache()
    networks = [partial(cache.get, arch.arch_id, partial(flexibert_inputs, arch)) for arch in archs]
    evaluator = ProxyEvaluator(networks, [arch.ground_truth for arch in archs])
    start = time.perf_counter()
    for network in networks:
        network()
    print(f"inputs of {len(archs)} networks: {time.perf_counter() - start:.0f} s", flush=True)
    start = time.perf_counter()
    for step in gp_search(evaluator, settings):
        if step.best_values is not None:
            print(
                f"  iteration {step.index}: |rho| {step.best_fitness:.3f} "
                f"(rho {step.best_rho:+.3f}, tau {step.best_tau:+.3f}) {step.best}",
                flush=True,
            )
    print(
        f"GP search: {time.perf_counter() - start:.0f} s, {evaluator.misses} candidates scored, "
        f"{evaluator.hits} fitness cache hits; best rho {step.best_rho:+.3f}, "
        f"tau {step.best_tau:+.3f}: {step.best}"
    )
    return step.best


def all_figures(formula: str, archs) -> None:
    """The formula and the parameter count on every architecture; the inputs of all 500 do
    not fit in memory, so each network's are computed, used and dropped."""
    start = time.perf_counter()
    networks = [partial(flexibert_inputs, arch) for arch in archs]
    truth = [arch.ground_truth for arch in archs]
    score = ProxyEvaluator(networks, truth, max_failures=len(archs)).score(parse(formula))
    elapsed = time.perf_counter() - start
    params = [count_parameters(flexibert_config(arch)) for arch in archs]
    rho, tau = rank_correlations(params, truth)
    print(f"num_parameters on all {len(archs)}: rho {rho:+.3f}, tau {tau:+.3f}")
    if score.rho is None:
        print(f"{formula} on all {len(archs)}: no rank correlation ({score.rule or 'NaN'})")
        return
    print(
        f"{formula} on all {len(archs)}: rho {score.rho:+.3f}, tau {score.tau:+.3f} "
        f"({elapsed:.0f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmark", type=Path, default=DATA / "BERT_benchmark.json")
    parser.add_argument(
        "--reference", type=Path, default=DATA / "BERT_results_activation_lpzero.csv"
    )
    parser.add_argument("--sample", type=int, default=100, help="architectures for the proxies")
    parser.add_argument("--reference-sizes", action="store_true")
    parser.add_argument("--gp-sample", type=int, default=100, help="0 skips the search")
    parser.add_argument("--population", type=int, default=80)
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--all", type=int, default=500, help="architectures; 0 skips it")
    parser.add_argument("--expr", help="evaluate this formula on --all instead of searching")
    parser.add_argument("--over-layers", choices=OVER_LAYERS, default="mean")
    parser.add_argument("--quick", action="store_true", help="a smoke run of every part")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.quick:
        args.sample, args.gp_sample, args.all = 3, 8, 12
        args.population, args.iterations = 8, 20
    torch.set_num_threads(args.threads)
    archs = read_flexibert(args.benchmark)
    reference = {}
    if args.reference.exists():
        with args.reference.open() as rows:
            reference = {int(row["ID"]): row for row in csv.DictReader(rows)}
    if args.sample:
        print(f"classic proxies on the first {args.sample} architectures")
        classic_figures(archs[: args.sample], reference, args.reference_sizes)
    search_and_evaluate(args, archs, args.expr)


def search_and_evaluate(args, archs, formula: str | None) -> None:
    if not formula and args.gp_sample:
        sample = random.Random(args.seed).sample(archs, args.gp_sample)
        settings = GPSettings(
            args.population, args.iterations, seed=args.seed, over_layers=args.over_layers
        )
        print(f"\nGP search on {args.gp_sample} architectures (seed {args.seed})")
        formula = gp_figures(sample, settings)
    if formula and args.all:
        all_figures(formula, archs[: args.all])


if __name__ == "__main__":
    main()
