"""Prompt work of the workbench, as plain functions that run off the caller's thread: evaluating
stored baselines and one or more prompts on a seedarchs folder in one job, and the
one-request connection check of an LLM profile."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from nasstudio.jobs import JobHandle
from nasstudio.predict.evaluate import (
    EvaluationResult,
    SplitResult,
    evaluate_stored,
    llm_evaluate_job,
    load_seedarchs,
    stored_predictors,
)
from nasstudio.predict.llm import LLMClient, LLMProfile, LLMRequestError, ProfileError, Prompt
from nasstudio.store import Project
from nasstudio.store.importers import LLMAS_BASELINES

PING_MESSAGES = [
    {"role": "system", "content": "Answer with a number only."},
    {"role": "user", "content": "What is 6 times 7?"},
]
PING_TIMEOUT_S = 15.0


@dataclass(frozen=True, slots=True)
class EvaluationUpdate:
    """A partial result of ``evaluate_prompts_job``: a stored baseline's whole result, or one
    seed of a prompt's evaluation."""

    label: str
    predictor: str
    result: EvaluationResult | None = None
    split: SplitResult | None = None
    version: str | None = None


class _PartHandle:
    """The handle one of several evaluations in a row sees: its progress fills its share of the
    job's bar and its messages say which part is running."""

    def __init__(self, handle: JobHandle, index: int, count: int, label: str) -> None:
        self._handle, self._index, self._count = handle, index, count
        self._prefix = f"{label} ({index + 1}/{count}): " if count > 1 else ""

    def progress(self, fraction: float, message: str | None = None) -> None:
        text = None if message is None else self._prefix + message
        self._handle.progress((self._index + fraction) / self._count, text)

    def log(self, line: str) -> None:
        self._handle.log(self._prefix + line)

    def check_cancelled(self) -> None:
        self._handle.check_cancelled()

    @property
    def cancel_requested(self) -> bool:
        return self._handle.cancel_requested


def _relabelled(
    inner: Generator[SplitResult, None, EvaluationResult],
    wrap: Callable[[SplitResult], EvaluationUpdate],
) -> Generator[EvaluationUpdate, None, EvaluationResult]:
    """Yield ``wrap(item)`` for what ``inner`` yields and return what it returns."""
    try:
        while True:
            try:
                item = next(inner)
            except StopIteration as stop:
                return stop.value
            yield wrap(item)
    finally:
        inner.close()  # a cancel closes this generator: close the inner one (its cache) now


def evaluate_prompts_job(
    handle: JobHandle,
    project: Project,
    folder: str,
    task: str,
    profile: LLMProfile,
    prompts: Sequence[tuple[str, Prompt]],
    baselines: bool = True,
    cache_path: str | Path | None = None,
) -> Generator[EvaluationUpdate, None, list[tuple[str, EvaluationResult]]]:
    """Score the llmas baselines stored for ``task`` and then each labelled prompt on the
    seedarchs ``folder`` (imported into the project first; importing again changes nothing)."""
    handle.progress(0.0, f"reading {Path(folder).name}/…/{task}")
    benchmark = load_seedarchs(project, folder, task)
    if baselines:
        stored = set(stored_predictors(project, task))
        for name in (n for n in LLMAS_BASELINES if n in stored):
            yield EvaluationUpdate(name, name, result=evaluate_stored(project, benchmark, name))
    results = []
    for index, (label, prompt) in enumerate(prompts):
        version = prompt.version
        part = _PartHandle(handle, index, len(prompts), label)
        inner = llm_evaluate_job(part, project, benchmark, profile, prompt, cache_path=cache_path)
        result = yield from _relabelled(
            inner,
            lambda split, label=label, version=version: EvaluationUpdate(
                label, profile.predictor_name, split=split, version=version
            ),
        )
        results.append((label, result))
    return results


@dataclass(frozen=True, slots=True)
class ConnectionCheck:
    ok: bool
    message: str


def check_connection(profile: LLMProfile) -> ConnectionCheck:
    """Send one tiny request with ``profile`` (no retries, a short timeout, no cache) and say
    what came back or what went wrong. Blocks: call it off the GUI thread."""
    quick = replace(profile, max_retries=0, timeout=min(profile.timeout, PING_TIMEOUT_S))

    async def ask() -> str:
        async with LLMClient(quick) as client:
            return (await client.complete(PING_MESSAGES)).text

    start = time.perf_counter()
    try:
        answer = asyncio.run(ask())
    except (LLMRequestError, ProfileError) as exc:
        return ConnectionCheck(False, f"Connection failed: {exc}")
    elapsed = time.perf_counter() - start
    return ConnectionCheck(
        True,
        f"{profile.model} at {profile.base_url} answered {answer.strip()[:80]!r} "
        f"in {elapsed:.2f} s",
    )
