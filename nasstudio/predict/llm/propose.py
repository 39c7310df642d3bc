"""The LLM as proposer: llmas's search-agent template (``default_flops``) asks for k architectures
at a GFLOPs target; what the LLM answers is parsed, checked against the task's space and added
as architectures of origin ``llm-proposed`` (for instance, a search's initial population).

The template is filled as llmas fills its predictor templates (``llmas.py``): 5 task examples
drawn from a parallel corpus with the seed, the first 10 demonstrations of the pool in its order
as ``arch_info`` lines with ``GFLOPS`` and ``BLEU``, plus the two values only this template has:
the GFLOPs target and the number of architectures to generate. It is sent as one user message.
llmas publishes the template but not the code that sends it, nor a tolerance on the GFLOPs:
here a proposal off the target is reported with how far off it is, and rejected only beyond a
tolerance the user gives.

An answer is read for HAT SubTransformer keys in any layout a model tends to use (the
demonstrations' ``key: value`` lines, list markers, quotes, JSON objects); a key that comes again
starts the next architecture, and ``GFLOPS``/``BLEU`` numbers after an architecture are the
model's estimates for it. An answer with no architecture at all is an error that quotes it, and
nothing is written; each architecture that cannot be used is reported with why.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nasstudio.jobs import JobHandle
from nasstudio.jobs.async_executor import Returned
from nasstudio.jobs.model import job_defaults
from nasstudio.jobs.records import NewArchitectures
from nasstudio.metrics import efficiency
from nasstudio.predict.llm.cache import ResponseCache
from nasstudio.predict.llm.client import (
    PROJECT_DECODING,
    LLMClient,
    LLMProfile,
    Usage,
    kept_text,
)
from nasstudio.predict.llm.job import TaskArchitectures
from nasstudio.predict.llm.llmas import (
    DEMONSTRATION_COUNT,
    DEMONSTRATIONS_PLACEHOLDER,
    SEARCH_AGENT_TEMPLATE,
    TASK_EXAMPLES_PLACEHOLDER,
    LlmasArchitecture,
    TaskExamples,
    format_demonstrations,
    format_task_examples,
)
from nasstudio.predict.llm.prompt import Demonstration
from nasstudio.space import Architecture, HatConfigError, get_space, to_arch_info
from nasstudio.space.hat import HAT_KEY_ORDER, from_hat_config
from nasstudio.store import Project

LLM_PROPOSED = "llm-proposed"
CONSTRAINT_PLACEHOLDER = "$$$constraint_value$$$"
COUNT_PLACEHOLDER = "$$$num_arch_to_generate$$$"
# An architecture's lines, its estimates and some words take about 250 tokens: room for each
# asked one, so that the last is not cut off.
TOKENS_PER_ARCHITECTURE = 300
EXCERPT_CHARS = 300

_KEYS = "|".join(re.escape(k) for k in HAT_KEY_ORDER)
# A key, optionally quoted, then ':' or '=' and its value: a list, a number, or one word (which
# then cannot be read, and is reported).
_KEY_VALUE = re.compile(
    rf"(?P<key>{_KEYS})['\"`*]*\s*[:=]\s*(?P<value>\[[^\][]*\]|-?\d+(?:\.\d+)?|[^\s,}}]+)"
)
# The model's estimates: "GFLOPS: 3.0", "Estimated BLEU: 27.9", "BLEU score = 28".
_ESTIMATE = re.compile(
    r"\b(?P<name>BLEU|GFLOPS?)\b(?:\s+score)?['\"`*)]*\s*(?:[:=]|of|is|≈|~)?\s*(?P<value>\d+(?:\.\d+)?)",
    re.IGNORECASE,
)


class ProposalError(ValueError):
    """A template that cannot ask for proposals, or an answer that holds no architecture."""


class NothingProposed(RuntimeError):
    """Every architecture the LLM proposed was rejected: the job ends failed, saying why."""


def read_proposer_template(path: str | Path) -> str:
    """The text of llmas's search-agent template: a file, or a template folder holding
    ``default_flops``; it must hold the demonstrations, target and count placeholders."""
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / SEARCH_AGENT_TEMPLATE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProposalError(f"{path}: no such template file") from None
    except UnicodeDecodeError as exc:
        raise ProposalError(f"{path}: not UTF-8 text ({exc.reason})") from None
    needed = (DEMONSTRATIONS_PLACEHOLDER, CONSTRAINT_PLACEHOLDER, COUNT_PLACEHOLDER)
    missing = [p for p in needed if p not in text]
    if missing:
        raise ProposalError(
            f"{path}: not an llmas search-agent template (such as {SEARCH_AGENT_TEMPLATE}): "
            f"it lacks {', '.join(missing)}"
        )
    return text


def render_proposal(
    template: str,
    demonstrations: Sequence[Demonstration],
    target_gflops: float,
    count: int,
    examples: Sequence[tuple[str, str]] = (),
) -> str:
    """The user message: the template with its task examples, the first 10 demonstrations
    (``arch_info`` lines, ``GFLOPS``, ``BLEU``), the GFLOPs target and the count."""
    shown = [
        LlmasArchitecture(tuple(to_arch_info(d.arch)), d.gflops, d.bleu)
        for d in demonstrations[:DEMONSTRATION_COUNT]
    ]
    filled = template.replace(TASK_EXAMPLES_PLACEHOLDER, format_task_examples(examples))
    filled = filled.replace(DEMONSTRATIONS_PLACEHOLDER, format_demonstrations(shown))
    filled = filled.replace(CONSTRAINT_PLACEHOLDER, f"{target_gflops:g}")
    return filled.replace(COUNT_PLACEHOLDER, str(count))


# --- reading the answer -------------------------------------------------------------------------


@dataclass
class ProposedBlock:
    """One architecture as the answer wrote it: its keys' raw values and the estimates after it."""

    values: dict[str, str] = field(default_factory=dict)
    estimates: dict[str, float] = field(default_factory=dict)

    def config(self) -> tuple[dict[str, Any], list[str]]:
        """The HAT config, and the values that could not be read."""
        config, unreadable = {}, []
        for key, text in self.values.items():
            try:
                config[key] = json.loads(text)
            except json.JSONDecodeError:
                unreadable.append(f"cannot read the value of {key!r}: {text!r}")
        return config, unreadable


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else f"{flat[:limit]}…"


def parse_proposals(answer: str) -> list[ProposedBlock]:
    """The architectures in ``answer``, in order; ``ProposalError`` quoting it when it holds
    none."""
    events = [(m.start(), "key", m["key"], m["value"]) for m in _KEY_VALUE.finditer(answer)]
    events += [
        (m.start(), "estimate", _estimate_name(m["name"]), m["value"])
        for m in _ESTIMATE.finditer(answer)
    ]
    blocks: list[ProposedBlock] = []
    pending: dict[str, float] = {}  # estimates written before their architecture's lines
    for _, kind, name, value in sorted(events):
        current = blocks[-1] if blocks else None
        if kind == "key":
            if current is None or name in current.values:
                current = ProposedBlock(estimates=pending)
                blocks.append(current)
                pending = {}
            current.values[name] = value.rstrip(",;")
        elif current is not None and name not in current.estimates:
            current.estimates[name] = float(value)
        else:
            pending[name] = float(value)
    if not blocks:
        raise ProposalError(
            "the LLM's answer holds no architecture (no line such as "
            f"'{HAT_KEY_ORDER[0]}: 512'); it answered: {excerpt(answer)!r}"
        )
    return blocks


def _estimate_name(word: str) -> str:
    return "bleu" if word.upper() == "BLEU" else "gflops"


# --- checking the proposals ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Proposal:
    """One proposed architecture (``position``: 1-based in the answer) with its GFLOPs, the
    model's estimates, and why it cannot be used (nothing: it is valid)."""

    position: int
    arch: Architecture | None
    gflops: float | None
    estimates: dict[str, float]
    problems: tuple[str, ...] = ()
    already_in_task: bool = False

    @property
    def valid(self) -> bool:
        return self.arch is not None and not self.problems

    def describe(self) -> str:
        estimates = ", ".join(
            f"{'BLEU' if k == 'bleu' else 'GFLOPs'} {v:g}" for k, v in self.estimates.items()
        )
        said = f" (the LLM's estimate: {estimates})" if estimates else ""
        if not self.valid:
            return f"{self.position}. rejected: {'; '.join(self.problems)}"
        status = "already in the task" if self.already_in_task else "added"
        return f"{self.position}. {status}: {self.arch.id}, {self.gflops:.2f} GFLOPs{said}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "id": self.arch.id if self.arch is not None else None,
            "gflops": self.gflops,
            "estimates": self.estimates,
            "valid": self.valid,
            "already_in_task": self.already_in_task,
            "problems": list(self.problems),
        }


def check_proposals(
    blocks: Sequence[ProposedBlock],
    space_name: str,
    vocab_size: int,
    target_gflops: float,
    count: int,
    tolerance: float | None = None,
    known_ids: frozenset[str] = frozenset(),
) -> list[Proposal]:
    """Each block checked: readable HAT keys, inside ``space_name``, within ``tolerance``
    (a fraction of the target) of ``target_gflops`` when given, not a repeat, among the first
    ``count``."""
    space = get_space(space_name)
    seen: dict[str, int] = {}
    proposals = []
    for position, block in enumerate(blocks, start=1):
        config, problems = block.config()
        arch = gflops = None
        if not problems:
            try:
                arch = from_hat_config(config)
            except HatConfigError as exc:
                problems.append(str(exc))
        if arch is not None:
            if outside := space.problems(arch):
                problems.append(f"outside the space {space_name}: {'; '.join(outside)}")
            gflops = efficiency(arch, vocab_size).gflops
            off = abs(gflops - target_gflops) / target_gflops
            if tolerance is not None and off > tolerance:
                problems.append(
                    f"{gflops:.2f} GFLOPs is {off:.1%} off the target {target_gflops:g} "
                    f"(tolerance {tolerance:.1%})"
                )
            if arch.id in seen:
                problems.append(f"the same architecture as proposal {seen[arch.id]}")
            seen.setdefault(arch.id, position)
        if position > count:
            problems.append(f"more than the {count} asked for")
        proposals.append(
            Proposal(
                position,
                arch,
                gflops,
                dict(block.estimates),
                tuple(problems),
                arch is not None and arch.id in known_ids,
            )
        )
    return proposals


# --- the job ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProposalSummary:
    """What ``propose_job`` returns."""

    task: str
    target_gflops: float
    asked: int
    proposals: tuple[Proposal, ...]
    model: str
    usage: Usage = field(default_factory=Usage)

    @property
    def added(self) -> list[str]:
        return [p.arch.id for p in self.proposals if p.valid and not p.already_in_task]

    @property
    def valid_ids(self) -> list[str]:
        return [p.arch.id for p in self.proposals if p.valid]

    def as_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "target_gflops": self.target_gflops,
            "asked": self.asked,
            "model": self.model,
            "added": self.added,
            "valid": self.valid_ids,
            "origin": LLM_PROPOSED,
            "proposals": [p.as_dict() for p in self.proposals],
            "requests": self.usage.requests,
            "cost": self.usage.cost,
        }


def proposer_profile(profile: LLMProfile, count: int, max_tokens: int | None = None) -> LLMProfile:
    """The profile as the proposer sends it: the project decoding (a predictor preset's answer
    rule wants a number) with room for ``count`` architectures unless ``max_tokens`` says."""
    tokens = max_tokens or max(profile.max_tokens, TOKENS_PER_ARCHITECTURE * count)
    return replace(profile, decoding=PROJECT_DECODING, max_tokens=tokens)


@job_defaults("async")
async def propose_job(
    handle: JobHandle,
    project: Project,
    task: str,
    profile: LLMProfile,
    template: str,
    target_gflops: float,
    count: int,
    examples: TaskExamples | None = None,
    seed: int = 0,
    demo_ids: Sequence[str] | None = None,
    tolerance: float | None = None,
    max_tokens: int | None = None,
    cache_path: str | Path | None = None,
    use_cache: bool = True,
) -> AsyncIterator[Any]:
    """Ask the LLM for ``count`` architectures of ``task`` at ``target_gflops`` with the
    search-agent ``template``; yields the valid new ones as ``NewArchitectures`` of origin
    ``llm-proposed``, then ``Returned(ProposalSummary)``. Fails, writing nothing, when the answer
    holds no architecture or when every proposal is rejected."""
    if count < 1 or target_gflops <= 0:
        raise ValueError(
            f"ask for 1 or more architectures at a positive GFLOPs target, got "
            f"{count} at {target_gflops}"
        )
    known = await asyncio.to_thread(TaskArchitectures.load, project, task)
    pool = known.demonstrations() if demo_ids is None else known.restricted_pool(demo_ids)
    if not pool:
        raise ProposalError(
            f"task '{task}' has no architecture with a measured BLEU to show the LLM as an "
            "example: import or train some first"
        )
    pairs: tuple[tuple[str, str], ...] = ()
    if TASK_EXAMPLES_PLACEHOLDER in template:
        if examples is None:
            raise ProposalError(
                "the template shows 5 task examples drawn from a parallel corpus: give its "
                "source and target files (--examples SOURCE TARGET)"
            )
        # Reading the corpus takes a moment: not on the event loop, which in the app is the GUI's.
        pairs = (await asyncio.to_thread(examples.pairs, seed))[1]
    message = render_proposal(template, pool, target_gflops, count, pairs)
    sent = proposer_profile(profile, count, max_tokens)
    handle.log(
        f"asking {sent.model} at {sent.base_url} for {count} architectures of {task} at "
        f"{target_gflops:g} GFLOPs, showing {min(len(pool), DEMONSTRATION_COUNT)} with BLEU"
    )
    handle.progress(0.0, "waiting for the LLM")
    cache = ResponseCache(cache_path) if use_cache else None
    try:
        async with LLMClient(sent, cache, handle.log) as client:
            completion = await client.complete([{"role": "user", "content": message}])
    finally:
        if cache is not None:
            cache.close()
    handle.log(f"the LLM answered: {kept_text(completion.text)}")
    task_spec = project.task(task)
    proposals = check_proposals(
        parse_proposals(completion.text),
        task_spec.space,
        task_spec.vocab_size,
        target_gflops,
        count,
        tolerance,
        frozenset(known.archs),
    )
    for proposal in proposals:
        handle.log(proposal.describe())
    summary = ProposalSummary(
        task, target_gflops, count, tuple(proposals), sent.predictor_name, client.usage
    )
    if not summary.valid_ids:
        reasons = " | ".join(p.describe() for p in proposals)
        raise NothingProposed(
            f"none of the {len(proposals)} proposed architectures is usable: {reasons}"
        )
    new = [p.arch for p in proposals if p.valid and not p.already_in_task]
    if new:
        yield NewArchitectures(task, tuple(new), LLM_PROPOSED)
    handle.progress(1.0, f"{len(new)} added, {len(proposals) - len(summary.valid_ids)} rejected")
    yield Returned(summary)
