"""llmas's LLM-PP prompt, rendered as llmas's ``gpt_scorer.py`` renders it (the paper's protocol).

A template file holds the whole prompt text with two placeholders: the task examples (sentence
pairs drawn from a parallel corpus with the seed) and the demonstrations (the first 10
architectures of a seed's ``train.jsonl``, in file order). After them come a blank line and the
test architecture ending in ``BLEU: ``. It is sent as one user message, without a system message.

The architecture lines are the files' ``arch_info`` strings as they are, so the text is llmas's
byte for byte (the project's own prompt rewrites them from the parsed architecture, to the same
lines).

A template folder imports as prompts of the project (``LlmasTemplate``, one per predictor
template, stored as ``{"format": "llmas", ...}``). Predicting with one renders it as above: the
demonstrations are the first 10 of the pool in its order, and the task examples are drawn with
the prompt's seed (in an evaluation, each seed's) from a corpus given at prediction time.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from nasstudio.data.corpus import read_lines
from nasstudio.predict.llm.prompt import Demonstration, PromptError, arch_text, save_prompt
from nasstudio.space import to_arch_info
from nasstudio.store import Project, Task
from nasstudio.store.importers import ImportFormatError, read_llmas, read_text_lines

TASK_EXAMPLES_PLACEHOLDER = "$$$task_examples$$$"
DEMONSTRATIONS_PLACEHOLDER = "$$$seedarch_examples$$$"
TASK_EXAMPLE_COUNT = 5
DEMONSTRATION_COUNT = 10
_PLACEHOLDER = re.compile(r"\$\$\$\w+\$\$\$")
LLMAS_FORMAT = "llmas"  # the "format" of a stored llmas prompt's dict
NAME_PREFIX = "llmas/"
SEARCH_AGENT_TEMPLATE = "default_flops"
# llmas's ablation of its prompt, in order: each template adds one part to the one before
# (task_defn and search_dimension_defn are the same text in llmas's published folders).
CUMULATIVE_TEMPLATES = (
    "gpt_scorer_no_instruction",
    "gpt_scorer_task_defn",
    "gpt_scorer_search_dimension_defn",
    "gpt_scorer_dataset_name",
    "gpt_scorer_dataset_examples",
    "gpt_scorer_architecture_paper",
    "gpt_scorer_gigaflops",
    "gpt_scorer_concentrate_statement",
)


class LlmasError(ValueError):
    """An input llmas's procedure cannot render: names the file and what was expected."""


@dataclass(frozen=True, slots=True)
class LlmasArchitecture:
    """One line of an llmas seed-architecture file: its ``arch_info`` lines, GFLOPS and, for a
    demonstration, validation BLEU."""

    arch_info: tuple[str, ...]
    gflops: float
    bleu: float | None = None

    def text(self) -> str:
        return arch_text(self.arch_info, self.gflops, self.bleu)


@dataclass(frozen=True, slots=True)
class LlmasPrompt:
    """A rendered prompt and the corpus lines (0-based) whose pairs it shows as task examples."""

    content: str
    example_line_indices: tuple[int, ...]

    @property
    def messages(self) -> list[dict[str, str]]:
        return [{"role": "user", "content": self.content}]


def read_template(path: str | Path) -> str:
    """A template file's text; it must hold the demonstrations placeholder."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LlmasError(f"{path}: no such template file") from None
    except UnicodeDecodeError as exc:
        raise LlmasError(f"{path}: not UTF-8 text ({exc.reason})") from None
    return check_template(text, str(path))


def check_template(text: str, where: str) -> str:
    """``text`` when it is an llmas predictor template, else an error naming ``where``."""
    expected = f"{DEMONSTRATIONS_PLACEHOLDER} (and optionally {TASK_EXAMPLES_PLACEHOLDER})"
    if DEMONSTRATIONS_PLACEHOLDER not in text:
        raise LlmasError(f"{where}: not an llmas predictor template: expected {expected}")
    # e.g. the search-agent template (default_flops), whose constraint the predictor cannot fill
    unknown = set(_PLACEHOLDER.findall(text)) - {
        TASK_EXAMPLES_PLACEHOLDER,
        DEMONSTRATIONS_PLACEHOLDER,
    }
    if unknown:
        raise LlmasError(
            f"{where}: not an llmas predictor template: it has {', '.join(sorted(unknown))}; "
            f"expected only {expected}"
        )
    return text


def read_architectures(
    path: str | Path, limit: int | None = None, labelled: bool = True
) -> list[LlmasArchitecture]:
    """The architectures of an llmas ``.jsonl`` file in file order (the first ``limit`` only);
    ``labelled`` requires ``valid_BLEU`` (demonstrations), else it is not read (queries)."""
    path = Path(path)
    found = []
    for line, text in read_text_lines(path):
        if limit is not None and len(found) == limit:
            break
        if text.strip():
            found.append(_parse_line(text, path, line, labelled))
    if not found:
        raise LlmasError(f"{path}: the file holds no architectures")
    return found


def _parse_line(text: str, path: Path, line: int, labelled: bool) -> LlmasArchitecture:
    try:
        scratch = json.loads(text).get("scratch")
    except (ValueError, AttributeError, RecursionError):
        scratch = None
    arch_info = scratch.get("arch_info") if isinstance(scratch, dict) else None
    if not isinstance(arch_info, list) or not all(isinstance(s, str) for s in arch_info):
        raise ImportFormatError(
            path, line, "expected a JSON object with 'scratch': {'arch_info': [lines...]}"
        )
    keys = ("total_flops", "valid_BLEU") if labelled else ("total_flops",)
    values = {}
    for key in keys:
        value = scratch.get(key)
        try:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError
            values[key] = float(value)
        except (TypeError, OverflowError):
            raise ImportFormatError(path, line, f"'scratch.{key}' must be a number") from None
    return LlmasArchitecture(
        tuple(arch_info), values["total_flops"] / 1e9, values.get("valid_BLEU")
    )


def draw_example_indices(line_count: int, seed: int, count: int = TASK_EXAMPLE_COUNT) -> list[int]:
    """llmas's draw: from a generator seeded with ``seed``, ``randint(0, line_count - 1)`` until
    ``count`` distinct indices (repeats are drawn again); returned in increasing order."""
    if line_count < count:
        raise LlmasError(f"the task corpus has {line_count} lines; {count} examples are drawn")
    rng = random.Random(seed)  # the same sequence as llmas's random.seed(seed), without the global
    chosen: set[int] = set()
    while len(chosen) < count:
        chosen.add(rng.randint(0, line_count - 1))
    return sorted(chosen)


def task_examples(
    source: str | Path, target: str | Path, seed: int
) -> tuple[list[int], list[tuple[str, str]]]:
    """The drawn line indices of a parallel corpus (plain or .gz) and their sentence pairs,
    stripped of surrounding whitespace as the project reads every corpus line."""
    src, tgt = read_lines(source), read_lines(target)
    if len(src) != len(tgt):
        raise LlmasError(
            f"{source} has {len(src)} lines and {target} has {len(tgt)}; expected aligned files"
        )
    indices = draw_example_indices(len(src), seed)
    return indices, [(src[i], tgt[i]) for i in indices]


def format_task_examples(pairs: Sequence[tuple[str, str]]) -> str:
    blocks = [
        f"Example {n}:\nInput: {src}\nOutput: {tgt}" for n, (src, tgt) in enumerate(pairs, start=1)
    ]
    # llmas strips the joined text (an empty last target loses the space after "Output:").
    return "\n\n".join(blocks).strip()


def format_demonstrations(demonstrations: Sequence[LlmasArchitecture]) -> str:
    return "\n\n".join(d.text() for d in demonstrations).strip()


def render(
    template: str,
    demonstrations: Sequence[LlmasArchitecture],
    query: LlmasArchitecture,
    examples: Sequence[tuple[str, str]],
) -> str:
    """The user message: the template filled (task examples first, as llmas does), a blank
    line, then the query's lines ending in ``BLEU: ``."""
    filled = template.replace(TASK_EXAMPLES_PLACEHOLDER, format_task_examples(examples))
    filled = filled.replace(DEMONSTRATIONS_PLACEHOLDER, format_demonstrations(demonstrations))
    return f"{filled}\n\n{replace(query, bleu=None).text()}"


def render_files(
    template: str | Path,
    demos: str | Path,
    queries: str | Path,
    index: int,
    examples: tuple[str | Path, str | Path],
    seed: int,
) -> LlmasPrompt:
    """The prompt llmas sends for the 0-based line ``index`` of ``queries``, with the first 10
    architectures of ``demos`` and task examples drawn from ``examples`` with ``seed``."""
    text = read_template(template)
    candidates = read_architectures(queries, labelled=False)
    if not 0 <= index < len(candidates):
        raise LlmasError(
            f"index {index} is out of range: {queries} holds {len(candidates)} architectures "
            f"(0 to {len(candidates) - 1})"
        )
    demonstrations = read_architectures(demos, limit=DEMONSTRATION_COUNT)
    indices, pairs = task_examples(*examples, seed)
    content = render(text, demonstrations, candidates[index], pairs)
    return LlmasPrompt(content, tuple(indices))


# --- llmas templates as prompts of the project ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class TaskExamples:
    """The line-aligned corpus (plain or .gz) that an llmas prompt draws its task examples from."""

    source: str
    target: str

    def pairs(self, seed: int) -> tuple[tuple[int, ...], tuple[tuple[str, str], ...]]:
        return _drawn_examples(self.source, self.target, seed)


@lru_cache(maxsize=8)
def _drawn_examples(
    source: str, target: str, seed: int
) -> tuple[tuple[int, ...], tuple[tuple[str, str], ...]]:
    # Every query of a prediction renders with the same draw: read the corpus once.
    indices, pairs = task_examples(source, target, seed)
    return tuple(indices), tuple(pairs)


@dataclass(frozen=True, slots=True)
class LlmasTemplate:
    """An llmas template stored as a prompt of the project (its ``name`` is ``llmas/<file>``).
    ``edited_from`` is the version an edit in the GUI started from ('' for llmas's own text).
    ``examples`` and ``seed`` are how a prediction fills it; they are not stored."""

    task: str
    template: str
    name: str = ""
    examples: TaskExamples | None = None
    seed: int = 0
    edited_from: str = ""

    @property
    def template_name(self) -> str:
        return self.name.removeprefix(NAME_PREFIX)

    @property
    def version(self) -> str:
        """A digest of the stored dict. The name is part of it: two of llmas's templates are
        the same text and are still two steps of its ablation."""
        canonical = json.dumps(self.to_json(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def to_json(self) -> dict[str, Any]:
        data = {
            "format": LLMAS_FORMAT,
            "task": self.task,
            "name": self.name,
            "template": self.template,
        }
        # Only in an edit's dict: the versions of imported templates stay what they were.
        return {**data, "edited_from": self.edited_from} if self.edited_from else data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LlmasTemplate:
        if data.get("format") != LLMAS_FORMAT:
            raise PromptError(f"stored prompt is not an llmas template: {data.get('format')!r}")
        try:
            return cls(
                str(data["task"]),
                str(data["template"]),
                str(data.get("name", "")),
                edited_from=str(data.get("edited_from", "")),
            )
        except KeyError as exc:
            raise PromptError(f"stored llmas prompt lacks the field {exc.args[0]!r}") from None

    def filled_with(self, examples: TaskExamples, seed: int) -> LlmasTemplate:
        """This template with the corpus and seed its task examples are drawn with."""
        return replace(self, examples=examples, seed=seed)

    def fill_note(self) -> str:
        """How a prediction fills this template (what its version does not say), for a log."""
        drawn = "no task examples (none given)"
        if self.examples is not None:
            lines = ", ".join(str(i) for i in self.examples.pairs(self.seed)[0])
            drawn = (
                f"task examples drawn with seed {self.seed} from {self.examples.source} and "
                f"{self.examples.target} (lines {lines}, 0-based)"
            )
        return (
            f"llmas prompt {self.name}: {drawn}; the first {DEMONSTRATION_COUNT} "
            "demonstrations of the pool in its order"
        )

    def with_seed(self, seed: int) -> LlmasTemplate:
        return replace(self, seed=seed)

    def edited(self, text: str) -> LlmasTemplate:
        """A new version of this template with ``text``: a predictor template still (else the
        error ``read_template`` gives a file), recording the version it was edited from."""
        check_template(text, self.name or "the template")
        return LlmasTemplate(self.task, text, self.name, edited_from=self.version)

    def messages(self, query: Demonstration, pool: Sequence[Demonstration]) -> list[dict[str, str]]:
        """llmas's one user message for ``query``: the first 10 of ``pool`` (in its order, never
        the query) as demonstrations, task examples drawn with ``seed``."""
        if self.examples is None:
            raise PromptError(
                f"the llmas prompt {self.name} shows 5 task examples drawn from a parallel "
                "corpus: give its source and target files (--examples SOURCE TARGET)"
            )
        _, pairs = self.examples.pairs(self.seed)
        text = render(
            self.template,
            [_llmas_architecture(d) for d in _demonstrations(query, pool)],
            _llmas_architecture(query),
            pairs,
        )
        return [{"role": "user", "content": text}]

    def filling(self, query: Demonstration, pool: Sequence[Demonstration]) -> dict[str, Any]:
        """How ``messages`` fills this template for ``query``: with the prompt's version, what
        renders the same message again (a prediction's provenance)."""
        examples = self.examples
        return {
            "template": self.name,
            "examples": None
            if examples is None
            else [str(Path(examples.source).resolve()), str(Path(examples.target).resolve())],
            "seed": self.seed,
            "example_line_indices": [] if examples is None else list(examples.pairs(self.seed)[0]),
            "demonstration_ids": [d.arch.id for d in _demonstrations(query, pool)],
        }


def _demonstrations(query: Demonstration, pool: Sequence[Demonstration]) -> list[Demonstration]:
    """The first 10 of ``pool`` in its order, never the query, each with a BLEU."""
    demos = [d for d in pool if d.arch.id != query.arch.id and d.bleu is not None]
    return demos[:DEMONSTRATION_COUNT]


def _llmas_architecture(item: Demonstration) -> LlmasArchitecture:
    return LlmasArchitecture(tuple(to_arch_info(item.arch)), item.gflops, item.bleu)


def is_llmas(data: Mapping[str, Any]) -> bool:
    """Whether a stored prompt's dict is an llmas template."""
    return data.get("format") == LLMAS_FORMAT


def _template_order(template: LlmasTemplate) -> tuple[int, str]:
    name = template.template_name
    position = CUMULATIVE_TEMPLATES.index(name) if name in CUMULATIVE_TEMPLATES else 99
    return position, name


def read_template_folder(
    folder: str | Path, task: str | None = None
) -> tuple[list[LlmasTemplate], list[tuple[str, str]]]:
    """The predictor templates of an llmas folder (``task`` defaults to the folder's name), in
    llmas's ablation order, and the files skipped with why."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise LlmasError(f"{folder}: not a folder of llmas templates")
    task = task or folder.resolve().name
    templates, skipped = [], []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        if path.name == SEARCH_AGENT_TEMPLATE:
            skipped.append((path.name, "llmas's search-agent template, not a predictor's"))
            continue
        try:
            text = read_template(path)
        except LlmasError as exc:
            skipped.append((path.name, str(exc).removeprefix(f"{path}: ")))
            continue
        templates.append(LlmasTemplate(task, text, NAME_PREFIX + path.name))
    if not templates:
        raise LlmasError(
            f"{folder}: no llmas predictor template in it "
            f"(a file with {DEMONSTRATIONS_PLACEHOLDER})"
        )
    return sorted(templates, key=_template_order), skipped


@dataclass(frozen=True, slots=True)
class TemplateImport:
    """What importing a template folder did: (template, whether it was new) and the skipped
    files with why."""

    imported: tuple[tuple[LlmasTemplate, bool], ...]
    skipped: tuple[tuple[str, str], ...]

    def describe(self) -> str:
        task = self.imported[0][0].task
        new = sum(is_new for _, is_new in self.imported)
        lines = [
            f"{len(self.imported)} llmas templates of {task} as prompts "
            f"({new} new, {len(self.imported) - new} already in the project):"
        ]
        lines += [
            f"  {t.version}  {t.name}" + ("" if is_new else "  (kept)")
            for t, is_new in self.imported
        ]
        lines += [f"  skipped {name}: {why}" for name, why in self.skipped]
        return "\n".join(lines)


def import_templates(
    project: Project, folder: str | Path, task: str | None = None
) -> TemplateImport:
    """Store the predictor templates of an llmas folder as prompts of ``project`` (none becomes
    a task's current prompt); a version already stored is kept as it is."""
    templates, skipped = read_template_folder(folder, task)
    imported = []
    for template in templates:
        is_new = project.prompt(template.version) is None
        save_prompt(project, template)
        imported.append((template, is_new))
    return TemplateImport(tuple(imported), tuple(skipped))


def template_versions(project: Project, task: str | None = None) -> list[LlmasTemplate]:
    """Every llmas prompt of the project (of ``task`` when given), edits included: by task in
    llmas's ablation order, each name's versions oldest first."""
    templates = [
        LlmasTemplate.from_json(record["sections"])
        for record in project.prompts()
        if is_llmas(record["sections"]) and task in (None, record["sections"].get("task"))
    ]
    return sorted(templates, key=lambda t: (t.task, *_template_order(t)))  # stable: oldest first


def stored_templates(project: Project, task: str | None = None) -> list[LlmasTemplate]:
    """llmas's own templates in the project (of ``task`` when given; not the edits saved in
    the GUI): the latest of each task and name, in llmas's ablation order."""
    latest: dict[tuple[str, str], LlmasTemplate] = {}
    for template in template_versions(project, task):
        if not template.edited_from:
            latest[(template.task, template.name)] = template
    return list(latest.values())


def cumulative_ablations(project: Project, task: str) -> list[tuple[str, LlmasTemplate]]:
    """llmas's cumulative templates of ``task`` stored in the project, as (variant, prompt)."""
    return [
        (t.template_name, t)
        for t in stored_templates(project, task)
        if t.template_name in CUMULATIVE_TEMPLATES
    ]


def train_file_ids(path: str | Path, task: Task) -> list[str]:
    """The ids of a seed's ``train.jsonl`` architectures in file order: the identity the
    importers give them, so they name the project's architectures."""
    return [record.arch.id for record in read_llmas(path, task.name, task.vocab_size).records]
