"""HAT's weight-sharing SuperTransformer as two jobs: train it on a corpus with the sandwich
rule, and score architectures with the weights they inherit from it.

Scores are HAT's supernet proxy (the validation loss of the sub-architecture) and the BLEU of
its greedy translations; both are recorded as predictions of kind ``supernet``, named after
the checkpoint and its step. Scoring runs in eval mode without sampling, so the same
checkpoint gives the same scores every time.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Generator, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from nasstudio.data.batching import EncodedPairs, encode_pairs
from nasstudio.data.vocab import Vocabulary
from nasstudio.jobs import JobHandle
from nasstudio.jobs.model import job_defaults
from nasstudio.jobs.records import CurvePoint, NewArchitectures, NewTask, Predictions
from nasstudio.metrics.latency import device_name
from nasstudio.model import SuperTransformer, sandwich_archs, sandwich_backward
from nasstudio.space import Architecture, SearchSpace, get_space
from nasstudio.store import BLEU_VALID, Prediction, Project
from nasstudio.train.bleu import BleuScore, corpus_bleu
from nasstudio.train.config import TrainConfig
from nasstudio.train.job import (
    PreparedCorpus,
    checkpoint_dir,
    eval_set,
    prepare_corpus,
    run_settings,
    settings_digest,
    training_data,
)
from nasstudio.train.trainer import Batch, EvalSet, Trainer, TrainProgress

SUPERNET_KIND = "supernet"
VALID_LOSS = "valid_loss"


class SupernetTrainer(Trainer):
    """A Trainer whose optimiser step follows the sandwich rule: the gradients of the largest,
    the smallest and one random sub-architecture, summed. Between steps the supernet computes
    its largest sub-architecture, so the validation loss and BLEU curve are the largest's."""

    model: SuperTransformer

    def _accumulate_gradients(self, group: Sequence[Batch], tokens: int) -> float:
        # The random sub-architecture depends on (seed, step) alone: a resumed run draws the
        # same ones as a run that was never interrupted.
        rng = random.Random(f"{self.config.seed}:{self.state.step}")
        archs = sandwich_archs(self.model.space, rng)
        total = 0.0
        for batch in group:
            # Each batch's mean loss weighs by its share of the step's tokens, as in Trainer.
            share = batch.ntokens / tokens
            total += share * sandwich_backward(
                self.model,
                archs,
                (
                    batch.src.to(self.device),
                    batch.tgt_in.to(self.device),
                    batch.tgt_out.to(self.device),
                ),
                label_smoothing=self.config.label_smoothing,
                autocast_dtype=self.amp_dtype,
                scale=lambda loss, share=share: self.scaler.scale(loss * share),
            )
        return total


@job_defaults("process")
def supernet_train_job(
    handle: JobHandle,
    project: Project,
    task: str,
    corpus: Mapping[str, Any],
    config: Mapping[str, Any] | None = None,
    device: str = "cpu",
    vocab_size: int | None = None,
    checkpoint: str | None = None,
    cache_dir: str | None = None,
    vocab_type: str = "bpe",
) -> Generator[Any, None, dict[str, Any]]:
    """Train a SuperTransformer over ``task``'s search space on ``corpus`` (a ``data.spec``
    spec) with ``config`` (``TrainConfig`` fields: lr, warm-up, budget, clipping, label
    smoothing, seed, checkpoint and evaluation intervals).

    The checkpoint goes to ``checkpoint``, by default ``supernet-<task>-<hash>.pt`` beside the
    project; a run that finds a checkpoint of the same setting resumes it, and a cancel keeps
    it. Yields a curve point per progress report (``TrainProgress`` fields; ``valid_loss`` is
    the largest sub-architecture's). Returns the checkpoint path, the step and the best
    validation loss.
    """
    settings = TrainConfig.from_dict(dict(config or {}))
    torch.manual_seed(settings.seed)
    prepared = prepare_corpus(handle, project, task, corpus, vocab_size, vocab_type, cache_dir)
    yield NewTask(prepared.task)
    space = get_space(prepared.task.space)
    train_batches, sets = training_data(prepared.data, prepared.vocab, settings)
    meta = _checkpoint_meta(space, prepared, settings)
    default_name = f"supernet-{prepared.task.name}-{settings_digest(meta)}.pt"
    path = Path(checkpoint) if checkpoint else checkpoint_dir(project) / default_name
    trainer = SupernetTrainer(
        _supernet(space, prepared.vocab, settings),
        settings,
        train_batches,
        sets["valid"],
        prepared.vocab.decode,
        torch.device(device),
        checkpoint=path,
        checkpoint_meta=meta,
    )
    if trainer.resumed:
        handle.log(f"resumed {path} from step {trainer.state.step}")
    handle.progress(0.0, f"training the supernet of {space.name}")
    for report in trainer.run(should_stop=lambda: handle.cancel_requested):
        handle.progress(report.fraction, _describe(report))
        yield CurvePoint(SUPERNET_KIND, report.step, asdict(report))
    handle.check_cancelled()
    best = trainer.state.best_valid_loss
    handle.progress(1.0, f"supernet at step {trainer.state.step}: {path}")
    return {
        "checkpoint": str(path),
        "step": trainer.state.step,
        "best_valid_loss": best if math.isfinite(best) else None,
    }


@job_defaults("process")
def supernet_score_job(
    handle: JobHandle,
    project: Project,
    task: str,
    arch_ids: Sequence[str],
    checkpoint: str,
    corpus: Mapping[str, Any],
    device: str = "cpu",
    cache_dir: str | None = None,
    bleu_sentences: int = 200,
) -> Generator[Any, None, dict[str, dict[str, float]]]:
    """Score architectures of ``task`` with the weights they inherit from the supernet in
    ``checkpoint``, trained on ``corpus``: the validation loss, and the BLEU of greedy
    translations of the first ``bleu_sentences`` validation sentences.

    Both are recorded per architecture as predictions (kind ``supernet``, predictor
    ``supernet:<checkpoint stem>@step<N>``) in the corpus' task, yielded one architecture at a
    time, so a cancel keeps those done. Returns the scores by architecture id.
    """
    if bleu_sentences < 1:
        raise ValueError(f"bleu_sentences must be at least 1, got {bleu_sentences}")
    path = Path(checkpoint)
    payload = _read_checkpoint(path)
    meta = payload["meta"]
    prepared = prepare_corpus(
        handle, project, task, corpus, meta["vocab_size"], meta["vocab_type"], cache_dir
    )
    _check_corpus(path, meta, prepared)
    settings = TrainConfig.from_dict(meta["config"])
    model = _load_supernet(payload, prepared.vocab, settings, device)
    archs = _fitting_architectures(project, model, arch_ids)
    target = prepared.task.name
    yield [
        NewTask(prepared.task),
        NewArchitectures(target, tuple(archs), f"scored by supernet (from {task})"),
    ]
    handle.progress(0.0, "preparing the validation set")
    loss_set, bleu_set = _validation_sets(prepared, settings, bleu_sentences)
    loss_batches = [(b.src, b.tgt_in, b.tgt_out) for b in loss_set.batches]
    step = payload["state"]["step"]
    predictor = f"{SUPERNET_KIND}:{path.stem}@step{step}"
    provenance = {
        "checkpoint": str(path.resolve()),
        "step": step,
        "space": meta["space"],
        "corpus": prepared.data.name,
        "vocab": prepared.vocab.signature,
        "valid_sentences": sum(len(b) for b in loss_set.batches),
        "device": device_name(device),
    }
    scores: dict[str, dict[str, float]] = {}
    for done, arch in enumerate(archs):
        handle.check_cancelled()
        handle.progress(done / len(archs), f"scoring {arch.id} ({done + 1}/{len(archs)})")
        loss = model.score(arch, loss_batches)
        with model.using(arch):
            bleu = _greedy_bleu(model, bleu_set, prepared.vocab, settings.max_len)
        scores[arch.id] = {VALID_LOSS: loss, BLEU_VALID: bleu.score}
        yield Predictions(
            tuple(
                _predictions(
                    arch.id, target, predictor, loss, bleu, {**provenance, "time": time.time()}
                )
            )
        )
    handle.progress(1.0, f"scored {len(scores)} architectures with {predictor}")
    return scores


def _supernet(space: SearchSpace, vocab: Vocabulary, config: TrainConfig) -> SuperTransformer:
    return SuperTransformer(
        space,
        vocab.size,
        pad_id=vocab.pad_id,
        bos_id=vocab.bos_id,
        eos_id=vocab.eos_id,
        dropout=config.dropout,
        attention_dropout=config.attention_dropout,
    )


def _load_supernet(
    payload: Mapping[str, Any], vocab: Vocabulary, config: TrainConfig, device: str
) -> SuperTransformer:
    model = _supernet(get_space(payload["meta"]["space"]), vocab, config)
    model.load_state_dict(payload["model"])
    return model.to(torch.device(device)).eval()


def _checkpoint_meta(
    space: SearchSpace, prepared: PreparedCorpus, config: TrainConfig
) -> dict[str, Any]:
    """What a resume must match, and what scoring needs to rebuild the vocabulary."""
    vocab = prepared.vocab
    return {
        "kind": SUPERNET_KIND,
        "space": space.name,
        "corpus": prepared.data.name,
        "vocab": vocab.signature,
        "vocab_size": vocab.requested_size or vocab.size,
        "vocab_type": vocab.model_type,
        "config": run_settings(config),
    }


def _read_checkpoint(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises several types for a file that is not its own
        raise ValueError(f"{path}: not a readable checkpoint ({exc})") from exc
    if not isinstance(payload, dict) or payload.get("meta", {}).get("kind") != SUPERNET_KIND:
        raise ValueError(f"{path}: not a supernet checkpoint (see 'nasstudio supernet train')")
    return payload


def _check_corpus(path: Path, meta: Mapping[str, Any], prepared: PreparedCorpus) -> None:
    """Scores mean something only on the corpus and vocabulary the supernet was trained on."""
    for key, have in (("corpus", prepared.data.name), ("vocab", prepared.vocab.signature)):
        if meta[key] != have:
            raise ValueError(f"{path}: supernet trained with {key} {meta[key]!r}, not {have!r}")


def _fitting_architectures(
    project: Project, model: SuperTransformer, arch_ids: Sequence[str]
) -> list[Architecture]:
    """The architectures asked for; one the supernet cannot compute is an error up front."""
    archs = [project.architecture(arch_id) for arch_id in arch_ids]
    for arch in archs:
        try:
            with model.using(arch):
                pass
        except ValueError as exc:
            raise ValueError(f"architecture {arch.id}: {exc}") from None
    return archs


def _validation_sets(
    prepared: PreparedCorpus, config: TrainConfig, bleu_sentences: int
) -> tuple[EvalSet, EvalSet]:
    """The whole validation split for the loss; its first ``bleu_sentences`` for BLEU (in
    corpus order, so not only the shortest ones)."""
    pairs = prepared.data.pairs("valid")
    encoded = encode_pairs(pairs, prepared.vocab)
    n = bleu_sentences
    first = EncodedPairs(encoded.src[:n], encoded.tgt[:n])
    return eval_set(pairs, encoded, config), eval_set(pairs[:n], first, config)


def _greedy_bleu(
    model: SuperTransformer, data: EvalSet, vocab: Vocabulary, max_len: int
) -> BleuScore:
    device = model.embed.weight.device
    hypotheses = [
        vocab.decode(ids)
        for src in data.sources
        for ids in model.greedy(src.to(device), max_len=max_len)
    ]
    return corpus_bleu(hypotheses, data.references)


def _predictions(
    arch_id: str,
    task: str,
    predictor: str,
    loss: float,
    bleu: BleuScore,
    provenance: dict[str, Any],
) -> list[Prediction]:
    bleu_provenance = {
        **provenance,
        "decoding": "greedy",
        "sentences": bleu.sentences,
        "sacrebleu": bleu.signature,
    }
    return [
        Prediction(
            arch_id, task, VALID_LOSS, loss, SUPERNET_KIND, predictor, provenance=provenance
        ),
        Prediction(
            arch_id,
            task,
            BLEU_VALID,
            bleu.score,
            SUPERNET_KIND,
            predictor,
            provenance=bleu_provenance,
        ),
    ]


def _describe(report: TrainProgress) -> str:
    text = f"step {report.step} · loss {report.train_loss:.3f} · {report.tokens_per_s:,.0f} tok/s"
    if report.valid_loss is not None:
        text += f" · largest valid loss {report.valid_loss:.3f}"
    return text
