"""LLM-PP predictions: the reusable async core, a Predictor, and the background job.

``predict_stream`` / ``predict_async`` are plain asyncio (the GUI can await them under qasync).
``llm_predict_job`` is a job function for the JobRunner: it drives the same core on an event loop
of its own in the job's worker thread, records each prediction as it arrives, yields them in
batches, and stops within a fraction of a second of a cancel, keeping what was recorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Sequence
from contextlib import closing, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from nasstudio.jobs import JobHandle
from nasstudio.metrics import efficiency
from nasstudio.predict.base import PredictionResult
from nasstudio.predict.llm.cache import ResponseCache
from nasstudio.predict.llm.client import (
    Completion,
    LLMClient,
    LLMProfile,
    LLMRequestError,
    Usage,
)
from nasstudio.predict.llm.parser import parse_bleu, summarise
from nasstudio.predict.llm.prompt import Demonstration, Prompt, current_prompt, save_prompt
from nasstudio.space import Architecture
from nasstudio.store import BLEU_VALID, GFLOPS, Prediction, Project

LLM_KIND = "llm"
BLEU_RANGE = (0.0, 100.0)
# How often the job wakes to hand over results and look for a cancel request.
_POLL_S = 0.2
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class LLMPrediction(PredictionResult):
    """A prediction with what it cost. ``value`` is the mean of the parsed samples."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    cached: int = 0  # samples served from the cache
    answers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LLMJobSummary:
    """What ``llm_predict_job`` returns: counts and the usage of requests actually sent."""

    predictor: str
    prompt_version: str
    predicted: int
    failed: int
    usage: Usage = field(default_factory=Usage)


# --- the async core -----------------------------------------------------------------------------


async def predict_stream(
    client: LLMClient,
    prompt: Prompt,
    queries: Sequence[Demonstration],
    pool: Sequence[Demonstration],
    samples: int = 1,
    bleu_range: tuple[float, float] = BLEU_RANGE,
) -> AsyncIterator[LLMPrediction]:
    """Predict every query (its demonstrations chosen from ``pool``), yielding results as they
    complete. The client bounds concurrency; closing the iterator cancels what is in flight."""
    if samples < 1:
        raise ValueError(f"samples must be 1 or more, got {samples}")

    async def one(query: Demonstration) -> LLMPrediction:
        messages = prompt.messages(query, pool)
        outcomes = await asyncio.gather(
            *(client.complete(messages, s) for s in range(samples)), return_exceptions=True
        )
        for outcome in outcomes:  # only request failures become results; bugs propagate
            if isinstance(outcome, BaseException) and not isinstance(outcome, LLMRequestError):
                raise outcome
        return _result(query.arch.id, client.profile, outcomes, bleu_range)

    tasks = [asyncio.ensure_future(one(q)) for q in queries]
    try:
        for next_done in asyncio.as_completed(tasks):
            yield await next_done
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def predict_async(
    client: LLMClient,
    prompt: Prompt,
    queries: Sequence[Demonstration],
    pool: Sequence[Demonstration],
    samples: int = 1,
    bleu_range: tuple[float, float] = BLEU_RANGE,
) -> list[LLMPrediction]:
    """All predictions, in the order of ``queries``."""
    by_id = {
        r.arch_id: r
        async for r in predict_stream(client, prompt, queries, pool, samples, bleu_range)
    }
    return [by_id[q.arch.id] for q in queries]


def _result(
    arch_id: str,
    profile: LLMProfile,
    outcomes: Sequence[Completion | LLMRequestError],
    bleu_range: tuple[float, float],
) -> LLMPrediction:
    completions = [o for o in outcomes if isinstance(o, Completion)]
    parsed = [parse_bleu(c.text, *bleu_range) for c in completions]
    values = [p.value for p in parsed if p.value is not None]
    problems = [str(o) for o in outcomes if isinstance(o, LLMRequestError)]
    problems += [p.problem for p in parsed if p.problem]
    tokens_in = sum(c.input_tokens for c in completions)
    tokens_out = sum(c.output_tokens for c in completions)
    cost = sum(c.cost for c in completions)
    provenance: dict[str, Any] = {
        "profile": profile.name,
        "model": profile.model,
        "base_url": profile.base_url,
        "temperature": profile.temperature,
        "max_tokens": profile.max_tokens,
        "samples": len(outcomes),
        "answers": [c.text for c in completions],
        "values": [p.value for p in parsed],
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "cost": cost,
        "cached": sum(c.cached for c in completions),
    }
    if problems:
        provenance["problems"] = problems
    value = std = None
    if values:
        summary = summarise(values)
        value, std = summary.mean, summary.std
        provenance["median"] = summary.median
    return LLMPrediction(
        arch_id,
        value,
        std,
        error=None if values else "; ".join(problems),
        provenance=provenance,
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        cost=cost,
        cached=provenance["cached"],
        answers=tuple(provenance["answers"]),
    )


class LLMPredictor:
    """The Predictor protocol over LLM-PP: a profile, a prompt and a pool of demonstrations.
    GFLOPS of the queried architectures are computed for the task's vocabulary."""

    kind = LLM_KIND
    metric = BLEU_VALID

    def __init__(
        self,
        profile: LLMProfile,
        prompt: Prompt,
        pool: Sequence[Demonstration],
        vocab_size: int,
        samples: int = 1,
        cache: ResponseCache | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.profile, self.prompt, self.pool = profile, prompt, list(pool)
        self.vocab_size, self.samples = vocab_size, samples
        self.cache, self.log = cache, log
        self.usage = Usage()

    @property
    def name(self) -> str:
        return self.profile.predictor_name

    async def predict_async(self, archs: Sequence[Architecture]) -> list[LLMPrediction]:
        queries = [Demonstration(a, efficiency(a, self.vocab_size).gflops) for a in archs]
        client = LLMClient(self.profile, self.cache, self.log)
        async with client:
            results = await predict_async(client, self.prompt, queries, self.pool, self.samples)
        self.usage = client.usage
        return results

    def predict(self, archs: Sequence[Architecture]) -> list[LLMPrediction]:
        return asyncio.run(self.predict_async(archs))


# --- running the async core inside a job --------------------------------------------------------


def stream_batches(
    handle: JobHandle, make_stream: Callable[[], AsyncIterator[T]]
) -> Iterator[list[T]]:
    """Run ``make_stream()`` on an event loop owned by this thread and yield what it produced
    every poll. A cancel request raises JobCancelled within one poll; leaving the loop (cancel,
    error, or the caller closing this generator) cancels whatever is still in flight."""
    with asyncio.Runner() as runner:
        inbox: list[T] = []
        arrived = asyncio.Event()

        async def pump() -> None:
            try:
                async for item in make_stream():
                    inbox.append(item)
                    arrived.set()
            finally:
                arrived.set()

        task = runner.get_loop().create_task(pump())
        while True:
            handle.check_cancelled()
            runner.run(_wait_for(arrived, _POLL_S))
            arrived.clear()
            if inbox:
                batch = inbox[:]
                inbox.clear()
                yield batch
            if task.done():
                task.result()  # raises what the stream raised
                return


async def _wait_for(event: asyncio.Event, timeout: float) -> None:
    with suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)


# --- the prediction job -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TaskArchitectures:
    """A task's architectures with their GFLOPS and, where measured, their BLEU."""

    task: str
    archs: dict[str, Architecture]
    gflops: dict[str, float]
    bleu: dict[str, float]

    @classmethod
    def load(cls, project: Project, task: str) -> TaskArchitectures:
        if project.task(task) is None:
            raise KeyError(f"no task '{task}' in {project.path}")
        table = project.table(task)
        bleu = table[BLEU_VALID].dropna() if BLEU_VALID in table.columns else pd.Series()
        return cls(
            task,
            {a.id: a for a in project.architectures(task)},
            table[GFLOPS].astype(float).to_dict(),
            bleu.astype(float).to_dict(),
        )

    def demonstrations(self, ids: Sequence[str] | None = None) -> list[Demonstration]:
        """Those with a measured BLEU (among ``ids`` when given)."""
        chosen = self.bleu if ids is None else [i for i in ids if i in self.bleu]
        return [Demonstration(self.archs[i], self.gflops[i], self.bleu[i]) for i in chosen]

    def queries(self, ids: Sequence[str]) -> list[Demonstration]:
        missing = [i for i in ids if i not in self.archs]
        if missing:
            raise KeyError(f"architecture {missing[0]} is not in task '{self.task}'")
        return [Demonstration(self.archs[i], self.gflops[i]) for i in ids]


def llm_predict_job(
    handle: JobHandle,
    project: Project,
    task: str,
    arch_ids: Sequence[str],
    profile: LLMProfile,
    prompt: Prompt | None = None,
    samples: int = 1,
    demo_ids: Sequence[str] | None = None,
    cache_path: str | Path | None = None,
    use_cache: bool = True,
    retry_base_delay: float = 1.0,
) -> Generator[list[LLMPrediction], None, LLMJobSummary]:
    """Predict the BLEU of ``arch_ids`` with LLM-PP and record each prediction as it arrives.

    Demonstrations come from the task's architectures with a measured ``bleu_valid`` (only
    ``demo_ids`` when given; never the query itself). The prompt defaults to the task's current
    one and is saved in the project; every prediction records its version. A failed or
    unreadable answer is logged (with the raw text) and counted, not stored as a value.
    """
    known = TaskArchitectures.load(project, task)
    queries = known.queries(arch_ids)
    pool = known.demonstrations(demo_ids)
    prompt = prompt or current_prompt(project, task)
    version = save_prompt(project, prompt)
    cache = ResponseCache(cache_path) if use_cache else None
    client = LLMClient(profile, cache, handle.log, retry_base_delay=retry_base_delay)
    handle.log(
        f"LLM-PP: {len(queries)} architectures of {task} with {profile.model} at "
        f"{profile.base_url} (profile {profile.name}, concurrency {profile.concurrency}), "
        f"prompt {version}, {len(pool)} architectures with BLEU to draw demonstrations from"
    )

    async def stream() -> AsyncIterator[LLMPrediction]:
        async with client:
            async for result in predict_stream(client, prompt, queries, pool, samples):
                yield result

    done = predicted = 0
    handle.progress(0.0, f"0/{len(queries)} predicted")
    try:
        with closing(stream_batches(handle, stream)) as batches:
            for batch in batches:
                rows = [_prediction(r, task, profile, version) for r in batch if r.ok]
                project.add_predictions(rows)
                for failure in (r for r in batch if not r.ok):
                    answers = repr(failure.answers)[:300] if failure.answers else "none"
                    handle.log(
                        f"{failure.arch_id}: no prediction: {failure.error}; answers: {answers}"
                    )
                done += len(batch)
                predicted += len(rows)
                handle.progress(
                    done / max(len(queries), 1),
                    f"{done}/{len(queries)} predicted, {client.usage.requests} requests, "
                    f"cost {client.usage.cost:.4f}",
                )
                yield batch
    finally:
        if cache is not None:
            cache.close()
    usage = client.usage
    handle.log(
        f"done: {predicted} predicted, {done - predicted} failed; {usage.requests} requests "
        f"({usage.retries} retries, {usage.cache_hits} from the cache), "
        f"{usage.input_tokens} input and {usage.output_tokens} output tokens, "
        f"cost {usage.cost:.4f}"
    )
    return LLMJobSummary(profile.predictor_name, version, predicted, done - predicted, usage)


def _prediction(r: LLMPrediction, task: str, profile: LLMProfile, version: str) -> Prediction:
    return Prediction(
        r.arch_id,
        task,
        BLEU_VALID,
        r.value,
        LLM_KIND,
        profile.predictor_name,
        std=r.std,
        prompt_version=version,
        provenance=dict(r.provenance),
    )
