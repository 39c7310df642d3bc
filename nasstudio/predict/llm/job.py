"""LLM-PP predictions: the async core, a Predictor, and the prediction job, all plain asyncio.

``llm_predict_job`` is an async-generator job (``jobs.async_executor``): it runs as a coroutine
on the app's event loop (qasync's, in the GUI), yields the predictions in batches as they arrive
for the runner to record, and a cancel drops the requests in flight while what was recorded
stays.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from nasstudio.jobs import JobHandle
from nasstudio.jobs.async_executor import Returned
from nasstudio.jobs.model import job_defaults
from nasstudio.jobs.records import Predictions
from nasstudio.metrics import efficiency
from nasstudio.predict.base import PredictionResult, to_predictions
from nasstudio.predict.llm.cache import ResponseCache
from nasstudio.predict.llm.client import (
    LLMAS_DECODING,
    Completion,
    LLMClient,
    LLMProfile,
    LLMRequestError,
    Usage,
    kept_text,
)
from nasstudio.predict.llm.llmas import LlmasTemplate
from nasstudio.predict.llm.parser import (
    ParsedAnswer,
    numbers_in,
    parse_bleu,
    parse_llmas_answer,
    summarise,
)
from nasstudio.predict.llm.prompt import (
    Demonstration,
    NewPrompt,
    Prompt,
    current_prompt,
    format_arch,
)
from nasstudio.space import Architecture
from nasstudio.store import BLEU_VALID, GFLOPS, Project

LLM_KIND = "llm"
BLEU_RANGE = (0.0, 100.0)
# Predictions arriving closer together than this are recorded together, in one transaction.
BATCH_S = 0.2
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class LLMPrediction(PredictionResult):
    """A prediction with what it cost. ``value`` is the mean of the parsed samples."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    cached: int = 0  # samples served from the cache
    answers: tuple[str, ...] = ()


class DemoPoolError(ValueError):
    """A restricted demonstration pool that names no usable demonstration."""


class NothingPredicted(RuntimeError):
    """A prediction job in which every query failed: it ends failed, not done."""


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
    complete. The client bounds concurrency; closing the iterator cancels what is in flight.
    ``EndpointUnreachable`` (the client's, when the endpoint is down) ends it."""
    if samples < 1:
        raise ValueError(f"samples must be 1 or more, got {samples}")

    async def one(query: Demonstration) -> LLMPrediction:
        messages = prompt.messages(query, pool)
        # An llmas prompt's version is its template's: how it was filled is the prediction's.
        filling = prompt.filling(query, pool) if isinstance(prompt, LlmasTemplate) else None
        read = _answer_rule(client.profile, bleu_range, query)
        outcomes = await asyncio.gather(
            *(_ask(client, messages, s, read) for s in range(samples)), return_exceptions=True
        )
        for outcome in outcomes:  # request failures are in the samples; bugs propagate
            if isinstance(outcome, BaseException):
                raise outcome
        return _result(query.arch.id, client.profile, outcomes, filling)

    # Queries start a few more than the client lets through at a time, not all at once: each
    # renders its prompt when it starts, and thousands at once would hold up the event loop.
    window = 2 * client.profile.concurrency
    waiting = iter(queries)
    running: set[asyncio.Task] = set()
    done: list[asyncio.Task] = []
    try:
        while True:
            while len(running) < window and (query := next(waiting, None)) is not None:
                running.add(asyncio.ensure_future(one(query)))
            if not running:
                return
            finished, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            done = list(finished)
            while done:
                yield done.pop().result()
    finally:
        for task in running:
            task.cancel()
        # Tasks that ended but were not yielded (one raised first) are collected too: their
        # errors are the one already raised, not news for the event loop's log.
        await asyncio.gather(*running, *done, return_exceptions=True)


async def batched(items: AsyncIterator[T], interval: float = BATCH_S) -> AsyncIterator[list[T]]:
    """What ``items`` produces, in lists: the first item at once, then at most one list every
    ``interval`` seconds. Closing this iterator cancels ``items``."""
    loop = asyncio.get_running_loop()
    inbox: list[T] = []
    arrived = asyncio.Event()

    async def pump() -> None:
        try:
            async for item in items:
                inbox.append(item)
                arrived.set()
        finally:
            arrived.set()

    task = asyncio.ensure_future(pump())
    last = -interval
    try:
        while not task.done() or inbox:
            await arrived.wait()
            arrived.clear()
            if (wait := last + interval - loop.time()) > 0:
                await asyncio.wait([task], timeout=wait)  # gather more, unless all arrived
            if inbox:
                last = loop.time()
                batch = inbox[:]
                inbox.clear()
                yield batch
        task.result()  # raises what ``items`` raised
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@dataclass(frozen=True, slots=True)
class _Sample:
    """One sample's answers as they came, each with how the answer rule read it (only the last
    can hold a value), and the request failure that ended it, if one did."""

    answers: tuple[tuple[Completion, ParsedAnswer], ...]
    error: LLMRequestError | None = None
    gave_up: bool = False  # every ask allowed was answered, and the rule rejected each answer

    @property
    def problems(self) -> list[str]:
        """Why this sample has no value (nothing when it has one)."""
        if self.error is not None:
            body = self.error.body
            return [f"{self.error}; the body: {body}" if body else str(self.error)]
        if self.gave_up:
            return [f"gave up after {len(self.answers)} asks: no answer started with a number"]
        last = self.answers[-1][1]
        return [] if last.value is not None else [last.problem or "no value in the answer"]


def _answer_rule(
    profile: LLMProfile, bleu_range: tuple[float, float], query: Demonstration
) -> Callable[[str], ParsedAnswer]:
    """How the profile's decoding preset reads an answer."""
    if profile.decoding == LLMAS_DECODING:
        return parse_llmas_answer
    # An answer that echoes the query's hyperparameters (512, 3072, 6) is not a prediction.
    copied = numbers_in(format_arch(query))
    return lambda text: parse_bleu(text, *bleu_range, copied=copied)


async def _ask(
    client: LLMClient,
    messages: list[dict[str, str]],
    sample: int,
    read: Callable[[str], ParsedAnswer],
) -> _Sample:
    """One sample: the same request again while ``read`` finds no value in the answer, at most
    ``profile.max_asks`` times; counted in the client's usage."""
    answers: list[tuple[Completion, ParsedAnswer]] = []
    for ask in range(client.profile.max_asks):
        try:
            completion = await client.complete(messages, sample, again=ask > 0)
        except LLMRequestError as error:
            return _Sample(tuple(answers), error)
        answers.append((completion, read(completion.text)))
        if answers[-1][1].value is not None:
            break
    if len(answers) > 1:
        client.usage.asked_again += 1
    gave_up = answers[-1][1].value is None and client.profile.max_asks > 1
    client.usage.gave_up += int(gave_up)
    return _Sample(tuple(answers), gave_up=gave_up)


def _result(
    arch_id: str,
    profile: LLMProfile,
    samples: Sequence[_Sample],
    llmas_filling: Mapping[str, Any] | None = None,
) -> LLMPrediction:
    completions = [c for s in samples for c, _ in s.answers]
    parsed = [p for s in samples for _, p in s.answers]
    values = [p.value for p in parsed if p.value is not None]
    problems = [problem for s in samples for problem in s.problems]
    tokens_in = sum(c.input_tokens for c in completions)
    tokens_out = sum(c.output_tokens for c in completions)
    cost = sum(c.cost for c in completions)
    provenance: dict[str, Any] = {
        "profile": profile.name,
        "model": profile.model,
        "base_url": profile.base_url,
        "decoding": profile.decoding,
        "temperature": profile.sent_temperature,  # None: the endpoint's default
        "max_tokens": profile.sent_max_tokens,
        "samples": len(samples),
        "answers": [c.text for c in completions],
        "values": [p.value for p in parsed],
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "cost": cost,
        "cached": sum(c.cached for c in completions),
    }
    if llmas_filling is not None:
        provenance["llmas"] = dict(llmas_filling)
    if profile.max_asks > 1:  # the answers of each sample, asked again included
        provenance["asks"] = [len(s.answers) for s in samples]
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


def failure_text(failure: LLMPrediction) -> str:
    """Why ``failure`` has no value, with its answers whole (each up to 64 KB), for a log."""
    answers = "; ".join(repr(kept_text(a)) for a in failure.answers) or "none"
    return f"no prediction: {failure.error}; answers: {answers}"


def asked_again_note(profile: LLMProfile, usage: Usage) -> str:
    """How many answers the preset's answer rule asked again and gave up on ('' for a preset
    that asks once), for a job's last log line."""
    if profile.max_asks == 1:
        return ""
    return (
        f"; {profile.decoding} answer rule: asked again {usage.asked_again}, "
        f"gave up {usage.gave_up} (after {profile.max_asks} asks)"
    )


class LLMPredictor:
    """The Predictor protocol over LLM-PP: a profile, a prompt and a pool of demonstrations.
    A queried architecture's GFLOPS come from ``gflops`` (its id to the value the project
    shows), else are computed for the task's vocabulary."""

    kind = LLM_KIND
    metric = BLEU_VALID

    def __init__(
        self,
        profile: LLMProfile,
        prompt: Prompt | LlmasTemplate,
        pool: Sequence[Demonstration],
        vocab_size: int,
        samples: int = 1,
        cache: ResponseCache | None = None,
        log: Callable[[str], None] | None = None,
        gflops: Mapping[str, float] | None = None,
        retry_base_delay: float = 1.0,
    ) -> None:
        self.profile, self.prompt, self.pool = profile, prompt, list(pool)
        self.vocab_size, self.samples = vocab_size, samples
        self.cache, self.log = cache, log
        self.gflops = gflops or {}
        self.retry_base_delay = retry_base_delay
        self.usage = Usage()

    @property
    def name(self) -> str:
        return self.profile.predictor_name

    def _query(self, arch: Architecture) -> Demonstration:
        gflops = self.gflops.get(arch.id)
        if gflops is None:
            gflops = efficiency(arch, self.vocab_size).gflops
        return Demonstration(arch, gflops)

    async def stream(self, archs: Sequence[Architecture]) -> AsyncIterator[LLMPrediction]:
        """Predictions as they complete; ``usage`` counts what was spent so far."""
        client = LLMClient(self.profile, self.cache, self.log, self.retry_base_delay)
        self.usage = client.usage
        queries = [self._query(a) for a in archs]
        async with client:
            async for result in predict_stream(
                client, self.prompt, queries, self.pool, self.samples
            ):
                yield result

    async def predict_async(self, archs: Sequence[Architecture]) -> list[LLMPrediction]:
        by_id = {r.arch_id: r async for r in self.stream(archs)}
        return [by_id[a.id] for a in archs]

    def predict(self, archs: Sequence[Architecture]) -> list[LLMPrediction]:
        """For callers without an event loop (the protocol is synchronous): a private one."""
        return asyncio.run(self.predict_async(archs))


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

    def restricted_pool(self, ids: Sequence[str], source: str = "") -> list[Demonstration]:
        """The demonstrations ``ids`` name, in their order (as llmas keeps a seed's file order):
        each an architecture of the task with a measured BLEU. ``source`` names where the ids
        came from, for the errors."""
        where = f" (from {source})" if source else ""
        ids = list(dict.fromkeys(ids))
        if not ids:
            raise DemoPoolError(f"the demonstration pool{where} is empty: name at least one id")
        unknown = [i for i in ids if i not in self.archs]
        if unknown:
            raise DemoPoolError(
                f"{len(unknown)} demonstration id(s){where} are not architectures of task "
                f"'{self.task}': {', '.join(unknown[:5])}"
            )
        unmeasured = [i for i in ids if i not in self.bleu]
        if unmeasured:
            raise DemoPoolError(
                f"{len(unmeasured)} demonstration id(s){where} have no measured {BLEU_VALID} in "
                f"task '{self.task}', so they cannot be demonstrations: {', '.join(unmeasured[:5])}"
            )
        return self.demonstrations(ids)

    def queries(self, ids: Sequence[str]) -> list[Demonstration]:
        missing = [i for i in ids if i not in self.archs]
        if missing:
            raise KeyError(f"architecture {missing[0]} is not in task '{self.task}'")
        return [Demonstration(self.archs[i], self.gflops[i]) for i in ids]


@job_defaults("async")
async def llm_predict_job(
    handle: JobHandle,
    project: Project,
    task: str,
    arch_ids: Sequence[str],
    profile: LLMProfile,
    prompt: Prompt | LlmasTemplate | None = None,
    samples: int = 1,
    demo_ids: Sequence[str] | None = None,
    cache_path: str | Path | None = None,
    use_cache: bool = True,
    retry_base_delay: float = 1.0,
) -> AsyncIterator[Any]:
    """Predict the BLEU of ``arch_ids`` with LLM-PP; yields the predictions (``Predictions``
    records) in batches as they arrive, and last ``Returned(LLMJobSummary)``.

    Demonstrations come from the task's architectures with a measured ``bleu_valid`` (only
    ``demo_ids`` when given, in their order, each of which must have one; never the query
    itself). The prompt defaults to the task's current
    one and is saved in the project; every prediction records its version. A failed or
    unreadable answer is logged (with the raw text, up to 64 KB) and counted, not stored as a
    value. The job fails when the endpoint cannot be reached, or when nothing was predicted.
    """
    # Reading a big task takes seconds: not on the event loop, which in the app is the GUI's.
    known = await asyncio.to_thread(TaskArchitectures.load, project, task)
    queries = known.queries(arch_ids)  # checks the ids
    pool = known.demonstrations() if demo_ids is None else known.restricted_pool(demo_ids)
    prompt = prompt or current_prompt(project, task)
    version = prompt.version
    yield NewPrompt(prompt)
    cache = ResponseCache(cache_path) if use_cache else None
    predictor = LLMPredictor(
        profile,
        prompt,
        pool,
        project.task(task).vocab_size,
        samples,
        cache,
        handle.log,
        known.gflops,
        retry_base_delay,
    )
    handle.log(
        f"LLM-PP: {len(queries)} architectures of {task} with {profile.model} at "
        f"{profile.base_url} (profile {profile.name}, concurrency {profile.concurrency}), "
        f"prompt {version}, {len(predictor.pool)} architectures with BLEU to draw "
        "demonstrations from"
    )
    if isinstance(prompt, LlmasTemplate):
        handle.log(prompt.fill_note())
    done = predicted = 0
    handle.progress(0.0, f"0/{len(queries)} predicted")
    try:
        async for batch in batched(predictor.stream([q.arch for q in queries])):
            rows = to_predictions(predictor, task, batch, version)
            for failure in (r for r in batch if not r.ok):
                handle.log(f"{failure.arch_id}: {failure_text(failure)}")
            done += len(batch)
            predicted += len(rows)
            usage = predictor.usage
            handle.progress(
                done / max(len(queries), 1),
                f"{done}/{len(queries)} predicted, {usage.requests} requests, "
                f"cost {usage.cost:.4f}",
            )
            if rows:
                yield Predictions(rows)
    finally:
        if cache is not None:
            cache.close()
    usage = predictor.usage
    handle.log(
        f"done: {predicted} predicted, {done - predicted} failed; {usage.requests} requests "
        f"({usage.retries} retries, {usage.cache_hits} from the cache), "
        f"{usage.input_tokens} input and {usage.output_tokens} output tokens, "
        f"cost {usage.cost:.4f}{asked_again_note(profile, usage)}"
    )
    if queries and not predicted:
        raise NothingPredicted(
            f"none of the {len(queries)} architectures got a prediction from {profile.model} at "
            f"{profile.base_url}; the job log says why for each"
        )
    yield Returned(
        LLMJobSummary(profile.predictor_name, version, predicted, done - predicted, usage)
    )
