"""Parallel corpora, subword vocabularies, token batching and the synthetic demo corpus."""

from nasstudio.data.batching import Batch, EncodedPairs, TokenBatcher, encode_pairs
from nasstudio.data.corpus import (
    SPLITS,
    Corpus,
    CorpusError,
    SentencePair,
    corpus_from_folder,
    multi30k,
    read_lines,
    read_parallel,
)
from nasstudio.data.demo import DEMO_SIZES, DEMO_SRC, DEMO_TGT, demo_pairs, write_demo_corpus
from nasstudio.data.vocab import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    UNK_ID,
    Vocabulary,
    corpus_vocabulary,
    default_cache_dir,
    train_vocabulary,
)

__all__ = [
    "BOS_ID",
    "DEMO_SIZES",
    "DEMO_SRC",
    "DEMO_TGT",
    "EOS_ID",
    "PAD_ID",
    "SPLITS",
    "UNK_ID",
    "Batch",
    "Corpus",
    "CorpusError",
    "EncodedPairs",
    "SentencePair",
    "TokenBatcher",
    "Vocabulary",
    "corpus_from_folder",
    "corpus_vocabulary",
    "default_cache_dir",
    "demo_pairs",
    "encode_pairs",
    "multi30k",
    "read_lines",
    "read_parallel",
    "train_vocabulary",
    "write_demo_corpus",
]
