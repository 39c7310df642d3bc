"""llmas's LLM-PP prompt, rendered as llmas's ``gpt_scorer.py`` renders it (the paper's protocol).

A template file holds the whole prompt text with two placeholders: the task examples (sentence
pairs drawn from a parallel corpus with the seed) and the demonstrations (the first 10
architectures of a seed's ``train.jsonl``, in file order). After them come a blank line and the
test architecture ending in ``BLEU: ``. It is sent as one user message, without a system message.

The architecture lines are the files' ``arch_info`` strings as they are, so the text is llmas's
byte for byte (the project's own prompt rewrites them from the parsed architecture).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from nasstudio.data.corpus import read_lines
from nasstudio.predict.llm.prompt import arch_text
from nasstudio.store.importers import ImportFormatError, read_text_lines

TASK_EXAMPLES_PLACEHOLDER = "$$$task_examples$$$"
DEMONSTRATIONS_PLACEHOLDER = "$$$seedarch_examples$$$"
TASK_EXAMPLE_COUNT = 5
DEMONSTRATION_COUNT = 10
_PLACEHOLDER = re.compile(r"\$\$\$\w+\$\$\$")


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
    expected = f"{DEMONSTRATIONS_PLACEHOLDER} (and optionally {TASK_EXAMPLES_PLACEHOLDER})"
    if DEMONSTRATIONS_PLACEHOLDER not in text:
        raise LlmasError(f"{path}: not an llmas predictor template: expected {expected}")
    # e.g. the search-agent template (default_flops), whose constraint the predictor cannot fill
    unknown = set(_PLACEHOLDER.findall(text)) - {
        TASK_EXAMPLES_PLACEHOLDER,
        DEMONSTRATIONS_PLACEHOLDER,
    }
    if unknown:
        raise LlmasError(
            f"{path}: not an llmas predictor template: it has {', '.join(sorted(unknown))}; "
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
