"""A test set's identity: its name and a hash of exactly the sentences it holds.

A measurement records both, so a score on one test set never replaces a score on
another, even when two sets share a name (a renamed file in a copied corpus folder).

The sentences of a test set are the line pairs of its source and reference files, in file
order, except pairs blank on both sides: such a pair holds nothing to translate or score
(``corpus.read_parallel`` skips it when a training reads a split). ``TestSet`` applies this
rule whatever it is given, so a training's split and ``nasstudio translate`` of the same files
name the same test set; files without blank pairs hash as their lines.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nasstudio.data.corpus import read_lines

DIGEST_CHARS = 16


@dataclass(frozen=True, slots=True)
class TestSet:
    __test__ = False  # not a pytest test class

    name: str
    digest: str  # sha256 hex (first 16 chars) of its sentences, sources then references

    @classmethod
    def of_lines(cls, name: str, sources: Sequence[str], references: Sequence[str]) -> TestSet:
        """The test set of aligned lines, its sentences taken by the module's rule."""
        kept = sentence_indices(sources, references)
        return cls(name, _digest([sources[i] for i in kept], [references[i] for i in kept]))

    @classmethod
    def of_files(cls, name: str, source_path: Path, reference_path: Path) -> TestSet:
        return cls.of_lines(name, read_lines(source_path), read_lines(reference_path))


def sentence_indices(sources: Sequence[str], references: Sequence[str]) -> list[int]:
    """Indices of the line pairs that are a test set's sentences: all but the pairs blank on
    both sides. ValueError when the sides differ in length (a reference per source line)."""
    if len(sources) != len(references):
        raise ValueError(
            f"{len(sources):,} source lines but {len(references):,} references: "
            "a test set needs one reference per source line"
        )
    kept = []
    for i, (source, reference) in enumerate(zip(sources, references, strict=True)):
        if "\n" in source or "\n" in reference:
            raise ValueError(f"line {i + 1} holds a line break; pass one sentence per line")
        if source.strip() or reference.strip():
            kept.append(i)
    return kept


def _digest(sources: Sequence[str], references: Sequence[str]) -> str:
    """Each side is hashed as its line count then its lines, each line-terminated (a
    sentence holds no line break: ``sentence_indices``)."""
    digest = hashlib.sha256()
    for side in (sources, references):
        digest.update(f"{len(side)}\n".encode())
        digest.update(b"".join(line.encode() + b"\n" for line in side))
    return digest.hexdigest()[:DIGEST_CHARS]
