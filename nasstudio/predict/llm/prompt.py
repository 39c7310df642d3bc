"""The LLM-PP prompt: four editable sections, the generated demonstrations, and versions.

A prompt is a role (the system message), numbered instructions, hyperparameter definitions and
demonstration settings, all templates with ``{placeholders}`` filled from the task's variables.
The user message is the instructions, the definitions, the demonstrations (architectures with
their GFLOPS and BLEU) and the test architecture ending in ``BLEU: ``.

Default texts live in ``nasstudio/predict/llm/templates/`` (package data, read through
importlib.resources so that editable and normal installs behave the same).

A prompt's version is a short hash of its rendered fixed part (sections after substitution and
the demonstration settings), not of the demonstrations chosen for one query: every prediction
made with the same prompt carries the same version.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nasstudio.space import Architecture, average_features
from nasstudio.space.hat import to_hat_config
from nasstudio.store import Project, Task

if TYPE_CHECKING:
    from nasstudio.predict.llm.llmas import LlmasTemplate

# Bump when the way sections are assembled into messages changes: it is part of every version.
LAYOUT = 1
DEFINITIONS_HEADING = "Hyperparameter definitions:"
DEMONSTRATIONS_HEADING = "Demonstrations:"
QUERY_HEADING = "Test architecture:"
EXAMPLES_PLACEHOLDER = "examples"
GENERIC = "generic"
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class PromptError(ValueError):
    """A prompt that cannot be rendered: names the section and what is wrong."""


class DemoStrategy(StrEnum):
    RANDOM = "random"  # a fixed random draw (seeded): the same demonstrations for every query
    SPREAD = "spread"  # evenly spread over GFLOPS
    NEAREST = "nearest"  # nearest to the query in HAT's averaged features


@dataclass(frozen=True, slots=True)
class DemoSettings:
    """How many demonstrations and how they are chosen."""

    k: int = 10
    strategy: DemoStrategy = DemoStrategy.RANDOM
    seed: int = 0

    def __post_init__(self) -> None:
        if self.k < 0:
            raise PromptError(f"demonstrations: k must be 0 or more, got {self.k}")
        try:
            object.__setattr__(self, "strategy", DemoStrategy(self.strategy))
        except ValueError:
            choices = ", ".join(s.value for s in DemoStrategy)
            raise PromptError(
                f"demonstrations: strategy must be one of {choices}, got {self.strategy!r}"
            ) from None


@dataclass(frozen=True, slots=True)
class PromptSections:
    """The four editable sections; texts are templates with ``{placeholders}``."""

    role: str
    instructions: tuple[str, ...]
    definitions: str
    demonstrations: DemoSettings = field(default_factory=DemoSettings)

    def __post_init__(self) -> None:
        object.__setattr__(self, "instructions", tuple(self.instructions))


@dataclass(frozen=True, slots=True)
class Demonstration:
    """An architecture with its GFLOPS and, for a demonstration (not a query), its BLEU."""

    arch: Architecture
    gflops: float
    bleu: float | None = None


@dataclass(frozen=True, slots=True)
class RenderedSections:
    """The fixed part of a prompt after substitution: what its version is a hash of."""

    system: str
    instructions: tuple[str, ...]
    definitions: str
    demonstrations: DemoSettings


@dataclass(frozen=True)
class Prompt:
    """Sections plus what fills them: the task's variables and optional sentence pairs."""

    task: str
    sections: PromptSections
    variables: Mapping[str, str]
    examples: tuple[tuple[str, str], ...] = ()
    name: str = ""

    def render_sections(self) -> RenderedSections:
        values = {**self.variables, EXAMPLES_PLACEHOLDER: self._examples_text()}
        instructions = tuple(
            _substitute(text, values, f"instruction {i}")
            for i, text in enumerate(self.sections.instructions, start=1)
            # Example pairs are optional: their instruction goes when there are none.
            if self.examples or "{" + EXAMPLES_PLACEHOLDER + "}" not in text
        )
        return RenderedSections(
            system=_substitute(self.sections.role, values, "role"),
            instructions=instructions,
            definitions=_substitute(self.sections.definitions, values, "definitions"),
            demonstrations=self.sections.demonstrations,
        )

    @property
    def version(self) -> str:
        rendered = self.render_sections()
        payload = {
            "layout": LAYOUT,
            "system": rendered.system,
            "instructions": rendered.instructions,
            "definitions": rendered.definitions,
            "demonstrations": _settings_dict(rendered.demonstrations),
        }
        canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def messages(self, query: Demonstration, pool: Sequence[Demonstration]) -> list[dict[str, str]]:
        """The chat messages for ``query``, with demonstrations chosen from ``pool``."""
        rendered = self.render_sections()
        demos = select_demonstrations(rendered.demonstrations, query, pool)
        blocks = []
        if rendered.instructions:
            blocks.append(
                "\n".join(f"{i}. {text}" for i, text in enumerate(rendered.instructions, 1))
            )
        if rendered.definitions.strip():
            blocks.append(f"{DEFINITIONS_HEADING}\n{rendered.definitions.strip()}")
        if demos:
            blocks.append(
                DEMONSTRATIONS_HEADING + "\n\n" + "\n\n".join(format_arch(d) for d in demos)
            )
        blocks.append(f"{QUERY_HEADING}\n\n{format_arch(replace(query, bleu=None))}")
        return [
            {"role": "system", "content": rendered.system},
            {"role": "user", "content": "\n\n".join(blocks)},
        ]

    def with_sections(self, **changes: Any) -> Prompt:
        """A copy with some sections replaced (``role=...``, ``demonstrations=...``)."""
        return replace(self, sections=replace(self.sections, **changes))

    def to_json(self) -> dict[str, Any]:
        """Everything needed to rebuild this prompt exactly (what the store keeps)."""
        return {
            "task": self.task,
            "name": self.name,
            "role": self.sections.role,
            "instructions": list(self.sections.instructions),
            "definitions": self.sections.definitions,
            "demonstrations": _settings_dict(self.sections.demonstrations),
            "variables": dict(self.variables),
            "examples": [list(pair) for pair in self.examples],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Prompt:
        try:
            sections = PromptSections(
                role=str(data["role"]),
                instructions=tuple(str(t) for t in data["instructions"]),
                definitions=str(data["definitions"]),
                demonstrations=DemoSettings(**data["demonstrations"]),
            )
            return cls(
                task=str(data["task"]),
                sections=sections,
                variables={str(k): str(v) for k, v in data["variables"].items()},
                examples=tuple((str(s), str(t)) for s, t in data.get("examples", ())),
                name=str(data.get("name", "")),
            )
        except KeyError as exc:
            raise PromptError(f"stored prompt lacks the field {exc.args[0]!r}") from None
        except (TypeError, ValueError, AttributeError) as exc:
            raise PromptError(f"stored prompt is malformed: {exc}") from None

    def _examples_text(self) -> str:
        source = self.variables.get("source_language", "Source")
        target = self.variables.get("target_language", "Target")
        return "\n".join(f"   {source}: {s}\n   {target}: {t}" for s, t in self.examples)


def _settings_dict(settings: DemoSettings) -> dict[str, Any]:
    return {"k": settings.k, "strategy": settings.strategy.value, "seed": settings.seed}


def _substitute(text: str, values: Mapping[str, str], where: str) -> str:
    """Fill ``{name}`` placeholders; other braces are left alone so users need not escape."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            known = ", ".join("{" + k + "}" for k in sorted(values))
            raise PromptError(f"{where}: unknown placeholder {{{name}}}; known are {known}")
        return values[name]

    return _PLACEHOLDER.sub(fill, text)


# --- architectures as text ----------------------------------------------------------------------


def format_arch(item: Demonstration) -> str:
    """HAT keys as ``key: value`` lines, then its GFLOPS and BLEU lines (see ``arch_text``)."""
    lines = [f"{key}: {json.dumps(value)}" for key, value in to_hat_config(item.arch).items()]
    return arch_text(lines, item.gflops, item.bleu)


def arch_text(config_lines: Sequence[str], gflops: float, bleu: float | None) -> str:
    """An architecture's lines, then ``GFLOPS: x.x`` and ``BLEU: yy.yy`` (or ``BLEU: `` for a
    query, which the model completes): llmas's layout, shared by the project's prompts."""
    bleu_line = "BLEU: " if bleu is None else f"BLEU: {bleu:.2f}"
    return "\n".join([*config_lines, f"GFLOPS: {gflops:.1f}", bleu_line])


def select_demonstrations(
    settings: DemoSettings, query: Demonstration, pool: Sequence[Demonstration]
) -> list[Demonstration]:
    """Choose ``settings.k`` demonstrations from ``pool`` (never the query itself).

    random: a seeded draw, identical for every query of a pool; spread: evenly over GFLOPS,
    listed by GFLOPS; nearest: the closest in standardised averaged features, nearest last so
    that it sits next to the query.
    """
    candidates = sorted(
        (d for d in pool if d.arch.id != query.arch.id and d.bleu is not None),
        key=lambda d: d.arch.id,  # a pool's order must not change the selection
    )
    k = min(settings.k, len(candidates))
    if k == 0:
        return []
    if settings.strategy == DemoStrategy.RANDOM:
        return random.Random(settings.seed).sample(candidates, k)
    if settings.strategy == DemoStrategy.SPREAD:
        by_cost = sorted(candidates, key=lambda d: (d.gflops, d.arch.id))
        picks = np.unique(np.round(np.linspace(0, len(by_cost) - 1, k)).astype(int))
        return [by_cost[i] for i in picks]
    features = np.array([average_features(d.arch) for d in candidates])
    scale = features.std(axis=0)
    scale[scale == 0] = 1.0
    distance = np.linalg.norm((features - average_features(query.arch)) / scale, axis=1)
    nearest = np.argsort(distance, kind="stable")[:k]
    return [candidates[i] for i in nearest[::-1]]


# --- defaults, variants and storage -------------------------------------------------------------


@cache
def _template(name: str) -> dict[str, Any]:
    text = resources.files("nasstudio.predict.llm").joinpath(f"templates/{name}").read_text("utf-8")
    return tomllib.loads(text)


def task_variables(task: Task) -> dict[str, str]:
    """The placeholders' values for ``task``: its own template, else the generic one."""
    tasks = _template("tasks.toml")
    if task.name in tasks:
        return dict(tasks[task.name])
    return {"task_name": task.description or task.name, **tasks[GENERIC]}


def default_sections() -> PromptSections:
    data = _template("sections.toml")
    return PromptSections(
        role=data["role"],
        instructions=tuple(data["instructions"]),
        definitions=data["definitions"],
        demonstrations=DemoSettings(**data["demonstrations"]),
    )


def default_prompt(task: Task, examples: Sequence[tuple[str, str]] = ()) -> Prompt:
    """The default prompt for ``task`` (a WMT task's own variables, or the generic ones)."""
    return Prompt(
        task=task.name,
        sections=default_sections(),
        variables=task_variables(task),
        examples=tuple(examples),
        name=f"{task.name} default",
    )


def ablation_variants(prompt: Prompt, ks: Sequence[int] = (1, 3, 5)) -> list[tuple[str, Prompt]]:
    """The paper's ablations: each instruction removed in turn, no instructions, no
    hyperparameter definitions, and other numbers of demonstrations."""
    sections = prompt.sections
    variants = [
        (
            f"without instruction {i + 1}",
            prompt.with_sections(
                instructions=sections.instructions[:i] + sections.instructions[i + 1 :]
            ),
        )
        for i in range(len(sections.instructions))
    ]
    variants.append(("no instructions", prompt.with_sections(instructions=())))
    variants.append(("no definitions", prompt.with_sections(definitions="")))
    variants += [
        (f"k={k}", prompt.with_sections(demonstrations=replace(sections.demonstrations, k=k)))
        for k in ks
        if k != sections.demonstrations.k
    ]
    return [(label, replace(p, name=f"{prompt.name} ({label})")) for label, p in variants]


def save_prompt(project: Project, prompt: Prompt, current: bool = False) -> str:
    """Record ``prompt`` in the project's prompts table; returns its version.

    ``current`` makes it the task's current prompt (what a prediction uses when it is given
    none). Jobs save the prompts they use without making them current, so that evaluating an
    ablation variant does not change what the next prediction uses.
    """
    version = prompt.version
    data = {**prompt.to_json(), "current": True} if current else prompt.to_json()
    project.save_prompt(version, prompt.name or prompt.task, data, replace=current)
    return version


@dataclass(frozen=True, slots=True)
class NewPrompt:
    """A record (``jobs.records``) that a job yields for the prompt it uses: the runner saves
    it as ``save_prompt`` does, without making it current."""

    prompt: Prompt

    def write(self, project: Project, job_id: int) -> tuple[str, ...]:
        save_prompt(project, self.prompt)
        return ()


def load_prompt(project: Project, version: str) -> Prompt | LlmasTemplate:
    """A stored prompt: the project's sections, or an imported llmas template."""
    from nasstudio.predict.llm.llmas import LlmasTemplate, is_llmas  # llmas imports this module

    record = project.prompt(version)
    if record is None:
        raise KeyError(f"no prompt with version {version} in {project.path}")
    data = record["sections"]
    return LlmasTemplate.from_json(data) if is_llmas(data) else Prompt.from_json(data)


def current_prompt(project: Project, task: str) -> Prompt:
    """The prompt last saved as current for ``task``, else the task's default."""
    for record in reversed(project.prompts()):
        sections = record["sections"]
        # Only the project's own prompts are made current (an llmas template never is).
        if sections.get("task") == task and sections.get("current") and "format" not in sections:
            return Prompt.from_json(sections)
    spec = project.task(task)
    if spec is None:
        raise KeyError(f"no task '{task}' in {project.path}")
    return default_prompt(spec)


def read_example_pairs(
    source: str | Path, target: str | Path, n: int = 3, seed: int = 0, max_words: int = 25
) -> tuple[tuple[str, str], ...]:
    """``n`` sentence pairs drawn (reservoir sampling, seeded) from two line-aligned text files,
    plain or .gz; pairs with an empty or overlong side are skipped."""
    rng = random.Random(seed)
    chosen: list[tuple[str, str]] = []
    seen = 0
    with _open_text(source) as src, _open_text(target) as tgt:
        try:
            for s, t in zip(src, tgt, strict=True):
                s, t = s.strip(), t.strip()
                if not s or not t or max(len(s.split()), len(t.split())) > max_words:
                    continue
                seen += 1
                if len(chosen) < n:
                    chosen.append((s, t))
                elif (j := rng.randrange(seen)) < n:
                    chosen[j] = (s, t)
        except ValueError:  # zip(strict=True): one file ended before the other
            raise PromptError(f"{source} and {target} have different numbers of lines") from None
    return tuple(chosen)


def _open_text(path: str | Path):
    path = Path(path)
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")
