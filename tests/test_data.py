"""The data pipeline: corpora and their errors, vocabularies and their cache, batching, demo."""

from __future__ import annotations

import gzip
import pickle
import unicodedata
from collections import Counter
from pathlib import Path

import pytest
import sentencepiece as spm
import torch

from nasstudio.data import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    Corpus,
    CorpusError,
    TokenBatcher,
    Vocabulary,
    corpus_from_folder,
    corpus_vocabulary,
    demo_pairs,
    encode_pairs,
    multi30k,
    train_vocabulary,
    write_demo_corpus,
)
from tests.conftest import require_refdata

SMALL_DEMO = {"train": 1500, "valid": 100, "test": 100}


def write(path: Path, lines: list[str] | bytes) -> Path:
    data = lines if isinstance(lines, bytes) else "".join(f"{s}\n" for s in lines).encode()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Corpus:
    return write_demo_corpus(tmp_path_factory.mktemp("demo"), sizes=SMALL_DEMO)


@pytest.fixture(scope="module")
def demo_vocab(demo, tmp_path_factory) -> Vocabulary:
    return corpus_vocabulary(demo, cache_dir=tmp_path_factory.mktemp("vocab"))


# Corpora


def test_reads_plain_and_gzipped_files(tmp_path):
    write(tmp_path / "train.xx.gz", ["ein Hund", " zwei Katzen ", "", "drei"])
    write(tmp_path / "train.yy.gz", ["a dog", "two cats", "", "three"])
    write(tmp_path / "valid.xx", ["rot"])
    write(tmp_path / "valid.yy", ["red"])
    corpus = corpus_from_folder(tmp_path, "xx", "yy")
    assert corpus.splits == ("train", "valid")
    # Surrounding whitespace goes, and a line empty on both sides is skipped.
    assert corpus.pairs("train") == [
        ("ein Hund", "a dog"),
        ("zwei Katzen", "two cats"),
        ("drei", "three"),
    ]
    assert corpus.pairs("train", limit=2) == corpus.pairs("train")[:2]
    assert corpus.pairs("valid") == [("rot", "red")]
    assert not corpus.synthetic
    with pytest.raises(CorpusError, match="no split 'test'"):
        corpus.pairs("test")


def test_mismatched_line_counts_name_both_files_and_counts(tmp_path):
    src = write(tmp_path / "train.xx", ["a", "b", "c"])
    tgt = write(tmp_path / "train.yy.gz", ["a", "b"])
    with pytest.raises(CorpusError) as err:
        corpus_from_folder(tmp_path, "xx", "yy").pairs("train")
    message = str(err.value)
    assert f"{src} has 3 lines" in message and f"{tgt} has 2" in message


def test_one_sided_empty_line_names_file_and_line(tmp_path):
    write(tmp_path / "train.xx", ["a", "b", "c"])
    tgt = write(tmp_path / "train.yy", ["a", "", "c"])
    with pytest.raises(CorpusError, match=rf"{tgt}:2: empty line"):
        corpus_from_folder(tmp_path, "xx", "yy").pairs("train")


@pytest.mark.parametrize("name", ["train.yy", "train.yy.gz"])
def test_invalid_utf8_names_file_and_line(tmp_path, name):
    write(tmp_path / "train.xx", ["a", "b", "c"])
    tgt = write(tmp_path / name, b"a\nb\nc \xff\n")
    with pytest.raises(CorpusError, match=rf"{tgt}:3: expected UTF-8 text"):
        corpus_from_folder(tmp_path, "xx", "yy").pairs("train")


def test_missing_and_broken_files(tmp_path):
    write(tmp_path / "train.xx", ["a"])
    with pytest.raises(CorpusError, match=r"train\.yy\[\.gz\]: file not found"):
        corpus_from_folder(tmp_path, "xx", "yy")
    with pytest.raises(CorpusError, match="no corpus files for en-de"):
        corpus_from_folder(tmp_path, "en", "de")
    with pytest.raises(CorpusError, match="folder not found"):
        corpus_from_folder(tmp_path / "nowhere", "xx", "yy")
    gone = Corpus("gone", "xx", "yy", {"train": (tmp_path / "train.xx", tmp_path / "nope.yy")})
    with pytest.raises(CorpusError, match=rf"{tmp_path / 'nope.yy'}: file not found"):
        gone.pairs("train")
    (tmp_path / "bad.yy.gz").write_bytes(b"not gzip at all")
    broken = Corpus(
        "broken", "xx", "yy", {"train": (tmp_path / "train.xx", tmp_path / "bad.yy.gz")}
    )
    with pytest.raises(CorpusError, match="expected gzip-compressed text"):
        broken.pairs("train")
    write(tmp_path / "train.yy", ["b"])
    with pytest.raises(CorpusError, match=r"Multi30k files not found; expected val\.xx\.gz"):
        multi30k(tmp_path, "xx", "yy")


def test_multi30k_splits_and_languages():
    folder = require_refdata("multi30k")
    corpus = multi30k(folder)
    assert (corpus.src_lang, corpus.tgt_lang, corpus.synthetic) == ("en", "de", False)
    sizes = {split: len(corpus.pairs(split)) for split in corpus.splits}
    assert sizes == {"train": 29000, "valid": 1014, "test": 1000}
    assert corpus.pairs("train", limit=1) == [
        (
            "Two young, White males are outside near many bushes.",
            "Zwei junge weiße Männer sind im Freien in der Nähe vieler Büsche.",
        )
    ]
    assert multi30k(folder, "fr", "en").pairs("test", limit=1)[0][1] == corpus.pairs("test")[0][0]


# Vocabularies


def test_vocabulary_round_trips_multi30k_text(tmp_path):
    corpus = multi30k(require_refdata("multi30k"))
    vocab = corpus_vocabulary(corpus, cache_dir=tmp_path)
    assert (vocab.size, vocab.model_type) == (8000, "bpe")
    # Normal text: NFKC-stable (the model normalises with NFKC) and single-spaced.
    normal = [
        s
        for pair in corpus.pairs("valid")
        for s in pair
        if unicodedata.normalize("NFKC", s) == s and "  " not in s
    ]
    assert len(normal) > 2000
    assert all(vocab.decode(vocab.encode(s)) == s for s in normal)


def test_vocabulary_specials_and_decoding(demo, demo_vocab):
    vocab = demo_vocab
    assert (vocab.pad_id, vocab.unk_id, vocab.bos_id, vocab.eos_id) == (0, 1, 2, 3)
    src, tgt = demo.pairs("valid")[0]
    ids = vocab.encode(tgt)
    assert min(ids) > EOS_ID and vocab.decode(ids) == tgt
    # Decoding stops at the first eos and ignores bos and padding, as decoder output needs.
    assert vocab.decode(torch.tensor([BOS_ID, *ids, EOS_ID, *vocab.encode(src), PAD_ID])) == tgt
    assert vocab.encode_many([src, tgt]) == [vocab.encode(src), vocab.encode(tgt)]


def test_vocabulary_on_small_corpus_reports_actual_size(demo_vocab, tmp_path):
    # 8000 requested, but the demo's few hundred words cannot fill it: the largest size wins.
    assert 300 < demo_vocab.size < 8000
    assert demo_vocab.requested_size == 8000
    assert "requested 8000" in demo_vocab.describe()
    assert demo_vocab.signature == f"spm:bpe|size:{demo_vocab.size}|model:{demo_vocab.digest}"
    with pytest.raises(ValueError, match="Vocabulary size is smaller than required_chars"):
        train_vocabulary(["a small corpus with many letters"], size=8, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="expected one of bpe, unigram"):
        train_vocabulary(["text"], model_type="word", cache_dir=tmp_path)


def test_vocabulary_cache_reuses_model_without_training(demo, tmp_path, monkeypatch):
    first = corpus_vocabulary(demo, size=300, cache_dir=tmp_path)
    cached = list(tmp_path.iterdir())
    assert len(cached) == 1 and cached[0].suffix == ".model"

    def no_training(**_: object) -> None:
        raise AssertionError("trained although the model is cached")

    monkeypatch.setattr(spm.SentencePieceTrainer, "train", no_training)
    again = corpus_vocabulary(demo, size=300, cache_dir=tmp_path)
    assert again.model_bytes == first.model_bytes and again.size == 300
    # Different data or options are a different key, and so a training run.
    with pytest.raises(AssertionError, match="trained although"):
        corpus_vocabulary(demo, size=300, limit=1000, cache_dir=tmp_path)
    with pytest.raises(AssertionError, match="trained although"):
        corpus_vocabulary(demo, size=300, model_type="unigram", cache_dir=tmp_path)


def test_vocabulary_unigram_save_load_pickle(demo, tmp_path):
    vocab = corpus_vocabulary(demo, size=200, model_type="unigram", cache_dir=tmp_path)
    assert vocab.model_type == "unigram" and vocab.size <= 200
    vocab.save(tmp_path / "saved.model")
    for copy in (Vocabulary.load(tmp_path / "saved.model"), pickle.loads(pickle.dumps(vocab))):
        assert (copy.signature, copy.model_type, copy.size) == (
            vocab.signature,
            "unigram",
            vocab.size,
        )
        assert copy.encode("ti pape mege") == vocab.encode("ti pape mege")


# Batching


@pytest.fixture(scope="module")
def encoded(demo, demo_vocab):
    return encode_pairs(demo.pairs("train"), demo_vocab)


def test_batches_respect_max_tokens_and_cover_every_example_once(encoded):
    batcher = TokenBatcher(encoded, max_tokens=300, seed=3)
    for epoch in range(2):
        seen = []
        for batch in batcher.epoch(epoch):
            assert len(batch) * max(batch.src.shape[1], batch.tgt_in.shape[1]) <= 300
            seen += batch.index.tolist()
        assert sorted(seen) == list(range(len(encoded)))
    assert batcher.dropped == 0


def test_batch_padding_and_token_count(encoded):
    for batch in TokenBatcher(encoded, max_tokens=200, seed=0).epoch(0):
        assert batch.src.dtype == batch.tgt_in.dtype == batch.tgt_out.dtype == torch.long
        assert batch.tgt_in.shape == batch.tgt_out.shape
        assert batch.ntokens == int((batch.tgt_out != PAD_ID).sum())
        for row, i in enumerate(batch.index.tolist()):
            src, tgt = encoded.src[i], encoded.tgt[i]
            assert batch.src[row].tolist() == [*src, EOS_ID] + [PAD_ID] * (
                batch.src.shape[1] - len(src) - 1
            )
            pad = [PAD_ID] * (batch.tgt_in.shape[1] - len(tgt) - 1)
            assert batch.tgt_in[row].tolist() == [BOS_ID, *tgt, *pad]
            assert batch.tgt_out[row].tolist() == [*tgt, EOS_ID, *pad]


def order(batcher: TokenBatcher, epoch: int) -> list[list[int]]:
    return [batch.index.tolist() for batch in batcher.epoch(epoch)]


def test_batching_is_deterministic_for_a_seed(encoded):
    a, b = TokenBatcher(encoded, 256, seed=7), TokenBatcher(encoded, 256, seed=7)
    assert order(a, 0) == order(b, 0) and order(a, 1) == order(b, 1)
    assert order(a, 0) != order(a, 1)
    assert order(a, 0) != order(TokenBatcher(encoded, 256, seed=8), 0)
    # Unshuffled: the same length-ordered batches every epoch, for evaluation.
    plain = TokenBatcher(encoded, 256, shuffle=False)
    assert order(plain, 0) == order(plain, 1)
    widths = [batch.src.shape[1] for batch in plain.epoch()]
    assert widths[0] <= widths[-1]


def test_long_examples_are_dropped_by_max_len_or_refused(encoded):
    lengths = [max(len(s), len(t)) + 1 for s, t in zip(encoded.src, encoded.tgt, strict=True)]
    batcher = TokenBatcher(encoded, 256, max_len=8)
    assert batcher.dropped == sum(n > 8 for n in lengths) > 0
    kept = sorted(i for batch in batcher.epoch(0) for i in batch.index.tolist())
    assert kept == [i for i, n in enumerate(lengths) if n <= 8]
    with pytest.raises(ValueError, match="more than max_tokens=10"):
        TokenBatcher(encoded, 10)


# Demo corpus


def test_demo_corpus_is_deterministic_sized_and_disjoint():
    sizes = {"train": 2000, "valid": 200, "test": 200}
    splits = demo_pairs(seed=1, sizes=sizes)
    assert splits == demo_pairs(seed=1, sizes=sizes)
    assert splits["train"] != demo_pairs(seed=2, sizes=sizes)["train"]
    assert {split: len(pairs) for split, pairs in splits.items()} == sizes
    sources = [{s for s, _ in pairs} for pairs in splits.values()]
    assert sum(map(len, sources)) == sum(sizes.values())  # no repeats within or across splits


def test_demo_language_is_small_and_regular():
    pairs = demo_pairs(seed=0, sizes={"train": 5000})["train"]
    src_types = Counter(w for s, _ in pairs for w in s.split())
    tgt_types = Counter(w for _, t in pairs for w in t.split())
    assert 90 <= len(src_types) <= 110
    # The target inflects nouns, adjectives and verbs: more forms, no more stems.
    assert len(tgt_types) < 300 and not set(src_types) & set(tgt_types)
    for s, t in pairs:
        assert 5 <= len(s.split()) == len(t.split()) <= 15


def test_demo_corpus_files_are_labelled_synthetic(demo):
    assert demo.synthetic and "synthetic" in demo.name
    assert (demo.src_lang, demo.tgt_lang) == ("syn-src", "syn-tgt")
    assert {split: len(demo.pairs(split)) for split in demo.splits} == SMALL_DEMO
    assert demo.pairs("valid") == demo_pairs(sizes=SMALL_DEMO)["valid"]
