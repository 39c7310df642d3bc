"""Search figures on this machine: HS-NAS against a supernet-only search, the distilled
predictor's throughput, and the latency predictor on each of HAT's latency tables.

1. A small supernet is trained on the demo corpus (cached between runs under --cache).
2. A distilled predictor is fitted with llmas's regressor (5,000 steps x 3 seeds) on the
   supernet's own validation loss of random architectures: the supernet stands in for the LLM
   as the labeller, so the run needs no endpoint and the two predictors rank by one quantity.
   Its Kendall tau against the supernet on 100 other random architectures says how far the
   first half of HS-NAS can be trusted.
3. The same evolutionary search (same settings and seed) runs twice through ``search_job``:
   ranked by the supernet alone, and as HS-NAS (the distilled predictor for the first half of
   the iterations, the supernet for the rest). Wall time, time inside each predictor, their
   ratio (the paper reports about 0.5x), and the supernet's validation loss of each one's best
   architecture.
4. The distilled predictor's throughput on batches of 1, 64 and 1,024 architectures.
5. HAT's latency MLP on each HAT CSV in ../shared/data/hat/latency (5,000 steps, seeded
   held-out 10 %): MAPE and Kendall's tau.

    python benchmarks/bench_search.py            # llmas's HS-NAS settings (30 x 125)
    python benchmarks/bench_search.py --quick    # a few minutes: smaller everything
    python benchmarks/bench_search.py --iterations 10 --population 40   # in between
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from scipy.stats import kendalltau

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nasstudio.jobs import JobHandle
from nasstudio.jobs.records import SearchGeneration, records_in, write_records
from nasstudio.predict.distill import DistilledPredictor, FitSettings, distilled_path
from nasstudio.predict.latency import files_source, fit_on
from nasstudio.predict.search_jobs import PredictorSpec, SearchSpec, search_job
from nasstudio.predict.supernet import SupernetPredictor
from nasstudio.search.evolution import EvolutionSettings
from nasstudio.space import get_space
from nasstudio.store import KNOWN_TASKS, Project
from nasstudio.train.supernet import supernet_train_job

TASK = "demo"
DEMO = {"kind": "demo"}
LATENCY_TABLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "hat" / "latency"
DISTILLED_NAME = "bench-supernet-labels"


@dataclass(frozen=True)
class Budget:
    supernet_steps: int
    labelled: int  # random architectures the supernet labels for the distilled predictor
    fit_steps: int
    latency_steps: int
    search: EvolutionSettings
    held_out: int = 100  # random architectures on which the distilled predictor is checked


FULL = Budget(300, 500, 5000, 5000, EvolutionSettings())
QUICK = Budget(60, 120, 1000, 1000, EvolutionSettings(6, 24, 6, 9, 0.3, 9), held_out=30)


def scaled_search(iterations: int, population: int) -> EvolutionSettings:
    """llmas's settings with another population, in llmas's proportions (125: 25 parents, 50
    mutations, 50 crossovers)."""
    parents = max(2, population // 5)
    return EvolutionSettings(iterations, population, parents, 2 * parents, 0.3, 2 * parents)


# Small batches keep a supernet step short on a CPU; one evaluation and checkpoint, at the end.
SUPERNET_CONFIG = {"max_tokens": 1024, "warmup_steps": 20, "eval_sentences": 8}


_job_ids = itertools.count(1)


def _ignore(item: Any) -> None:
    pass


def drain(
    project: Project, job: Generator[Any, None, Any], seen: Callable[[Any], None] = _ignore
) -> Any:
    """Run a job function's generator to its end, recording what it yields as the runner
    would (under a job id of its own), each item also to ``seen``; its return value."""
    job_id = next(_job_ids)
    while True:
        try:
            item = next(job)
        except StopIteration as stop:
            return stop.value
        write_records(project, job_id, records_in(item))
        seen(item)


def handle() -> JobHandle:
    return JobHandle(1, lambda message: None)


def train_supernet(project: Project, cache: Path, steps: int) -> Path:
    checkpoint = cache / f"supernet-demo-{steps}.pt"
    if checkpoint.exists():
        print(f"supernet: {checkpoint} (cached)")
        return checkpoint
    started = time.perf_counter()
    config = {**SUPERNET_CONFIG, "max_steps": steps, "eval_every": steps, "checkpoint_every": steps}
    result = drain(
        project,
        supernet_train_job(
            handle(),
            project,
            TASK,
            DEMO,
            config,
            checkpoint=str(checkpoint),
            cache_dir=str(cache),
        ),
    )
    print(
        f"supernet: {steps} steps on the demo corpus in {time.perf_counter() - started:.0f} s, "
        f"valid loss of its largest architecture {result['best_valid_loss']}"
    )
    return checkpoint


def fit_distilled(
    project: Project, supernet: SupernetPredictor, budget: Budget
) -> DistilledPredictor:
    space = get_space(project.task(TASK).space)
    archs = space.sample_many(budget.labelled, seed=123)
    started = time.perf_counter()
    losses = [r.value for r in supernet.predict(archs)]
    labelled = time.perf_counter() - started
    started = time.perf_counter()
    predictor = DistilledPredictor.fit(
        archs,
        losses,
        space,
        DISTILLED_NAME,
        settings=FitSettings(steps=budget.fit_steps, start_at_mean=True),
        provenance={"labels": f"{supernet.name} valid loss of {len(archs)} random archs"},
        metric=supernet.metric,
    )
    fitted = time.perf_counter() - started
    predictor.save(distilled_path(project.path, DISTILLED_NAME))
    print(
        f"distilled predictor: {len(archs)} random architectures labelled by the supernet "
        f"(valid loss) in {labelled:.0f} s ({len(archs) / labelled:.1f} archs/s), fitted "
        f"({budget.fit_steps} steps x 3 seeds) in {fitted:.0f} s"
    )
    held_out_agreement(predictor, supernet, space.sample_many(budget.held_out, seed=456))
    return predictor


def held_out_agreement(
    predictor: DistilledPredictor, supernet: SupernetPredictor, archs: list
) -> None:
    """How well the distilled predictor ranks architectures it was not fitted on, against the
    supernet it imitates: what HS-NAS's first half can be trusted with."""
    if len(archs) < 2:
        return
    truth = [r.value for r in supernet.predict(archs)]
    guess = [r.value for r in predictor.predict(archs)]
    tau = kendalltau(guess, truth).statistic
    print(f"distilled vs supernet on {len(archs)} held-out random architectures: tau {tau:.3f}")


def run_search(project: Project, spec: SearchSpec) -> tuple[float, dict[str, Any], dict[str, int]]:
    """Wall time, the job's summary, and how many distinct architectures each predictor
    ranked (the cost that does not depend on how busy the machine is)."""
    ranked: dict[str, set[str]] = {}

    def count(item: Any) -> None:
        if isinstance(item, SearchGeneration):
            ranked.setdefault(item.scorer, set()).update(m.arch.id for m in item.members)

    started = time.perf_counter()
    summary = drain(project, search_job(handle(), project, TASK, spec.as_params()), count)
    return time.perf_counter() - started, summary, {k: len(v) for k, v in ranked.items()}


def bench_search(
    project: Project, checkpoint: Path, cache: Path, supernet: SupernetPredictor, budget: Budget
) -> None:
    settings = budget.search
    supernet_spec = PredictorSpec(
        "supernet", str(checkpoint), {"corpus": DEMO, "cache_dir": str(cache)}
    )
    distilled_spec = PredictorSpec("distilled", DISTILLED_NAME)
    switch = settings.iterations // 2
    runs = {
        "supernet only": SearchSpec((supernet_spec,), settings=settings),
        f"HS-NAS (switch at {switch})": SearchSpec(
            (distilled_spec, supernet_spec), switch_at=switch, settings=settings
        ),
    }
    print(
        f"\nsearch: {settings.iterations} iterations, population {settings.population}, "
        f"{settings.parents} parents, {settings.mutations} mutations (p {settings.mutation_prob})"
        f", {settings.crossovers} crossovers, seed {settings.seed}, no constraint"
    )
    walls, supernet_ranked = {}, {}
    for name, spec in runs.items():
        wall, summary, ranked = run_search(project, spec)
        walls[name] = wall
        supernet_ranked[name] = ranked.get(supernet_spec_label(summary), 0)
        (best,) = project.task_architectures(TASK, [summary["best_id"]])
        (score,) = supernet.predict([best])
        seconds = ", ".join(
            f"{k} {v:.1f} s for {ranked.get(k, 0)} archs" for k, v in summary["seconds"].items()
        )
        print(
            f"  {name:<24} wall {wall:7.1f} s; in predictors: {seconds}; best {best.id}: "
            f"supernet valid loss {score.value:.4f}"
        )
    (baseline, hs_nas) = walls.values()
    (baseline_ranked, hs_nas_ranked) = supernet_ranked.values()
    print(
        f"  HS-NAS / supernet only: wall time {hs_nas / baseline:.2f}x, architectures the "
        f"supernet scored {hs_nas_ranked / baseline_ranked:.2f}x (paper: about 0.5x)"
    )


def supernet_spec_label(summary: dict[str, Any]) -> str:
    """The supernet's label among the summary's scorers."""
    return next(k for k in summary["seconds"] if k.startswith("supernet"))


def bench_throughput(predictor: DistilledPredictor, space_name: str) -> None:
    archs = get_space(space_name).sample_many(1024, seed=7)
    print("\ndistilled predictor throughput (3-member ensemble, one torch thread):")
    for batch in (1, 64, 1024):
        chunk, done = archs[:batch], 0
        started = time.perf_counter()
        while time.perf_counter() - started < 1.0:
            predictor.predict_values(chunk)
            done += batch
        rate = done / (time.perf_counter() - started)
        print(f"  batch {batch:>5}: {rate:10,.0f} architectures/s")


def bench_latency(steps: int) -> None:
    tables = sorted(LATENCY_TABLES.glob("*.csv"))
    if not tables:
        print(f"\nlatency predictor: no HAT CSV in {LATENCY_TABLES}; skipped")
        return
    print(f"\nlatency predictor, {steps} steps, seeded held-out 10 % (seed 0):")
    for table in tables:
        started = time.perf_counter()
        predictor = fit_on(table.stem, files_source([table]), seed=0, steps=steps)
        scores = predictor.held_out
        print(
            f"  {table.name:<40} MAPE {scores.mape:5.2f} %  tau {scores.tau:.3f}  "
            f"({scores.rows} rows, {time.perf_counter() - started:.0f} s)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller supernet, search, fits")
    parser.add_argument(
        "--cache",
        default=str(Path(tempfile.gettempdir()) / "nasstudio-bench-search"),
        help="folder for the demo corpus and the supernet checkpoint (kept between runs)",
    )
    parser.add_argument(
        "--skip-latency", action="store_true", help="leave out the latency predictors"
    )
    parser.add_argument("--iterations", type=int, help="search iterations (llmas: 30)")
    parser.add_argument(
        "--population", type=int, help="search population, in llmas's proportions (llmas: 125)"
    )
    parser.add_argument("--supernet-steps", type=int, help="supernet training steps")
    parser.add_argument("--labelled", type=int, help="architectures labelled for distillation")
    args = parser.parse_args()
    budget = QUICK if args.quick else FULL
    if args.iterations or args.population:
        search = scaled_search(
            args.iterations or budget.search.iterations,
            args.population or budget.search.population,
        )
        budget = replace(budget, search=search)
    if args.supernet_steps:
        budget = replace(budget, supernet_steps=args.supernet_steps)
    if args.labelled:
        budget = replace(budget, labelled=args.labelled)
    torch.set_num_threads(1)  # as in a worker process; more threads slow a busy 2-core machine
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder, Project(Path(folder) / "bench.nasproj") as p:
        p.ensure_task(KNOWN_TASKS[TASK])
        checkpoint = train_supernet(p, cache, budget.supernet_steps)
        supernet = SupernetPredictor.load(
            handle(), p, TASK, str(checkpoint), DEMO, cache_dir=str(cache), bleu_sentences=0
        )
        distilled = fit_distilled(p, supernet, budget)
        bench_search(p, checkpoint, cache, supernet, budget)
        bench_throughput(distilled, p.task(TASK).space)
    if not args.skip_latency:
        bench_latency(budget.latency_steps)


if __name__ == "__main__":
    main()
