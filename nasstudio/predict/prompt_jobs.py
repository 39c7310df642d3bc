"""Prompt work of the workbench, as coroutines on the app's event loop: one job that imports a
seedarchs folder and scores stored predictors and any number of prompts on it (the CLI's
``evaluate`` and the GUI's Evaluate and ablations), and the one-request connection check of an
LLM profile."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nasstudio.jobs import JobHandle
from nasstudio.jobs.async_executor import Returned
from nasstudio.jobs.model import job_defaults
from nasstudio.predict.evaluate import (
    EvaluationResult,
    SeedScores,
    SplitResult,
    ablation_kind,
    evaluate_baseline,
    evaluate_prompt,
    evaluate_stored,
    read_seedarchs,
)
from nasstudio.predict.llm import (
    LLMClient,
    LLMPrediction,
    LLMProfile,
    LLMRequestError,
    NewPrompt,
    NothingPredicted,
    ProfileError,
    Prompt,
    ResponseCache,
    Usage,
)
from nasstudio.predict.llm.job import asked_again_note, failure_text
from nasstudio.predict.llm.llmas import LlmasTemplate
from nasstudio.store import Project
from nasstudio.store.importers import LLMAS_BASELINES

PING_MESSAGES = [
    {"role": "system", "content": "Answer with a number only."},
    {"role": "user", "content": "What is 6 times 7?"},
]
PING_TIMEOUT_S = 15.0


@job_defaults("async")
async def evaluate_prompts_job(
    handle: JobHandle,
    project: Project,
    folder: str,
    task: str,
    profile: LLMProfile | None = None,
    prompts: Sequence[tuple[str, Prompt | LlmasTemplate]] = (),
    predictors: Sequence[str] = LLMAS_BASELINES,
    samples: int = 1,
    demo_ids: Sequence[str] | None = None,
    cache_path: str | Path | None = None,
    use_cache: bool = True,
    retry_base_delay: float = 1.0,
) -> AsyncIterator[Any]:
    """Score stored ``predictors`` and then each prompt on ``task`` of the seedarchs ``folder``
    and record every seed's scores (``SeedScores``); yields ``Returned`` with the results last.

    The folder's files are imported into the project first (importing again changes nothing).
    A baseline the files carry is scored from them, and one they lack is skipped; any other
    predictor is scored from its predictions in the project. ``prompts`` are (variant, prompt)
    pairs: the variant names an ablation, '' the prompt itself; they need ``profile``. Each
    seed's demonstrations are its train architectures, or ``demo_ids`` (of the files) when given.
    The job fails when the endpoint cannot be reached, or when a prompt got no prediction.
    """
    handle.progress(0.0, f"reading {Path(folder).name}/…/{task}")
    benchmark = read_seedarchs(folder, task)
    yield list(benchmark.files)
    results: list[EvaluationResult] = []
    for name in predictors:
        if name in benchmark.baselines:
            result = evaluate_baseline(benchmark, name)
        elif name in LLMAS_BASELINES:
            continue
        else:  # from the project's table, which may be big: not on the event loop
            result = await asyncio.to_thread(evaluate_stored, project, benchmark, name)
        results.append(result)
        yield [SeedScores(task, benchmark.folder, name, name, split) for split in result.splits]
    if prompts and profile is None:
        raise ValueError("evaluating prompts needs an LLM profile")
    per_prompt = sum(len(split.test_ids) for split in benchmark.splits)
    total = per_prompt * len(prompts)
    cache = ResponseCache(cache_path) if use_cache and prompts else None
    try:
        for index, (variant, prompt) in enumerate(prompts):
            label = variant or prompt.name
            prefix = f"{label} ({index + 1}/{len(prompts)}): " if len(prompts) > 1 else ""
            version = prompt.version
            kind = ablation_kind(variant, prompt)
            yield NewPrompt(prompt)
            handle.log(
                f"{prefix}evaluating prompt {version} ({prompt.name}) with {profile.model} at "
                f"{profile.base_url} on {task}: {len(benchmark.splits)} seeds, "
                f"{per_prompt} predictions"
            )
            client = LLMClient(profile, cache, handle.log, retry_base_delay)
            heard = _reporter(handle, prefix, index * per_prompt, per_prompt, total, client.usage)
            splits: list[SplitResult] = []
            async with client:
                async for split in evaluate_prompt(
                    client, benchmark, prompt, samples, heard, demo_ids
                ):
                    splits.append(split)
                    yield SeedScores(
                        task,
                        benchmark.folder,
                        profile.predictor_name,
                        label,
                        split,
                        version,
                        variant,
                        kind,
                    )
            result = EvaluationResult(
                task,
                profile.predictor_name,
                tuple(splits),
                version,
                client.usage,
                prompt.name,
                kind,
            )
            handle.log(
                f"{prefix}{profile.predictor_name} on {task}: {result.describe()}"
                + asked_again_note(profile, client.usage)
            )
            if not result.predicted:
                raise NothingPredicted(
                    f"{prefix}none of the {result.asked} test architectures got a prediction "
                    f"from {profile.model} at {profile.base_url}; the job log says why for each"
                )
            results.append(result)
    finally:
        if cache is not None:
            cache.close()
    yield Returned(results)


def _reporter(
    handle: JobHandle, prefix: str, start: int, count: int, total: int, usage: Usage
) -> Callable[[int, LLMPrediction], None]:
    """What hears each prediction of one prompt's ``count``: a failure is logged, and the
    job's progress counts it after the ``start`` of earlier prompts."""
    done = 0

    def heard(seed: int, result: LLMPrediction) -> None:
        nonlocal done
        done += 1
        if not result.ok:
            handle.log(f"{prefix}seed {seed}, {result.arch_id}: {failure_text(result)}")
        handle.progress(
            (start + done) / total, f"{prefix}{done}/{count} predicted, cost {usage.cost:.4f}"
        )

    return heard


@dataclass(frozen=True, slots=True)
class ConnectionCheck:
    ok: bool
    message: str


async def check_connection(profile: LLMProfile) -> ConnectionCheck:
    """Send one tiny request with ``profile`` (no retries, a short timeout, no cache) and say
    what came back or what went wrong."""
    quick = replace(profile, max_retries=0, timeout=min(profile.timeout, PING_TIMEOUT_S))
    start = time.perf_counter()
    try:
        async with LLMClient(quick) as client:
            answer = (await client.complete(PING_MESSAGES)).text
    except (LLMRequestError, ProfileError) as exc:
        return ConnectionCheck(False, f"Connection failed: {exc}")
    elapsed = time.perf_counter() - start
    return ConnectionCheck(
        True,
        f"{profile.model} at {profile.base_url} answered {answer.strip()[:80]!r} "
        f"in {elapsed:.2f} s",
    )
