"""A test set's identity: its name and a hash of exactly the sentences it holds.

A measurement records both, so a score on one test set never replaces a score on
another, even when two sets share a name (a renamed file in a copied corpus folder).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nasstudio.data.corpus import read_lines

DIGEST_CHARS = 16


@dataclass(frozen=True, slots=True)
class TestSet:
    __test__ = False  # not a pytest test class

    name: str
    digest: str  # sha256 hex (first 16 chars) of the sources and references

    @classmethod
    def of_lines(cls, name: str, sources: Sequence[str], references: Sequence[str]) -> TestSet:
        return cls(name, content_digest(sources, references))

    @classmethod
    def of_files(cls, name: str, source_path: Path, reference_path: Path) -> TestSet:
        return cls.of_lines(name, read_lines(source_path), read_lines(reference_path))


def content_digest(sources: Sequence[str], references: Sequence[str]) -> str:
    """Each side is hashed as its line count then its lines, so no two different
    pairs of line lists (moving a line from one side to the other, say) collide."""
    digest = hashlib.sha256()
    for side in (sources, references):
        digest.update(f"{len(side)}\n".encode())
        digest.update(_line_terminated(side))
    return digest.hexdigest()[:DIGEST_CHARS]


def _line_terminated(lines: Iterable[str]) -> bytes:
    encoded = []
    for number, line in enumerate(lines, start=1):
        if "\n" in line:
            raise ValueError(f"line {number} holds a line break; pass one sentence per line")
        encoded.append(line.encode() + b"\n")
    return b"".join(encoded)
