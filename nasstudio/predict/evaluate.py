"""Scoring performance predictors with the llmas protocol of the LLM-PP paper.

A seedarchs folder holds, per seed and task, ``<seed>/<task>/train.jsonl`` (the demonstrations)
and ``test.jsonl`` (the architectures to predict). A predictor is scored on each seed's test
architectures against their measured ``valid_BLEU`` with the mean absolute error, Kendall's
tau-b and Spearman's rho (scipy.stats, which scikit-learn already brings), and reported as the
mean and population standard deviation over seeds. Tau-b is the variant that reproduces the
paper's baseline figures. A figure rests on the test architectures that got a prediction (an
LLM may give no number), and a correlation is undefined, not NaN, for constant predictions or
fewer than two: every result says on how many of the asked architectures each figure rests and
why one is undefined.

The files are the benchmark: they carry the architectures, their GFLOPs and BLEU, and the four
supernet baselines' predictions, so scoring needs nothing from the project (a job can import
them and score them in one go). An LLM prompt is scored by ``evaluate_prompt``, which predicts
each seed's test architectures with that seed's train architectures as the demonstrations.
Each seed's scores are recorded in the project as ``SeedScores``.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from nasstudio.metrics import efficiency
from nasstudio.predict.llm.client import LLMClient, Usage
from nasstudio.predict.llm.job import LLMPrediction, TaskArchitectures, predict_stream
from nasstudio.predict.llm.llmas import LlmasTemplate
from nasstudio.predict.llm.prompt import Prompt
from nasstudio.store import BLEU_VALID, GFLOPS, Project
from nasstudio.store.importers import ImportFormatError, LlmasFile, read_llmas

METRICS = ("mae", "kendall_tau", "spearman_rho")
# The two kinds of prompt ablation an evaluation table shows: llmas's templates, each adding a
# part to the one before, and the project's variants, each leaving one part of its prompt out.
LLMAS_CUMULATIVE = "llmas cumulative"
LEAVE_ONE_OUT = "leave-one-out"
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
    """The splits of one task in a seedarchs folder, with what its files say of the
    architectures: GFLOPs and measured BLEU (``known``) and the baselines' predicted BLEU
    (predictor -> arch id -> value). ``files`` are the files read, as records to import."""

    task: str
    folder: str
    splits: tuple[Split, ...]
    known: TaskArchitectures
    baselines: Mapping[str, Mapping[str, float]]
    files: tuple[LlmasFile, ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Scores:
    """Scores on ``n`` predicted architectures; NaN where undefined, ``undefined`` saying why
    the correlations (and, for no predictions at all, the MAE) are."""

    n: int
    mae: float
    kendall_tau: float
    spearman_rho: float
    undefined: str | None = None


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
    ablation: str = ""  # which kind of ablation (``ablation_kind``)

    def _defined(self, metric: str) -> list[SplitResult]:
        if metric not in METRICS:
            raise ValueError(f"unknown metric '{metric}'; known are {METRICS}")
        return [s for s in self.splits if not math.isnan(getattr(s.scores, metric))]

    def values(self, metric: str) -> list[float]:
        """The seeds' values of ``metric`` where it is defined."""
        return [getattr(s.scores, metric) for s in self._defined(metric)]

    def mean(self, metric: str) -> float:
        """Mean over the seeds where ``metric`` is defined; NaN where it is on none."""
        values = self.values(metric)
        return float(np.mean(values)) if values else math.nan

    def std(self, metric: str) -> float:
        """Population standard deviation over the seeds where ``metric`` is defined."""
        values = self.values(metric)
        return float(np.std(values)) if values else math.nan

    @property
    def asked(self) -> int:
        """Test architectures over all seeds."""
        return sum(s.scores.n + len(s.missing) for s in self.splits)

    @property
    def predicted(self) -> int:
        return sum(s.scores.n for s in self.splits)

    def rests_on(self, metric: str) -> int:
        """Predicted test architectures of the seeds where ``metric`` is defined."""
        return sum(s.scores.n for s in self._defined(metric))

    def undefined(self, metric: str) -> str | None:
        """Why ``metric`` is undefined on every seed (None when it is defined on one)."""
        if self._defined(metric):
            return None
        return ", ".join(sorted({s.scores.undefined or "undefined" for s in self.splits}))

    def figure(self, metric: str, digits: int = 2) -> str:
        """``0.71 (0.05)``, with ``n=40/60`` when it rests on fewer architectures than were
        predicted (a seed where it is undefined), or ``undefined (constant predictions)``."""
        if not self._defined(metric):
            return undefined_text(self.undefined(metric))
        text = f"{self.mean(metric):.{digits}f} ({self.std(metric):.{digits}f})"
        if self.rests_on(metric) < self.predicted:
            text += f" {coverage_text(self.rests_on(metric), self.asked)}"
        return text

    def describe(self, digits: int = 2) -> str:
        return (
            "  ".join(f"{METRIC_LABELS[m]} {self.figure(m, digits)}" for m in METRICS)
            + f"  {coverage_text(self.predicted, self.asked)}"
        )

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"task": self.task, "predictor": self.predictor}
        if self.prompt_version:
            out["prompt_version"] = self.prompt_version
            out["prompt_name"] = self.prompt_name
            out["ablation"] = self.ablation
        out["n"], out["asked"] = self.predicted, self.asked
        for metric in METRICS:
            out[metric] = {
                "mean": _json_float(self.mean(metric)),
                "std": _json_float(self.std(metric)),
                "n": self.rests_on(metric),
            }
            if (why := self.undefined(metric)) is not None:
                out[metric]["undefined"] = why
        out["seeds"] = [
            {
                "seed": s.seed,
                "n": s.scores.n,
                "asked": s.scores.n + len(s.missing),
                "missing": list(s.missing),
                **{m: _json_float(getattr(s.scores, m)) for m in METRICS},
                **({"undefined": s.scores.undefined} if s.scores.undefined else {}),
            }
            for s in self.splits
        ]
        if self.usage is not None:
            out["usage"] = asdict(self.usage)
        return out


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else value


def is_llmas_prompt(prompt: Prompt | LlmasTemplate) -> bool:
    return isinstance(prompt, LlmasTemplate)


def ablation_kind(variant: str, prompt: Prompt | LlmasTemplate) -> str:
    """``llmas cumulative`` for an llmas template, ``leave-one-out`` for a variant of the
    project's prompt, '' for the project's prompt itself."""
    if is_llmas_prompt(prompt):
        return LLMAS_CUMULATIVE
    return LEAVE_ONE_OUT if variant else ""


def undefined_text(why: str | None) -> str:
    """What a table shows for an undefined figure: ``undefined (constant predictions)``."""
    return f"undefined ({why})" if why else "undefined"


def coverage_text(rests_on: int, asked: int) -> str:
    """On how many of the asked architectures a figure rests: ``n=35/60``."""
    return f"n={rests_on}/{asked}"


def score(truth: Sequence[float], predicted: Sequence[float]) -> Scores:
    """MAE, Kendall's tau-b and Spearman's rho; the correlations are NaN (with the reason in
    ``undefined``) for fewer than two points or constant values, the MAE for none."""
    y, p = np.asarray(truth, dtype=float), np.asarray(predicted, dtype=float)
    if y.shape != p.shape:
        raise ValueError(f"{len(y)} true values but {len(p)} predictions")
    if len(y) == 0:
        return Scores(0, math.nan, math.nan, math.nan, "no predictions")
    mae = float(np.mean(np.abs(y - p)))
    why = None
    if len(y) < 2:
        why = "fewer than 2 predictions"
    elif np.all(p == p[0]):
        why = "constant predictions"
    elif np.all(y == y[0]):
        why = "constant measured BLEU"
    if why is not None:
        return Scores(len(y), mae, math.nan, math.nan, why)
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


def read_seedarchs(folder: str | Path, task: str) -> SeedArchs:
    """Read and check ``folder``'s files of ``task``; nothing is written anywhere."""
    folder = Path(folder).expanduser().resolve()
    seeds = _seed_dirs(folder)
    if not seeds:
        raise ImportFormatError(folder, None, "expected numbered seed folders (e.g. 123/)")
    paths = [seed / task / name for seed in seeds for name in SPLIT_FILES]
    absent = [p for p in paths if not p.is_file()]
    if absent:
        raise ImportFormatError(absent[0], None, f"missing: every seed needs {SPLIT_FILES}")
    files = [read_llmas(path, task) for path in paths]
    ids = [tuple(r.arch.id for r in file.records) for file in files]
    splits = tuple(
        Split(int(seed.name), ids[2 * i], ids[2 * i + 1]) for i, seed in enumerate(seeds)
    )
    archs, gflops, bleu = {}, {}, {}
    baselines: dict[str, dict[str, float]] = {}
    for file in files:
        for record in file.records:
            arch_id = record.arch.id
            measured = {
                metric: value for metric, value, device in record.measurements if not device
            }
            archs[arch_id] = record.arch
            gflops[arch_id] = (
                measured.get(GFLOPS) or efficiency(record.arch, file.spec.vocab_size).gflops
            )
            if BLEU_VALID in measured:
                bleu[arch_id] = measured[BLEU_VALID]
            for predictor, metric, value in record.predictions:
                if metric == BLEU_VALID:
                    baselines.setdefault(predictor, {})[arch_id] = value
    known = TaskArchitectures(task, archs, gflops, bleu)
    return SeedArchs(task, str(folder), splits, known, baselines, tuple(files))


def _seed_dirs(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise ImportFormatError(folder, None, "not a folder")
    return sorted(
        (p for p in folder.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name)
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


def evaluate_baseline(benchmark: SeedArchs, predictor: str) -> EvaluationResult:
    """Score a baseline whose predictions the files carry (the same for every seed)."""
    if predictor not in benchmark.baselines:
        known = sorted(benchmark.baselines)
        raise KeyError(f"the files of {benchmark.task} carry no '{predictor}'; they have {known}")
    values = benchmark.baselines[predictor]
    return evaluate_predictions(
        benchmark, benchmark.known.bleu, {s.seed: values for s in benchmark.splits}, predictor
    )


def stored_predictors(project: Project, task: str, metric: str = BLEU_VALID) -> list[str]:
    """Names of the predictors with stored ``metric`` predictions for ``task``."""
    prefix = f"pred:{metric}@"
    return [
        c[len(prefix) :] for c in project.value_columns(task)["predicted"] if c.startswith(prefix)
    ]


def evaluate_stored(
    project: Project, benchmark: SeedArchs, predictor: str, metric: str = BLEU_VALID
) -> EvaluationResult:
    """Score the latest predictions of ``predictor`` stored in the project (the same for every
    seed) against the files' BLEU."""
    table = project.table(benchmark.task) if project.task(benchmark.task) else None
    column = f"pred:{metric}@{predictor}"
    if table is None or column not in table.columns:
        known = stored_predictors(project, benchmark.task, metric) if table is not None else []
        raise KeyError(f"no predictor '{predictor}' for {benchmark.task}; stored are {known}")
    values = table[column].dropna().astype(float).to_dict()
    return evaluate_predictions(
        benchmark, benchmark.known.bleu, {s.seed: values for s in benchmark.splits}, predictor
    )


async def evaluate_prompt(
    client: LLMClient,
    benchmark: SeedArchs,
    prompt: Prompt | LlmasTemplate,
    samples: int = 1,
    heard: Callable[[int, LLMPrediction], None] | None = None,
    demo_ids: Sequence[str] | None = None,
) -> AsyncIterator[SplitResult]:
    """Score ``prompt`` seed by seed, each seed's test architectures predicted with its train
    architectures as the demonstrations (``demo_ids``, architectures of the files, instead when
    given); yields each seed's result once it is complete. An llmas prompt draws its task
    examples with each seed, as llmas does. ``heard(seed, result)`` is told of each prediction
    as it arrives."""
    known = benchmark.known
    restricted = None if demo_ids is None else known.restricted_pool(demo_ids, benchmark.folder)
    for split in benchmark.splits:
        queries = known.queries(split.test_ids)
        pool = known.demonstrations(split.train_ids) if restricted is None else restricted
        seeded = prompt.with_seed(split.seed) if is_llmas_prompt(prompt) else prompt
        predicted: dict[str, float] = {}
        async for result in predict_stream(client, seeded, queries, pool, samples):
            if heard is not None:
                heard(split.seed, result)
            if result.ok:
                predicted[result.arch_id] = result.value
        one_seed = SeedArchs(benchmark.task, benchmark.folder, (split,), known, {})
        name = client.profile.predictor_name
        yield evaluate_predictions(one_seed, known.bleu, {split.seed: predicted}, name).splits[0]


@dataclass(frozen=True, slots=True)
class SeedScores:
    """One seed's scores of a predictor on a benchmark (for an LLM prompt, of one variant of
    it), as a record (``jobs.records``): the runner adds it to the project's evaluations."""

    task: str
    benchmark: str  # the seedarchs folder
    predictor: str
    label: str  # what it is shown as: a baseline's or a prompt's name, or the variant
    split: SplitResult
    prompt_version: str | None = None
    variant: str = ""  # the prompt's ablation; '' for the prompt itself
    ablation: str = ""  # which kind of ablation (``ablation_kind``)

    def write(self, project: Project, job_id: int) -> tuple[str, ...]:
        scores = self.split.scores
        row = {
            "task": self.task,
            "benchmark": self.benchmark,
            "label": self.label,
            "predictor": self.predictor,
            "prompt_version": self.prompt_version,
            "variant": self.variant,
            "seed": self.split.seed,
            "n": scores.n,
            **{m: _json_float(getattr(scores, m)) for m in METRICS},
            "details": {
                "missing": list(self.split.missing),
                "predictions": dict(self.split.predictions),
                **({"undefined": scores.undefined} if scores.undefined else {}),
                **({"ablation": self.ablation} if self.ablation else {}),
            },
        }
        project.add_evaluations([row], job_id)
        return ()
