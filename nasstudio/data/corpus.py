"""Parallel corpora: plain or gzipped UTF-8 text files, one sentence per line, per split.

Nothing is ever downloaded: a corpus is a set of local files. Reading checks the whole pair of
files before returning anything, and a bad file raises CorpusError naming the file, the line
and what was expected.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

SPLITS = ("train", "valid", "test")
MULTI30K_FILES = {"train": "train", "valid": "val", "test": "test_2016_flickr"}

SentencePair = tuple[str, str]


class CorpusError(ValueError):
    """A corpus file is missing or malformed; the message names the file(s) and the line."""


@dataclass(frozen=True)
class Corpus:
    """A parallel corpus: languages and, per split, the (source, target) file paths."""

    name: str
    src_lang: str
    tgt_lang: str
    files: Mapping[str, tuple[Path, Path]] = field(hash=False)
    synthetic: bool = False

    def __post_init__(self) -> None:
        # A read-only mapping keeps the frozen dataclass honest; paths are normalised once here.
        files = {split: (Path(src), Path(tgt)) for split, (src, tgt) in self.files.items()}
        object.__setattr__(self, "files", MappingProxyType(files))

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self.files)

    def paths(self, split: str) -> tuple[Path, Path]:
        """The (source, target) files of a split."""
        if split not in self.files:
            have = ", ".join(self.files) or "none"
            raise CorpusError(f"corpus {self.name!r} has no split {split!r} (has: {have})")
        return self.files[split]

    def pairs(self, split: str, limit: int | None = None) -> list[SentencePair]:
        """The sentence pairs of a split, the first `limit` only when given."""
        pairs = read_parallel(*self.paths(split))
        return pairs if limit is None else pairs[:limit]

    def describe(self) -> str:
        kind = "synthetic" if self.synthetic else "corpus"
        return (
            f"{self.name}: {kind}, {self.src_lang}→{self.tgt_lang}, splits {', '.join(self.splits)}"
        )


def read_lines(path: str | Path) -> list[str]:
    """The lines of a plain or .gz UTF-8 text file, stripped of surrounding whitespace."""
    path = Path(path)
    if not path.is_file():
        raise CorpusError(
            f"{path}: file not found; expected a UTF-8 text file, one sentence a line"
        )
    data = path.read_bytes()
    if path.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as err:
            raise CorpusError(f"{path}: expected gzip-compressed text ({err})") from None
    try:
        text = data.decode("utf-8-sig")  # -sig: a byte order mark is not part of a sentence
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise CorpusError(f"{path}:{line}: expected UTF-8 text ({err.reason})") from None
    # Split on "\n" only: str.splitlines would also break at U+2028 and friends inside a sentence
    # and the line numbers would no longer match the file.
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.strip() for line in lines]


def read_parallel(src_path: str | Path, tgt_path: str | Path) -> list[SentencePair]:
    """Aligned sentence pairs from two files; pairs empty on both sides are skipped."""
    src, tgt = read_lines(src_path), read_lines(tgt_path)
    if len(src) != len(tgt):
        raise CorpusError(
            f"line counts differ: {src_path} has {len(src)} lines, {tgt_path} has {len(tgt)}; "
            "expected the same number of lines, one aligned sentence per line"
        )
    pairs = []
    for number, (s, t) in enumerate(zip(src, tgt, strict=True), start=1):
        if bool(s) != bool(t):
            empty, other = (src_path, tgt_path) if not s else (tgt_path, src_path)
            raise CorpusError(
                f"{empty}:{number}: empty line, but {other}:{number} is not; "
                "expected a sentence on both sides (or both lines empty)"
            )
        if s:
            pairs.append((s, t))
    return pairs


def _split_file(folder: Path, stem: str, lang: str) -> Path | None:
    """`{stem}.{lang}` or `{stem}.{lang}.gz` in folder; None when neither exists."""
    plain, packed = folder / f"{stem}.{lang}", folder / f"{stem}.{lang}.gz"
    if plain.is_file() and packed.is_file():
        raise CorpusError(f"both {plain} and {packed} exist; expected only one of them")
    return plain if plain.is_file() else packed if packed.is_file() else None


def _split_pair(folder: Path, stem: str, src: str, tgt: str) -> tuple[Path, Path] | None:
    """Both files of a split, None when both are absent, an error when one side is missing."""
    src_file, tgt_file = _split_file(folder, stem, src), _split_file(folder, stem, tgt)
    if src_file is None and tgt_file is None:
        return None
    if src_file is None or tgt_file is None:
        missing = folder / f"{stem}.{src if src_file is None else tgt}[.gz]"
        raise CorpusError(f"{missing}: file not found; expected it beside {src_file or tgt_file}")
    return src_file, tgt_file


def corpus_from_folder(
    folder: str | Path,
    src: str,
    tgt: str,
    *,
    name: str | None = None,
    synthetic: bool = False,
    stems: Mapping[str, str] | None = None,
) -> Corpus:
    """A corpus from files named `{split}.{lang}[.gz]` (or `{stems[split]}.{lang}[.gz]`)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CorpusError(f"{folder}: folder not found; expected a folder of corpus files")
    stems = stems or {split: split for split in SPLITS}
    files = {}
    for split, stem in stems.items():
        pair = _split_pair(folder, stem, src, tgt)
        if pair is not None:
            files[split] = pair
    if not files:
        expected = ", ".join(f"{stem}.{src}[.gz]/{stem}.{tgt}[.gz]" for stem in stems.values())
        raise CorpusError(f"{folder}: no corpus files for {src}-{tgt}; expected {expected}")
    return Corpus(name or f"{folder.name} ({src}-{tgt})", src, tgt, files, synthetic)


def multi30k(folder: str | Path, src: str = "en", tgt: str = "de") -> Corpus:
    """Multi30k as distributed (train, val, test_2016_flickr; en, de, fr), all three splits."""
    corpus = corpus_from_folder(
        folder, src, tgt, name=f"multi30k ({src}-{tgt})", stems=MULTI30K_FILES
    )
    absent = [MULTI30K_FILES[split] for split in SPLITS if split not in corpus.files]
    if absent:
        expected = ", ".join(f"{stem}.{src}.gz/{stem}.{tgt}.gz" for stem in absent)
        raise CorpusError(f"{folder}: Multi30k files not found; expected {expected}")
    return corpus
