"""Training one architecture on a corpus as a job, its BLEU recorded with full provenance.

The final BLEU scores every sentence of the valid and test splits, whatever its length (the
positions are sinusoids computed for any length, so no source is ever cut; a hypothesis is
bounded by ``max_len`` tokens, as fairseq's by ``max_len_b``), and names the test set it was
scored on: the split file's stem and a hash of its sentences (``test_sets.TestSet``).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from nasstudio.data.batching import Batch, EncodedPairs, TokenBatcher, encode_pairs
from nasstudio.data.corpus import Corpus, SentencePair
from nasstudio.data.spec import open_corpus
from nasstudio.data.vocab import PAD_ID, Vocabulary, corpus_vocabulary
from nasstudio.jobs import JobHandle
from nasstudio.jobs.model import job_defaults
from nasstudio.jobs.records import CurvePoint, Measurements, NewArchitectures, NewTask
from nasstudio.metrics.latency import device_name
from nasstudio.model import TransformerMT, hat_super_embed_dims
from nasstudio.space import Architecture, SearchSpace, get_space
from nasstudio.store import BLEU_TEST, BLEU_TEST_TOKENIZED, BLEU_VALID, Measurement, Project, Task
from nasstudio.train.bleu import TOKENIZED_PROCEDURE, BleuScore, corpus_bleu, tokenized_bleu
from nasstudio.train.checkpoint import keep_vocabulary
from nasstudio.train.config import TrainConfig, fit_warmup
from nasstudio.train.result_task import default_vocab_size, result_task_name, why_not_corpus_task
from nasstudio.train.test_sets import TestSet
from nasstudio.train.trainer import EvalSet, Trainer, TrainProgress

TRAINED_SOURCE = "trained"
# Settings that may change between a run and its resume: they do not change the weights.
_NOT_IN_CHECKPOINT_KEY = (
    "max_steps",
    "max_epochs",
    "max_minutes",
    "eval_every",
    "eval_sentences",
    "patience",
    "checkpoint_every",
    "beam",
    "length_penalty",
)


def checkpoint_dir(project: Project, root: str | None = None) -> Path:
    """Checkpoints live beside the project file, not inside it; or under ``root``, a storage
    folder that cluster workers share (``jobs.ray_executor``)."""
    name = project.path.name + ".checkpoints"
    return Path(root) / name if root else project.path.with_name(name)


@dataclass(frozen=True, slots=True)
class PreparedCorpus:
    """A corpus ready to train on: its text, its subword vocabulary, and the project task that
    results on it are recorded under (``result_task.result_task_name``)."""

    data: Corpus
    vocab: Vocabulary
    task: Task


def prepare_corpus(
    handle: JobHandle,
    project: Project,
    task: str,
    corpus: Mapping[str, Any],
    vocab_size: int | None = None,
    vocab_type: str = "bpe",
    cache_dir: str | None = None,
) -> PreparedCorpus:
    """Open ``corpus`` and train (or fetch) its vocabulary: ``vocab_size`` subwords, by default
    ``result_task.default_vocab_size``. Results go to ``result_task.result_task_name``, a task
    with ``task``'s search space (the log says which); a job yields it (``NewTask``) for the
    runner to register."""
    handle.progress(0.0, "reading the corpus")
    data = open_corpus(corpus, cache_dir)
    source_task = _require_task(project, task)
    size = vocab_size or default_vocab_size(project, source_task, corpus)
    handle.progress(0.0, f"training a {vocab_type} vocabulary of {size}")
    vocab = corpus_vocabulary(data, size=size, model_type=vocab_type, cache_dir=cache_dir)
    target = result_task_name(project, source_task, corpus, vocab.size)
    registered = project.task(target) or Task(target, vocab.size, source_task.space, data.name)
    handle.log(f"{data.describe()}; {vocab.describe()}")
    reason = why_not_corpus_task(project, target, corpus)
    handle.log(f"results go to task '{target}'" + (f" ({reason})" if reason else ""))
    return PreparedCorpus(data, vocab, registered)


def run_settings(config: TrainConfig) -> dict[str, Any]:
    """The settings a resumed run must share with the run that wrote the checkpoint: all but
    the budget."""
    return {k: v for k, v in config.as_dict().items() if k not in _NOT_IN_CHECKPOINT_KEY}


def settings_digest(meta: Mapping[str, Any]) -> str:
    """A short stable hash of checkpoint metadata, for checkpoint file names."""
    return hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:12]


@job_defaults("process")
def train_job(
    handle: JobHandle,
    project: Project,
    task: str,
    arch_id: str,
    corpus: Mapping[str, Any],
    config: Mapping[str, Any] | None = None,
    device: str = "cpu",
    vocab_size: int | None = None,
    vocab_type: str = "bpe",
    cache_dir: str | None = None,
    checkpoint_root: str | None = None,
) -> Generator[Any, None, dict[str, Any]]:
    """Train ``arch_id`` (of ``task``) on ``corpus`` (a ``data.spec`` spec) with ``config``
    (``TrainConfig`` fields), then record its BLEU on valid and test.

    Results go to the corpus' task, or one named after the space and vocabulary when that
    task has others (``result_task``), created when new, with the architecture added to it.
    A warm-up longer than a step budget is shortened (``fitted_config``).
    Yields a curve point per progress report and the BLEU measurements at the end, and
    returns the task and the BLEU scores. A cancel keeps the checkpoint; the next run of the
    same setting resumes. Checkpoints go to ``checkpoint_dir(project, checkpoint_root)``.
    """
    settings = fitted_config(handle, TrainConfig.from_dict(dict(config or {})))
    torch.manual_seed(settings.seed)
    prepared = prepare_corpus(handle, project, task, corpus, vocab_size, vocab_type, cache_dir)
    data, vocab, target = prepared.data, prepared.vocab, prepared.task.name
    arch = project.architecture(arch_id)
    yield [NewTask(prepared.task), NewArchitectures(target, (arch,), f"trained (from {task})")]
    folder = checkpoint_dir(project, checkpoint_root)
    space = get_space(prepared.task.space)
    trainer, sets = _trainer(arch, space, data, vocab, settings, torch.device(device), folder)
    if trainer.resumed:
        handle.log(f"resumed from step {trainer.state.step}")
    if trainer.unreadable_checkpoint:
        handle.log(f"warning: {trainer.unreadable_checkpoint}; training starts over")
    handle.progress(0.0, "training")
    for report in trainer.run(should_stop=lambda: handle.cancel_requested):
        handle.progress(0.9 * report.fraction, _describe(report))
        yield CurvePoint(arch_id, report.step, asdict(report))
    handle.check_cancelled()
    scores = _final_bleu(handle, trainer, sets, data)
    yield Measurements(
        tuple(
            Measurement(
                arch_id,
                target,
                metric,
                score.score,
                TRAINED_SOURCE,
                # BLEU does not depend on the device: it stays in the plain bleu_* columns.
                provenance={
                    **_provenance(trainer, data.name, vocab, metric, score),
                    "device": device_name(device),
                },
                test_set=score.test_set.name,
                test_set_digest=score.test_set.digest,
            )
            for metric, score in scores.items()
        )
    )
    summary = " · ".join(f"{m} {s.score:.2f}" for m, s in scores.items())
    handle.progress(1.0, f"{summary} (task {target})")
    return {"task": target, **{metric: score.score for metric, score in scores.items()}}


def fitted_config(handle: JobHandle, config: TrainConfig) -> TrainConfig:
    """``config`` with its warm-up fitted to the step budget, saying so in the job log."""
    fitted = fit_warmup(config)
    if fitted.warmup_steps != config.warmup_steps:
        handle.log(
            f"warm-up of {config.warmup_steps} steps is longer than the {config.max_steps}-step "
            f"budget: shortened to {fitted.warmup_steps}, a tenth of it"
        )
    return fitted


def _require_task(project: Project, name: str) -> Task:
    task = project.task(name)
    if task is None:
        raise KeyError(f"no task '{name}' in the project")
    return task


def training_data(
    data: Corpus, vocab: Vocabulary, config: TrainConfig
) -> tuple[Callable[[int], Sequence[Batch]], dict[str, EvalSet]]:
    """The training batches of an epoch (a function of the epoch), and the evaluation sets of
    the corpus' valid and test splits."""
    encoded = {split: encode_pairs(data.pairs(split), vocab) for split in data.splits}
    train = TokenBatcher(
        encoded["train"], config.max_tokens, max_len=config.max_len, seed=config.seed
    )
    epochs: dict[int, list] = {}

    def train_batches(epoch: int) -> list:
        # One epoch's batches at a time: resume needs random access to the current epoch.
        if epoch not in epochs:
            epochs.clear()
            epochs[epoch] = list(train.epoch(epoch))
        return epochs[epoch]

    sets = {
        split: eval_set(data.pairs(split), encoded[split], config)
        for split in ("valid", "test")
        if split in encoded
    }
    return train_batches, sets


def build_model(
    arch: Architecture,
    vocab: Vocabulary,
    config: TrainConfig,
    super_embed_dims: tuple[int, int] | None = None,
) -> TransformerMT:
    """The model a run of ``arch`` trains (and ``train.translate`` loads its weights into,
    which bring their super widths along)."""
    return TransformerMT(
        arch,
        vocab.size,
        pad_id=vocab.pad_id,
        bos_id=vocab.bos_id,
        eos_id=vocab.eos_id,
        dropout=config.dropout,
        attention_dropout=config.attention_dropout,
        super_embed_dims=super_embed_dims,
    )


def _trainer(
    arch,
    space: SearchSpace,
    data,
    vocab: Vocabulary,
    config: TrainConfig,
    device: torch.device,
    folder: Path,
) -> tuple[Trainer, dict[str, EvalSet]]:
    train_batches, sets = training_data(data, vocab, config)
    # As HAT, inside its space's SuperTransformer: positions, dropout and init of that width.
    model = build_model(arch, vocab, config, hat_super_embed_dims(space, arch))
    keep_vocabulary(folder, vocab)  # a checkpoint alone cannot translate text
    meta = {
        "arch": arch.id,
        "corpus": data.name,
        "vocab": vocab.signature,
        "config": run_settings(config),
        "super_embed_dims": list(model.super_embed_dims),
    }
    trainer = Trainer(
        model,
        config,
        train_batches,
        sets["valid"],
        vocab.decode,
        device,
        checkpoint=folder / f"{arch.id}-{settings_digest(meta)}.pt",
        checkpoint_meta=meta,
    )
    return trainer, sets


def eval_set(pairs: Sequence[SentencePair], encoded: EncodedPairs, config: TrainConfig) -> EvalSet:
    """Validation batches in length order, every sentence whatever its length (one longer
    than ``max_tokens`` alone in its batch); sources batched for decoding, references kept in
    the order the batches visit the sentences."""
    batcher = TokenBatcher(encoded, config.max_tokens, shuffle=False, oversized_alone=True)
    batches = list(batcher.epoch())
    references = [pairs[int(i)][1] for batch in batches for i in batch.index]
    return EvalSet(batches, [b.src for b in batches], references)


@dataclass(frozen=True, slots=True)
class SplitScore:
    """A BLEU score of a split, the test set it was scored on, and how many of its sentences
    were longer than ``max_len`` tokens (their hypotheses are bounded by it)."""

    bleu: BleuScore
    test_set: TestSet
    over_max_len: int

    @property
    def score(self) -> float:
        return self.bleu.score


def split_test_set(data: Corpus, split: str) -> TestSet:
    """A split's test set: named after its source file (``test_2016_flickr.en.gz`` ->
    ``test_2016_flickr``), hashed over its sentences by ``test_sets``' rule, as ``nasstudio
    translate`` hashes the same files."""
    source_file, reference_file = data.paths(split)
    name = source_file.name.removesuffix(".gz").removesuffix(f".{data.src_lang}")
    return TestSet.of_files(name, source_file, reference_file)


def _final_bleu(
    handle: JobHandle, trainer: Trainer, sets: dict[str, EvalSet], data: Corpus
) -> dict[str, SplitScore]:
    """sacrebleu's BLEU on valid and test, and HAT's tokenised BLEU on test, with the
    configured beam and length penalty, reporting each decoded batch."""
    scores = {}
    for metric, split, start in ((BLEU_VALID, "valid", 0.9), (BLEU_TEST, "test", 0.95)):
        if split not in sets:
            continue
        references = list(sets[split].references)
        total = len(references)

        def report(done: int, split: str = split, start: float = start, total: int = total):
            handle.check_cancelled()
            handle.progress(start + 0.05 * done / total, f"decoding {split} {done}/{total}")

        report(0)
        hypotheses = trainer.translate(sets[split].sources, trainer.config.beam, on_batch=report)
        test_set = split_test_set(data, split)
        over = _over_max_len(sets[split], trainer.config.max_len)
        scores[metric] = SplitScore(corpus_bleu(hypotheses, references), test_set, over)
        if metric == BLEU_TEST:
            tokenized = tokenized_bleu(hypotheses, references)
            scores[BLEU_TEST_TOKENIZED] = SplitScore(tokenized, test_set, over)
    return scores


def _over_max_len(data: EvalSet, max_len: int) -> int:
    """Sentences of ``data`` longer than ``max_len`` tokens on either side (eos included), as
    ``TokenBatcher`` counts them."""
    return sum(
        int(
            torch.maximum(b.src.ne(PAD_ID).sum(dim=1), b.tgt_out.ne(PAD_ID).sum(dim=1))
            .gt(max_len)
            .sum()
        )
        for b in data.batches
    )


def _provenance(
    trainer: Trainer, corpus: str, vocab: Vocabulary, metric: str, score: SplitScore
) -> dict[str, Any]:
    state = trainer.state
    return {
        "corpus": corpus,
        "vocab": vocab.signature,
        "steps": state.step,
        "epochs": state.epoch,
        "seed": trainer.config.seed,
        "config": trainer.config.as_dict(),
        "train_seconds": round(state.elapsed_s, 1),
        "best_valid_loss": state.best_valid_loss if math.isfinite(state.best_valid_loss) else None,
        "beam": trainer.config.beam,
        "length_penalty": trainer.config.length_penalty,
        "sentences": score.bleu.sentences,
        "sentences_over_max_len": score.over_max_len,
        "sacrebleu": score.bleu.signature,
        **({"procedure": TOKENIZED_PROCEDURE} if metric == BLEU_TEST_TOKENIZED else {}),
        "time": time.time(),
    }


def _describe(report: TrainProgress) -> str:
    text = f"step {report.step} · loss {report.train_loss:.3f} · {report.tokens_per_s:,.0f} tok/s"
    if report.valid_bleu is not None:
        text += f" · valid BLEU {report.valid_bleu:.1f}"
    return text
