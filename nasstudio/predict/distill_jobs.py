"""LLM-Distill-PP and the fitted predictor as a job: fit llmas's regressor on a task's labels,
store it, record its predictions and score it as LLM-PP is scored.

Labelling with the LLM is the LLM prediction job's work (``llm_predict_job``); this module
chooses what it labels, says what that will cost, and fits on the labels that came back.
"""

from __future__ import annotations

import random
import re
from collections.abc import Generator, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd
import torch

from nasstudio.jobs import JobHandle
from nasstudio.jobs.model import job_defaults
from nasstudio.predict.base import predictions_of
from nasstudio.predict.distill import (
    DistilledPredictor,
    FitSettings,
    distilled_path,
    kind_of_labels,
    labelled_pairs,
)
from nasstudio.predict.evaluate import (
    EvaluationResult,
    SeedScores,
    evaluate_predictions,
    read_seedarchs,
    score,
)
from nasstudio.predict.latency import held_out_split
from nasstudio.predict.llm.client import LLMProfile
from nasstudio.space import Architecture, get_space
from nasstudio.store import BLEU_VALID, Project

DISTILL_KIND = "distill"
PREDICTED = f"pred:{BLEU_VALID}@"
# Predictions of these kinds are not labels: they are named ``<kind>:<name>``.
_NOT_LABELS = ("distilled:", "fitted:", "supernet:")


def labels_metric(column: str) -> str:
    """The metric a labels column holds: ``pred:bleu_valid@m`` and ``bleu_valid`` both hold
    ``bleu_valid``."""
    return column[len("pred:") :].split("@", 1)[0] if column.startswith("pred:") else column


def llm_label_columns(table: pd.DataFrame) -> dict[str, int]:
    """The columns of LLM-predicted BLEU of a task's table with how many values each has,
    most first."""
    columns = [
        c
        for c in table.columns
        if c.startswith(PREDICTED) and not c[len(PREDICTED) :].startswith(_NOT_LABELS)
    ]
    counts = table[columns].notna().sum().astype(int)
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


def default_labels_column(table: pd.DataFrame) -> str:
    """The LLM column with the most values, else measured BLEU (a fitted predictor)."""
    columns = llm_label_columns(table)
    return next(iter(columns)) if columns else BLEU_VALID


def default_name(column: str) -> str:
    """A file name for the predictor fitted on ``column``: its predictor, or the metric."""
    source = column.split("@", 1)[1] if column.startswith("pred:") else f"measured-{column}"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", source).strip("-.") or "distilled"


def choose_unlabelled(
    table: pd.DataFrame,
    column: str,
    count: int,
    seed: int,
    among: Sequence[str] | None = None,
) -> list[str]:
    """Up to ``count`` architectures of a task's ``table`` (of ``among`` when given) without a
    value in ``column``, drawn with ``seed``."""
    unlabelled = table.index if column not in table.columns else table.index[table[column].isna()]
    candidates = sorted(set(unlabelled) & set(among) if among is not None else set(unlabelled))
    return random.Random(seed).sample(candidates, min(count, len(candidates)))


def labelling_cost(profile: LLMProfile, count: int, tokens: int, exact: bool) -> str:
    """What labelling ``count`` architectures asks, ``tokens`` being one prompt's input."""
    input_tokens = count * tokens
    cost = profile.cost(input_tokens, count * profile.sent_max_tokens)
    approx = "" if exact else "≈ "
    again = f" ({profile.max_asks} times that if every answer is asked again)"
    return (
        f"{count:,} requests, {approx}{input_tokens:,} input tokens; at most {cost:.4f} at the "
        f"profile's prices{again if profile.max_asks > 1 else ''}, less what the cache answers"
    )


@job_defaults("process")
def distill_job(
    handle: JobHandle,
    project: Project,
    task: str,
    labels_column: str,
    name: str,
    settings: FitSettings | None = None,
    seedarchs: str | None = None,
    split_seed: int = 0,
) -> Generator[Any, None, dict[str, Any]]:
    """Fit llmas's regressor on ``labels_column`` of ``task`` (an LLM's predictions: kind
    'distilled'; measured BLEU: 'fitted'), holding out a seeded 10 % to score it on; store it
    as ``name`` beside the project; record its predictions of every architecture of the task;
    and, given a ``seedarchs`` folder, score it on the seed architectures as LLM-PP is scored
    (their files are imported first, as ``evaluate`` imports them). Returns a summary."""
    torch.set_num_threads(1)  # small batches: more threads only contend with other workers
    settings = settings or FitSettings()
    path = distilled_path(project.path, name)  # checks the name before any work
    every = project.architectures(task)
    archs, values = labelled_pairs(project, task, labels_column, every)
    if len(archs) < 2:
        raise ValueError(f"column '{labels_column}' of {task} has 1 value: fitting needs 2 or more")
    benchmark = read_seedarchs(seedarchs, task) if seedarchs else None
    kind = kind_of_labels(labels_column)
    fit_rows, held_rows = held_out_split(len(archs), split_seed)
    handle.log(
        f"fitting {kind} predictor '{name}' on {len(fit_rows)} values of {labels_column} "
        f"({len(held_rows)} held out): {settings.steps} steps x {len(settings.seeds)} seeds"
    )
    predictor = DistilledPredictor.fit(
        [archs[i] for i in fit_rows],
        [values[i] for i in fit_rows],
        get_space(project.task(task).space),
        name,
        kind,
        settings,
        {"task": task, "labels": labels_column, "split_seed": split_seed, "job": handle.job_id},
        labels_metric(labels_column),
        progress=lambda fraction: _fitting(handle, fraction),
    )
    held_mean, _ = predictor.predict_values([archs[i] for i in held_rows])
    held_out = score([values[i] for i in held_rows], held_mean)
    predictor.evaluation = {"held_out": _jsonable(asdict(held_out))}
    handle.log(
        f"held out: tau {held_out.kendall_tau:.3f}, MAE {held_out.mae:.3f} ({held_out.n} values)"
    )
    evaluated = None
    if benchmark is not None:
        yield list(benchmark.files)
        evaluated = yield from _seedarch_scores(predictor, benchmark)
        predictor.evaluation["seedarchs"] = evaluated.as_dict()
    predictor.save(path)
    predicted = list(every)
    if benchmark is not None:  # the seed architectures the task may not have had before
        known = {a.id for a in every}
        predicted += [a for i, a in benchmark.known.archs.items() if i not in known]
    yield from predictions_of(handle, predictor, task, predicted, batch_size=4096)
    return {
        "name": name,
        "predictor": predictor.name,
        "kind": kind,
        "labels": labels_column,
        "fitted_on": len(fit_rows),
        "held_out": _jsonable(asdict(held_out)),
        "seedarchs": evaluated.as_dict() if evaluated else None,
        "path": str(path),
        "predicted": len(predicted),
        "column": f"pred:{predictor.metric}@{predictor.name}",
    }


def _fitting(handle: JobHandle, fraction: float) -> None:
    handle.check_cancelled()
    handle.progress(0.9 * fraction, f"fitting: {fraction:.0%}")


def _seedarch_scores(
    predictor: DistilledPredictor, benchmark
) -> Generator[list[SeedScores], None, EvaluationResult]:
    """The llmas protocol for a stored predictor: the same predictions on every seed's test
    architectures, one ``SeedScores`` per seed."""
    archs: list[Architecture] = list(benchmark.known.archs.values())
    mean, _ = predictor.predict_values(archs)
    values = {a.id: float(v) for a, v in zip(archs, mean, strict=True)}
    result = evaluate_predictions(
        benchmark, benchmark.known.bleu, {s.seed: values for s in benchmark.splits}, predictor.name
    )
    yield [
        SeedScores(benchmark.task, benchmark.folder, predictor.name, predictor.name, split)
        for split in result.splits
    ]
    return result


def _jsonable(scores: dict[str, Any]) -> dict[str, Any]:
    return {k: None if isinstance(v, float) and np.isnan(v) else v for k, v in scores.items()}
