"""HAT's weight-sharing SuperTransformer: training it on a corpus with the sandwich rule, as a
job, and reading its checkpoints back. Scoring architectures with the weights they inherit is a
Predictor (``predict.supernet``)."""

from __future__ import annotations

import math
import random
from collections.abc import Generator, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from nasstudio.data.vocab import Vocabulary
from nasstudio.jobs import JobHandle
from nasstudio.jobs.model import job_defaults
from nasstudio.jobs.records import CurvePoint, NewTask
from nasstudio.model import SuperTransformer, sandwich_archs, sandwich_backward
from nasstudio.space import SearchSpace, get_space
from nasstudio.store import Project
from nasstudio.train.checkpoint import read_checkpoint_file
from nasstudio.train.config import TrainConfig
from nasstudio.train.job import (
    PreparedCorpus,
    checkpoint_dir,
    fitted_config,
    prepare_corpus,
    run_settings,
    settings_digest,
    training_data,
)
from nasstudio.train.trainer import Batch, Trainer, TrainProgress

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
    checkpoint_root: str | None = None,
) -> Generator[Any, None, dict[str, Any]]:
    """Train a SuperTransformer over ``task``'s search space on ``corpus`` (a ``data.spec``
    spec) with ``config`` (``TrainConfig`` fields: lr, warm-up, budget, clipping, label
    smoothing, seed, checkpoint and evaluation intervals).

    The checkpoint goes to ``checkpoint``, by default ``supernet-<task>-<hash>.pt`` in
    ``checkpoint_dir(project, checkpoint_root)``; a run that finds a checkpoint of the same
    setting resumes it, and a cancel keeps it. Yields a curve point per progress report
    (``TrainProgress`` fields; ``valid_loss`` is the largest sub-architecture's). Returns the
    checkpoint path, the step and the best validation loss.
    """
    settings = fitted_config(handle, TrainConfig.from_dict(dict(config or {})))
    torch.manual_seed(settings.seed)
    prepared = prepare_corpus(handle, project, task, corpus, vocab_size, vocab_type, cache_dir)
    yield NewTask(prepared.task)
    space = get_space(prepared.task.space)
    train_batches, sets = training_data(prepared.data, prepared.vocab, settings)
    meta = _checkpoint_meta(space, prepared, settings)
    default_name = f"supernet-{prepared.task.name}-{settings_digest(meta)}.pt"
    folder = checkpoint_dir(project, checkpoint_root)
    path = Path(checkpoint) if checkpoint else folder / default_name
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
    if trainer.unreadable_checkpoint:
        handle.log(f"warning: {trainer.unreadable_checkpoint}; training starts over")
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


def load_supernet(
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
        # HAT's positions and width-scaled dropout: a checkpoint of older positions is another run.
        "super_embed_dims": [max(space.encoder_embed_dims), max(space.decoder_embed_dims)],
    }


def read_checkpoint(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    payload = read_checkpoint_file(path)  # weights_only: never runs code from the file
    if not isinstance(payload, dict) or payload.get("meta", {}).get("kind") != SUPERNET_KIND:
        raise ValueError(f"{path}: not a supernet checkpoint (see 'nasstudio supernet train')")
    return payload


def _describe(report: TrainProgress) -> str:
    text = f"step {report.step} · loss {report.train_loss:.3f} · {report.tokens_per_s:,.0f} tok/s"
    if report.valid_loss is not None:
        text += f" · largest valid loss {report.valid_loss:.3f}"
    return text
