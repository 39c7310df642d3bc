"""The project task that a run's results on a corpus are recorded under.

Results go to the corpus' own task (``data.spec.task_name``: ``demo``, ``multi30k-ende``), so
that measured BLEU never mixes with another dataset's. A task has one search space and one
vocabulary: a run whose architecture comes from another space, or that trains another
vocabulary size, goes to a task named after what differs (``demo-hat-wmt``,
``multi30k-ende-v2000``). So any architecture trains on any corpus, and the same run always
lands in the same task.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nasstudio.data.spec import task_name
from nasstudio.store import Project, Task


def default_vocab_size(project: Project, source: Task, corpus: Mapping[str, Any]) -> int:
    """The vocabulary size of a run that asks for none: the corpus task's, else that of the
    architecture's task ``source``."""
    return (project.task(task_name(corpus)) or source).vocab_size


def result_task_name(
    project: Project, source: Task, corpus: Mapping[str, Any], vocab_size: int | None = None
) -> str:
    """Where results of ``source``'s architectures trained on ``corpus`` go.

    ``vocab_size`` is the trained vocabulary's size (None: ``default_vocab_size``). Asked
    before a run, the size requested gives the same answer unless the corpus cannot support
    that many subwords (the vocabulary then comes out smaller).
    """
    size = vocab_size or default_vocab_size(project, source, corpus)
    base = task_name(corpus)
    existing = project.task(base)
    if _agrees(existing, source.space, size):
        return base
    space_part = f"-{source.space}" if existing.space != source.space else ""
    vocab_part = f"-v{size}" if existing.vocab_size != size else ""
    candidates = (f"{base}{space_part}{vocab_part}", f"{base}-{source.space}-v{size}")
    for name in candidates:
        if _agrees(project.task(name), source.space, size):
            return name
    names = ", ".join(f"'{name}'" for name in dict.fromkeys((base, *candidates)))
    raise ValueError(
        f"tasks {names} exist with other search spaces or vocabularies than "
        f"'{source.space}' / {size}: rename one of them"
    )


def why_not_corpus_task(project: Project, name: str, corpus: Mapping[str, Any]) -> str:
    """Why results go to ``name`` rather than the corpus' own task ('' when they do not)."""
    base = project.task(task_name(corpus))
    if base is None or base.name == name:
        return ""
    return f"task '{base.name}' has space '{base.space}' and a vocabulary of {base.vocab_size}"


def _agrees(task: Task | None, space: str, vocab_size: int) -> bool:
    return task is None or (task.space, task.vocab_size) == (space, vocab_size)
