"""The built-in demo corpus: an invented language pair generated from rules, no files needed.

It is deliberately easy, so a d=64 Transformer reaches high BLEU within minutes on a laptop
CPU and architectures of different sizes still score differently: 98 source word types; the
target has 94 stems and 8 determiners, 258 word forms once inflected. Every source sentence has
exactly one translation:

- source: SUBJECT VERB OBJECT [ADPOSITION NP] [ADVERB], with DET ADJ* NOUN noun phrases;
  number and definiteness are marked on the determiner only;
- target: SUBJECT OBJECT [NP POSTPOSITION] [ADVERB] VERB (verb last), with DET NOUN ADJ*
  noun phrases (adjectives follow the noun); nouns carry gender and number suffixes,
  adjectives and determiners agree with their noun, and the verb agrees with the subject.

Source and target sentences have the same number of words, 5 to 15.
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType

from nasstudio.data.corpus import Corpus, SentencePair, corpus_from_folder

DEMO_SRC, DEMO_TGT = "syn-src", "syn-tgt"
DEMO_SIZES: Mapping[str, int] = MappingProxyType({"train": 20_000, "valid": 500, "test": 500})

# How many words of each class; the source has these plus its 4 determiners (98 types).
_CLASS_SIZES = {"noun": 36, "adj": 16, "verb": 24, "adv": 10, "adp": 8}
# Fixed, so the two languages are the same whatever seed draws the sentences.
_LEXICON_SEED = 30_000
# Source words are CVCV, target stems CCVC: the two vocabularies never share a word, and a
# stem plus suffix reads back unambiguously.
_SRC_LETTERS = ("bdfglmnpsv", "aeiou") * 2
_TGT_LETTERS = (("br", "dr", "gr", "kr", "pl", "sk", "st", "tr", "vl", "zh"), "aeiou", "klmnrst")

# Keys: (gender, plural). Nouns, adjectives and determiners share the suffix of the noun;
# verbs take the suffix of the subject.
_NOUN_SUFFIX = {(0, False): "o", (1, False): "a", (0, True): "oi", (1, True): "ai"}
_VERB_SUFFIX = {(0, False): "e", (1, False): "u", (0, True): "en", (1, True): "un"}
# Keys: (definite, plural) in the source, (definite, gender, plural) in the target.
_SRC_DET = {(True, False): "ti", (True, True): "tim", (False, False): "ka", (False, True): "kam"}
_TGT_DET = {
    (definite, gender, plural): ("l" if definite else "un") + suffix
    for (gender, plural), suffix in _NOUN_SUFFIX.items()
    for definite in (True, False)
}
_ADJECTIVES_PER_NP = ((0, 1, 2), (0.5, 0.35, 0.15))


@dataclass(frozen=True)
class _Word:
    src: str  # source word
    tgt: str  # target stem (nouns, adjectives, verbs are inflected; others used as is)
    gender: int  # nouns only: 0 or 1


@dataclass(frozen=True)
class _Phrase:
    src: list[str]
    tgt: list[str]
    gender: int
    plural: bool


def _distinct(rng: random.Random, count: int, letters: tuple[Sequence[str], ...]) -> list[str]:
    """`count` different words, each a choice from every position's letters."""
    words: dict[str, None] = {}  # ordered set: the lexicon must not depend on hash order
    while len(words) < count:
        words["".join(rng.choice(options) for options in letters)] = None
    return list(words)


@cache
def _lexicon() -> dict[str, list[_Word]]:
    rng = random.Random(_LEXICON_SEED)
    total = sum(_CLASS_SIZES.values())
    src, tgt = _distinct(rng, total, _SRC_LETTERS), _distinct(rng, total, _TGT_LETTERS)
    words = [_Word(s, t, rng.randrange(2)) for s, t in zip(src, tgt, strict=True)]
    lexicon, start = {}, 0
    for word_class, size in _CLASS_SIZES.items():
        lexicon[word_class], start = words[start : start + size], start + size
    return lexicon


def _noun_phrase(rng: random.Random, lexicon: dict[str, list[_Word]]) -> _Phrase:
    noun = rng.choice(lexicon["noun"])
    definite, plural = rng.random() < 0.5, rng.random() < 0.4
    adjectives = rng.sample(lexicon["adj"], rng.choices(*_ADJECTIVES_PER_NP)[0])
    suffix = _NOUN_SUFFIX[noun.gender, plural]
    return _Phrase(
        [_SRC_DET[definite, plural], *(a.src for a in adjectives), noun.src],
        [_TGT_DET[definite, noun.gender, plural], *(w.tgt + suffix for w in (noun, *adjectives))],
        noun.gender,
        plural,
    )


def _sentence(rng: random.Random, lexicon: dict[str, list[_Word]]) -> SentencePair:
    subject, verb = _noun_phrase(rng, lexicon), rng.choice(lexicon["verb"])
    obj = _noun_phrase(rng, lexicon)
    src, tgt = [*subject.src, verb.src, *obj.src], [*subject.tgt, *obj.tgt]
    if rng.random() < 0.5:
        adposition, phrase = rng.choice(lexicon["adp"]), _noun_phrase(rng, lexicon)
        src += [adposition.src, *phrase.src]
        tgt += [*phrase.tgt, adposition.tgt]
    if rng.random() < 0.4:
        adverb = rng.choice(lexicon["adv"])
        src.append(adverb.src)
        tgt.append(adverb.tgt)
    tgt.append(verb.tgt + _VERB_SUFFIX[subject.gender, subject.plural])
    return " ".join(src), " ".join(tgt)


def demo_pairs(
    seed: int = 0, sizes: Mapping[str, int] = DEMO_SIZES
) -> dict[str, list[SentencePair]]:
    """Sentence pairs per split; no source sentence occurs twice, within or across splits."""
    rng, lexicon = random.Random(seed), _lexicon()
    unique: dict[SentencePair, None] = {}
    while len(unique) < sum(sizes.values()):
        unique[_sentence(rng, lexicon)] = None
    pairs, splits, start = list(unique), {}, 0
    for split, size in sizes.items():
        splits[split], start = pairs[start : start + size], start + size
    return splits


def _replace_atomically(path: Path, text: str) -> None:
    """Jobs in several processes open the demo at once: a reader sees a whole file, never one
    being written."""
    temporary = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def write_demo_corpus(
    folder: str | Path, *, seed: int = 0, sizes: Mapping[str, int] = DEMO_SIZES
) -> Corpus:
    """Write the demo corpus as `{split}.syn-src` / `{split}.syn-tgt` files and open it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for split, pairs in demo_pairs(seed, sizes).items():
        for lang, side in ((DEMO_SRC, 0), (DEMO_TGT, 1)):
            text = "".join(pair[side] + "\n" for pair in pairs)
            _replace_atomically(folder / f"{split}.{lang}", text)
    name = f"synthetic-demo (synthetic language pair, seed {seed})"
    return corpus_from_folder(
        folder, DEMO_SRC, DEMO_TGT, name=name, synthetic=True, stems={s: s for s in sizes}
    )
