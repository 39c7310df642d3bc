"""Joint source+target subword vocabularies (sentencepiece), trained in memory and cached.

The cache key is a hash of the exact training sentences and every training option, so a cached
model is reused only when training again would see the same input. Special ids are fixed:
pad=0, unk=1, bos=2, eos=3.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import platformdirs
import sentencepiece as spm

from nasstudio.data.corpus import Corpus

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
MODEL_TYPES = ("bpe", "unigram")
DEFAULT_SIZE = 8000

# Protobuf enum values of sentencepiece's TrainerSpec.ModelType, and the field numbers of
# ModelProto.trainer_spec and TrainerSpec.model_type.
_MODEL_TYPE_NAMES = {1: "unigram", 2: "bpe", 3: "word", 4: "char"}
_TRAINER_SPEC, _SPEC_MODEL_TYPE = 2, 3


def default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("nasstudio")) / "vocab"


class Vocabulary:
    """A trained sentencepiece model with nasstudio's fixed special ids.

    `requested_size` is the size asked of training, when known: on small corpora `size` is
    smaller (sentencepiece stores only the size it reached).
    """

    pad_id, unk_id, bos_id, eos_id = PAD_ID, UNK_ID, BOS_ID, EOS_ID

    def __init__(self, model: bytes, requested_size: int | None = None) -> None:
        self._model = bytes(model)
        self._sp = spm.SentencePieceProcessor(model_proto=self._model)
        specials = (self._sp.pad_id(), self._sp.unk_id(), self._sp.bos_id(), self._sp.eos_id())
        if specials != (PAD_ID, UNK_ID, BOS_ID, EOS_ID):
            raise ValueError(
                f"sentencepiece model has special ids {specials}, expected (0, 1, 2, 3)"
            )
        # The model itself says its type, so a .model file from anywhere describes itself.
        spec = _trainer_spec_fields(self._model)
        self.model_type = _MODEL_TYPE_NAMES.get(spec.get(_SPEC_MODEL_TYPE, 1), "unknown")
        self.requested_size = requested_size
        self.digest = hashlib.sha256(self._model).hexdigest()[:12]

    @classmethod
    def load(cls, path: str | Path, requested_size: int | None = None) -> Vocabulary:
        return cls(Path(path).read_bytes(), requested_size)

    def save(self, path: str | Path) -> None:
        """Write the model as a standard sentencepiece `.model` file."""
        Path(path).write_bytes(self._model)

    def __reduce__(self) -> tuple[type[Vocabulary], tuple[bytes, int | None]]:
        # The sentencepiece processor does not pickle; the model bytes rebuild it in a worker.
        return Vocabulary, (self._model, self.requested_size)

    @property
    def model_bytes(self) -> bytes:
        return self._model

    @property
    def size(self) -> int:
        return self._sp.get_piece_size()

    def __len__(self) -> int:
        return self.size

    def encode(self, text: str) -> list[int]:
        """Subword ids of one sentence, without bos/eos."""
        return self._sp.encode(text)

    def encode_many(self, texts: Sequence[str]) -> list[list[int]]:
        """Subword ids of many sentences in one native call (much faster than a Python loop).

        One native thread: this runs in job worker threads, and sentencepiece's own thread
        pool was caught stalled there (a GUI test waited minutes, with the machine idle)."""
        return self._sp.encode(list(texts), num_threads=1)

    def decode(self, ids: Iterable[int]) -> str:
        """Detokenised text of ids up to the first eos; pad and bos are ignored."""
        ids = [int(i) for i in ids]
        if EOS_ID in ids:
            ids = ids[: ids.index(EOS_ID)]
        return self._sp.decode(ids)

    @property
    def signature(self) -> str:
        """Short provenance string in the spirit of sacrebleu's signatures."""
        return f"spm:{self.model_type}|size:{self.size}|model:{self.digest}"

    def describe(self) -> str:
        requested = ""
        if self.requested_size not in (None, self.size):
            requested = f" (requested {self.requested_size})"
        return f"{self.model_type} vocabulary, {self.size} subwords{requested}, model {self.digest}"

    def __repr__(self) -> str:
        return f"Vocabulary({self.signature})"


def train_vocabulary(
    sentences: Iterable[str],
    *,
    size: int = DEFAULT_SIZE,
    model_type: str = "bpe",
    cache_dir: str | Path | None = None,
) -> Vocabulary:
    """Train (or fetch from the cache) a sentencepiece model on the sentences.

    A size larger than the data supports gives the largest vocabulary the data allows (see
    `Vocabulary.size`); a size too small for the characters in the data raises ValueError.
    """
    if model_type not in MODEL_TYPES:
        raise ValueError(f"model_type {model_type!r}: expected one of {', '.join(MODEL_TYPES)}")
    sentences = list(sentences)
    if not sentences:
        raise ValueError("no sentences to train a vocabulary on")
    options = _trainer_options(size, model_type)
    cache_file = Path(cache_dir or default_cache_dir()) / f"{_cache_key(sentences, options)}.model"
    if cache_file.is_file():
        return Vocabulary.load(cache_file, size)
    vocab = Vocabulary(_train(sentences, options), size)
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename, so a concurrent reader never sees half a model.
    partial = cache_file.with_suffix(f".{os.getpid()}.partial")
    vocab.save(partial)
    partial.replace(cache_file)
    return vocab


def corpus_vocabulary(
    corpus: Corpus,
    *,
    size: int = DEFAULT_SIZE,
    model_type: str = "bpe",
    limit: int | None = None,
    cache_dir: str | Path | None = None,
) -> Vocabulary:
    """A joint vocabulary trained on both sides of the corpus' train split (first `limit` pairs)."""
    pairs = corpus.pairs("train", limit)
    sentences = [s for s, _ in pairs] + [t for _, t in pairs]
    return train_vocabulary(sentences, size=size, model_type=model_type, cache_dir=cache_dir)


def _trainer_options(size: int, model_type: str) -> dict[str, object]:
    return {
        "vocab_size": size,
        "model_type": model_type,
        "pad_id": PAD_ID,
        "unk_id": UNK_ID,
        "bos_id": BOS_ID,
        "eos_id": EOS_ID,
        # Every character of the training text gets a piece: MT corpora are small and clean.
        "character_coverage": 1.0,
        # A soft limit lets small corpora (the demo) end up with fewer pieces instead of failing.
        "hard_vocab_limit": False,
    }


def _cache_key(sentences: Sequence[str], options: dict[str, object]) -> str:
    digest = hashlib.sha256(f"spm {spm.__version__} {sorted(options.items())}\n".encode())
    for sentence in sentences:
        digest.update(sentence.encode())
        digest.update(b"\n")
    return f"{options['model_type']}-{options['vocab_size']}-{digest.hexdigest()[:20]}"


def _train(sentences: list[str], options: dict[str, object]) -> bytes:
    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences),
            model_writer=model,
            num_threads=os.cpu_count() or 1,
            minloglevel=2,
            **options,
        )
    except RuntimeError as err:
        # sentencepiece prefixes its messages with the C++ source location; keep the sentence.
        reason = re.sub(r"^.*?\] ", "", str(err)).strip() or str(err)
        raise ValueError(
            f"cannot train a {options['vocab_size']}-piece vocabulary: {reason}"
        ) from None
    return model.getvalue()


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if byte < 0x80:
            return value, pos


def _fields(data: bytes) -> dict[int, int | bytes]:
    """Top-level protobuf fields (last occurrence wins); enough to read a TrainerSpec."""
    fields: dict[int, int | bytes] = {}
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            fields[number], pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            fields[number], pos = data[pos : pos + length], pos + length
        else:
            pos += {1: 8, 5: 4}[wire]
    return fields


def _trainer_spec_fields(model: bytes) -> dict[int, int | bytes]:
    """The fields of the model's TrainerSpec."""
    spec = _fields(model).get(_TRAINER_SPEC, b"")
    return _fields(spec) if isinstance(spec, bytes) else {}
