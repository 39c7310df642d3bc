"""Scoring performance predictors with the llmas protocol of the LLM-PP paper.

A seedarchs folder holds, per seed and task, ``<seed>/<task>/train.jsonl`` (the demonstrations)
and ``test.jsonl`` (the architectures to predict). A predictor is scored on each seed's test
architectures against their measured ``valid_BLEU`` with the mean absolute error, Kendall's
tau-b and Spearman's rho (scipy.stats, which scikit-learn already brings), and reported as the
mean and population standard deviation over seeds. Tau-b is the variant that reproduces the
paper's baseline figures.

Stored predictors (such as the four supernet baselines that the llmas files carry) are scored
from the project; an LLM prompt is scored by ``llm_evaluate_job``, which predicts each seed's test
architectures with that seed's train architectures as the demonstrations.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import AsyncIterator, Generator, Mapping, Sequence
from contextlib import closing
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from nasstudio.jobs import JobHandle
from nasstudio.predict.llm.cache import ResponseCache
from nasstudio.predict.llm.client import LLMClient, LLMProfile, Usage
from nasstudio.predict.llm.job import (
    LLMPrediction,
    TaskArchitectures,
    predict_stream,
    stream_batches,
)
from nasstudio.predict.llm.prompt import Prompt, current_prompt, save_prompt
from nasstudio.space import parse_arch_info
from nasstudio.store import BLEU_VALID, Project
from nasstudio.store.importers import ImportFormatError, import_files

METRICS = ("mae", "kendall_tau", "spearman_rho")
METRIC_LABELS = {"mae": "MAE", "kendall_tau": "Kendall tau", "spearman_rho": "Spearman rho"}
SPLIT_FILES = ("train.jsonl", "test.jsonl")


@dataclass(frozen=True, slots=True)
class Split:
    """One seed's division of the architectures into demonstrations and test architectures."""

    seed: int
    train_ids: tuple[str, ...]
    test_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SeedArchs:
    """The splits of one task in a seedarchs folder."""

    task: str
    folder: str
    splits: tuple[Split, ...]


@dataclass(frozen=True, slots=True)
class Scores:
    n: int
    mae: float
    kendall_tau: float
    spearman_rho: float


@dataclass(frozen=True, slots=True)
class SplitResult:
    """A predictor's scores on one seed; ``missing`` lists test architectures it did not predict."""

    seed: int
    scores: Scores
    predictions: Mapping[str, float]
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class EvaluationResult:
    task: str
    predictor: str
    splits: tuple[SplitResult, ...]
    prompt_version: str | None = None
    usage: Usage | None = None
    prompt_name: str = ""

    def values(self, metric: str) -> list[float]:
        if metric not in METRICS:
            raise ValueError(f"unknown metric '{metric}'; known are {METRICS}")
        return [getattr(s.scores, metric) for s in self.splits]

    def mean(self, metric: str) -> float:
        return float(np.mean(self.values(metric)))

    def std(self, metric: str) -> float:
        """Population standard deviation over seeds."""
        return float(np.std(self.values(metric)))

    def describe(self, digits: int = 2) -> str:
        return "  ".join(
            f"{METRIC_LABELS[m]} {self.mean(m):.{digits}f} ({self.std(m):.{digits}f})"
            for m in METRICS
        )

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"task": self.task, "predictor": self.predictor}
        if self.prompt_version:
            out["prompt_version"] = self.prompt_version
            out["prompt_name"] = self.prompt_name
        for metric in METRICS:
            out[metric] = {
                "mean": _json_float(self.mean(metric)),
                "std": _json_float(self.std(metric)),
            }
        out["seeds"] = [
            {
                "seed": s.seed,
                "n": s.scores.n,
                "missing": list(s.missing),
                **{m: _json_float(getattr(s.scores, m)) for m in METRICS},
            }
            for s in self.splits
        ]
        if self.usage is not None:
            out["usage"] = asdict(self.usage)
        return out


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else value


def score(truth: Sequence[float], predicted: Sequence[float]) -> Scores:
    """MAE, Kendall's tau-b and Spearman's rho; NaN correlations for fewer than two points or
    constant values."""
    y, p = np.asarray(truth, dtype=float), np.asarray(predicted, dtype=float)
    if y.shape != p.shape:
        raise ValueError(f"{len(y)} true values but {len(p)} predictions")
    if len(y) == 0:
        return Scores(0, math.nan, math.nan, math.nan)
    mae = float(np.mean(np.abs(y - p)))
    if len(y) < 2:
        return Scores(1, mae, math.nan, math.nan)
    with warnings.catch_warnings():  # constant input: the correlation is NaN, said once here
        warnings.simplefilter("ignore")
        tau = float(stats.kendalltau(y, p).statistic)
        rho = float(stats.spearmanr(y, p).statistic)
    return Scores(len(y), mae, tau, rho)


# --- the seedarchs folder -----------------------------------------------------------------------


def seedarchs_tasks(folder: str | Path) -> list[str]:
    """Tasks that every seed of ``folder`` has both split files for."""
    seeds = _seed_dirs(Path(folder))
    tasks = [
        {t.name for t in seed.iterdir() if all((t / f).is_file() for f in SPLIT_FILES)}
        for seed in seeds
    ]
    return sorted(set.intersection(*tasks)) if tasks else []


def load_seedarchs(project: Project, folder: str | Path, task: str) -> SeedArchs:
    """Import ``folder``'s files of ``task`` into the project (re-importing changes nothing)
    and read its splits."""
    folder = Path(folder)
    seeds = _seed_dirs(folder)
    if not seeds:
        raise ImportFormatError(folder, None, "expected numbered seed folders (e.g. 123/)")
    paths = [seed / task / name for seed in seeds for name in SPLIT_FILES]
    absent = [p for p in paths if not p.is_file()]
    if absent:
        raise ImportFormatError(absent[0], None, f"missing: every seed needs {SPLIT_FILES}")
    import_files(project, paths, task=task)
    splits = tuple(
        Split(
            int(seed.name),
            _arch_ids(seed / task / "train.jsonl"),
            _arch_ids(seed / task / "test.jsonl"),
        )
        for seed in seeds
    )
    return SeedArchs(task, str(folder), splits)


def _seed_dirs(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise ImportFormatError(folder, None, "not a folder")
    return sorted(
        (p for p in folder.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name)
    )


def _arch_ids(path: Path) -> tuple[str, ...]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return tuple(
        parse_arch_info(json.loads(line)["scratch"]["arch_info"]).id
        for line in lines
        if line.strip()
    )


# --- scoring ------------------------------------------------------------------------------------


def evaluate_predictions(
    benchmark: SeedArchs,
    truth: Mapping[str, float],
    predictions: Mapping[int, Mapping[str, float]],
    predictor: str,
) -> EvaluationResult:
    """Score per-seed predictions (seed -> arch id -> value) against ``truth``."""
    results = []
    for split in benchmark.splits:
        predicted = predictions.get(split.seed, {})
        unknown = [i for i in split.test_ids if i not in truth]
        if unknown:
            raise KeyError(
                f"test architecture {unknown[0]} of seed {split.seed} has no {BLEU_VALID}"
            )
        scored = [i for i in split.test_ids if i in predicted]
        scores = score([truth[i] for i in scored], [predicted[i] for i in scored])
        missing = tuple(i for i in split.test_ids if i not in predicted)
        results.append(SplitResult(split.seed, scores, {i: predicted[i] for i in scored}, missing))
    return EvaluationResult(benchmark.task, predictor, tuple(results))


def stored_predictors(project: Project, task: str, metric: str = BLEU_VALID) -> list[str]:
    """Names of the predictors with stored ``metric`` predictions for ``task``."""
    prefix = f"pred:{metric}@"
    return [
        c[len(prefix) :] for c in project.value_columns(task)["predicted"] if c.startswith(prefix)
    ]


def evaluate_stored(
    project: Project, benchmark: SeedArchs, predictor: str, metric: str = BLEU_VALID
) -> EvaluationResult:
    """Score the latest stored predictions of ``predictor`` (the same for every seed)."""
    table = project.table(benchmark.task)
    column = f"pred:{metric}@{predictor}"
    if column not in table.columns:
        known = stored_predictors(project, benchmark.task, metric)
        raise KeyError(f"no predictor '{predictor}' for {benchmark.task}; stored are {known}")
    values = table[column].dropna().astype(float).to_dict()
    truth = TaskArchitectures.load(project, benchmark.task).bleu
    return evaluate_predictions(
        benchmark, truth, {s.seed: values for s in benchmark.splits}, predictor
    )


def llm_evaluate_job(
    handle: JobHandle,
    project: Project,
    benchmark: SeedArchs,
    profile: LLMProfile,
    prompt: Prompt | None = None,
    samples: int = 1,
    cache_path: str | Path | None = None,
    use_cache: bool = True,
    retry_base_delay: float = 1.0,
) -> Generator[SplitResult, None, EvaluationResult]:
    """Evaluate an LLM prompt: each seed's test architectures predicted with that seed's train
    architectures as demonstrations. Yields each seed's result as it completes. The predictions
    are not stored as project predictions (they differ by seed); the cache keeps the answers."""
    known = TaskArchitectures.load(project, benchmark.task)
    prompt = prompt or current_prompt(project, benchmark.task)
    version = save_prompt(project, prompt)
    cache = ResponseCache(cache_path) if use_cache else None
    client = LLMClient(profile, cache, handle.log, retry_base_delay=retry_base_delay)
    work = [
        (s.seed, known.queries(s.test_ids), known.demonstrations(s.train_ids))
        for s in benchmark.splits
    ]
    total = sum(len(queries) for _, queries, _ in work)
    handle.log(
        f"evaluating prompt {version} ({prompt.name}) with {profile.model} at {profile.base_url} "
        f"on {benchmark.task}: {len(work)} seeds, {total} predictions"
    )

    async def stream() -> AsyncIterator[tuple[int, LLMPrediction]]:
        async with client:
            for seed, queries, pool in work:
                async for result in predict_stream(client, prompt, queries, pool, samples):
                    yield seed, result

    predictions: dict[int, dict[str, float]] = {seed: {} for seed, _, _ in work}
    received = {seed: 0 for seed, _, _ in work}
    expected = {seed: len(queries) for seed, queries, _ in work}
    done = 0
    try:
        with closing(stream_batches(handle, stream)) as batches:
            for batch in batches:
                for seed, result in batch:
                    received[seed] += 1
                    if result.ok:
                        predictions[seed][result.arch_id] = result.value
                    else:
                        handle.log(f"seed {seed}, {result.arch_id}: no prediction: {result.error}")
                done += len(batch)
                handle.progress(
                    done / max(total, 1), f"{done}/{total} predicted, cost {client.usage.cost:.4f}"
                )
                for seed in {seed for seed, _ in batch}:
                    if received[seed] == expected[seed]:
                        yield _split_result(benchmark, known.bleu, predictions, profile, seed)
    finally:
        if cache is not None:
            cache.close()
    result = replace(
        evaluate_predictions(benchmark, known.bleu, predictions, profile.predictor_name),
        prompt_version=version,
        usage=client.usage,
        prompt_name=prompt.name,
    )
    handle.log(f"{profile.predictor_name} on {benchmark.task}: {result.describe()}")
    return result


def _split_result(
    benchmark: SeedArchs,
    truth: Mapping[str, float],
    predictions: Mapping[int, Mapping[str, float]],
    profile: LLMProfile,
    seed: int,
) -> SplitResult:
    one_seed = SeedArchs(
        benchmark.task, benchmark.folder, tuple(s for s in benchmark.splits if s.seed == seed)
    )
    return evaluate_predictions(one_seed, truth, predictions, profile.predictor_name).splits[0]
