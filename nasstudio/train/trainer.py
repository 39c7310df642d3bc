"""The training loop: Adam with warm-up, label smoothing, clipping, mixed precision, gradient
accumulation, periodic validation, checkpoints, resume and early stop.

It knows batches and a model, not corpora or the store: ``train/job.py`` wires those in.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

# The first torch.optim optimiser imports torch._dynamo (about a second). Imported here, that
# happens on the thread that imports this module (the GUI's, at start) rather than in a job's
# worker thread, where it once stalled a GUI test for minutes while the GUI thread waited.
import torch._dynamo
from torch import Tensor

from nasstudio.model import TransformerMT, token_cross_entropy, validation_loss
from nasstudio.train.bleu import BleuScore, corpus_bleu
from nasstudio.train.checkpoint import (
    TrainingState,
    UnreadableCheckpoint,
    load_checkpoint,
    save_checkpoint,
)
from nasstudio.train.config import TrainConfig


class Batch(Protocol):
    src: Tensor  # B x S
    tgt_in: Tensor  # B x T, starts with BOS
    tgt_out: Tensor  # B x T, ends with EOS
    ntokens: int


@dataclass(frozen=True, slots=True)
class TrainProgress:
    """One report of a run: the latest loss, and validation figures when it evaluated."""

    step: int
    epoch: int
    fraction: float  # of the budget
    train_loss: float
    lr: float
    tokens_per_s: float
    valid_loss: float | None = None
    valid_bleu: float | None = None


@dataclass
class EvalSet:
    """Validation data: teacher-forced batches for the loss, and source batches with their
    reference texts for BLEU."""

    batches: Sequence[Batch]
    sources: Sequence[Tensor] = field(default_factory=list)  # B x S each
    references: Sequence[str] = field(default_factory=list)


def learning_rate_factor(config: TrainConfig, total_steps: int | None) -> Callable[[int], float]:
    """The multiplier of ``config.lr`` at a step: linear warm-up, then inverse square root
    decay, or cosine decay to ``min_lr`` over ``total_steps`` (inverse sqrt when unknown)."""
    warmup = config.warmup_steps

    def inverse_sqrt(step: int) -> float:
        step = max(step, 1)
        return min(step / warmup, math.sqrt(warmup / step))

    def cosine(step: int) -> float:
        if step < warmup:
            return max(step, 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        floor = config.min_lr / config.lr
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return cosine if config.schedule == "cosine" and total_steps else inverse_sqrt


def autocast_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``config.precision`` on ``device`` (None: full precision)."""
    if config.precision == "fp32" or (config.precision == "auto" and device.type != "cuda"):
        return None
    if config.precision == "fp16":
        return torch.float16
    if config.precision == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


class Trainer:
    """Trains ``model`` on ``train_batches(epoch)``; ``run`` yields a TrainProgress now and then.

    ``checkpoint`` (a file path) is written every ``checkpoint_every`` steps and at the end,
    and a run that finds it resumes from it: same step counter, same data position.
    """

    def __init__(
        self,
        model: TransformerMT,
        config: TrainConfig,
        train_batches: Callable[[int], Sequence[Batch]],
        valid: EvalSet,
        decode_text: Callable[[list[int]], str],
        device: torch.device,
        checkpoint: Path | None = None,
        checkpoint_meta: dict[str, Any] | None = None,
    ) -> None:
        self.model = model.to(device)
        self.config = config
        self.train_batches = train_batches
        self.valid = valid
        self.decode_text = decode_text
        self.device = device
        self.checkpoint = checkpoint
        self.checkpoint_meta = checkpoint_meta or {}
        self.total_steps = self._total_steps()
        self.optimizer = torch.optim.Adam(
            model.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, learning_rate_factor(config, self.total_steps)
        )
        self.amp_dtype = autocast_dtype(config, device)
        if device.type == "cuda":
            # TF32 tensor cores for what runs outside autocast (fp32 runs, the loss).
            torch.set_float32_matmul_precision("high")
        # fp16 needs loss scaling; bf16 has fp32's range and does not.
        self.scaler = torch.amp.GradScaler(
            device.type, enabled=self.amp_dtype == torch.float16 and device.type == "cuda"
        )
        self.state = TrainingState()
        self.resumed = False
        self.unreadable_checkpoint: str | None = None  # why a checkpoint was not resumed
        if checkpoint is not None and checkpoint.exists():
            try:
                self.state = load_checkpoint(
                    checkpoint, self.model, self.optimizer, self.scheduler, self.checkpoint_meta
                )
                self.resumed = True
            except UnreadableCheckpoint as exc:  # corrupt or unsafe: the run starts over
                self.unreadable_checkpoint = str(exc)

    # --- the loop -------------------------------------------------------------------------

    def run(self, should_stop: Callable[[], bool] = lambda: False) -> Iterator[TrainProgress]:
        """Train until the budget is spent, early stop, or ``should_stop()``; a checkpoint is
        written whenever the loop ends, so a cancelled run can resume."""
        config, state = self.config, self.state
        started = time.perf_counter() - state.elapsed_s
        window_tokens, window_start, loss = 0, time.perf_counter(), float("nan")
        try:
            while not self._budget_spent(started):
                batches = self.train_batches(state.epoch)
                position = state.batch_in_epoch
                while position < len(batches) and not self._budget_spent(started):
                    group = batches[position : position + config.accumulate]
                    loss, tokens = self._step(group)
                    position += len(group)
                    state.step, state.batch_in_epoch = state.step + 1, position
                    window_tokens += tokens
                    state.elapsed_s = time.perf_counter() - started
                    if should_stop():
                        return
                    evaluate = state.step % config.eval_every == 0
                    if evaluate or state.step % 10 == 0:
                        rate = window_tokens / max(time.perf_counter() - window_start, 1e-9)
                        window_tokens, window_start = 0, time.perf_counter()
                        yield self._progress(loss, rate, started, evaluate)
                        if evaluate and self._no_more_gain():
                            return
                    if state.step % config.checkpoint_every == 0:
                        self.save()
                if position >= len(batches):  # a budget that ends mid-epoch stays there
                    state.epoch, state.batch_in_epoch = state.epoch + 1, 0
        finally:
            state.elapsed_s = time.perf_counter() - started
            self.save()

    def _step(self, group: Sequence[Batch]) -> tuple[float, int]:
        """One optimiser step over ``group`` (gradient accumulation); mean loss per token."""
        self.model.train()
        tokens = sum(b.ntokens for b in group)
        loss = self._accumulate_gradients(group, tokens)
        if self.config.clip_norm > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        return loss, tokens

    def _accumulate_gradients(self, group: Sequence[Batch], tokens: int) -> float:
        """Backward passes of ``group``, each batch weighted by its share of ``tokens``;
        returns the mean loss per token."""
        total = 0.0
        for batch in group:
            with self._autocast():
                logits = self.model(batch.src.to(self.device), batch.tgt_in.to(self.device))
                loss = self._loss(logits, batch.tgt_out.to(self.device), "sum") / tokens
            self.scaler.scale(loss).backward()
            total += float(loss.detach())
        return total

    def _loss(self, logits: Tensor, target: Tensor, reduction: str) -> Tensor:
        return token_cross_entropy(
            logits, target, self.model.pad_id, self.config.label_smoothing, reduction
        )

    def _progress(
        self, loss: float, tokens_per_s: float, started: float, evaluate: bool
    ) -> TrainProgress:
        valid_loss = valid_bleu = None
        if evaluate:
            valid_loss = self.valid_loss()
            sentences = self.config.eval_sentences
            valid_bleu = self.bleu(self.valid, beam=1, limit=sentences).score
            if valid_loss < self.state.best_valid_loss - 1e-4:
                self.state.best_valid_loss = valid_loss
                self.state.evaluations_without_gain = 0
            else:
                self.state.evaluations_without_gain += 1
        return TrainProgress(
            step=self.state.step,
            epoch=self.state.epoch,
            fraction=self._fraction(started),
            train_loss=loss,
            lr=self.scheduler.get_last_lr()[0],
            tokens_per_s=tokens_per_s,
            valid_loss=valid_loss,
            valid_bleu=valid_bleu,
        )

    # --- budget ---------------------------------------------------------------------------

    def _total_steps(self) -> int | None:
        """Steps the budget allows when that is known without running (for cosine decay)."""
        bounds = []
        if self.config.max_steps is not None:
            bounds.append(self.config.max_steps)
        if self.config.max_epochs is not None:
            per_epoch = math.ceil(len(self.train_batches(0)) / self.config.accumulate)
            bounds.append(per_epoch * self.config.max_epochs)
        return min(bounds) if bounds else None

    def _fraction(self, started: float) -> float:
        parts = []
        if self.total_steps:
            parts.append(self.state.step / self.total_steps)
        if self.config.max_minutes:
            parts.append((time.perf_counter() - started) / (60 * self.config.max_minutes))
        return min(1.0, max(parts, default=0.0))

    def _budget_spent(self, started: float) -> bool:
        config, state = self.config, self.state
        return (
            (config.max_steps is not None and state.step >= config.max_steps)
            or (config.max_epochs is not None and state.epoch >= config.max_epochs)
            or (
                config.max_minutes is not None
                and time.perf_counter() - started >= 60 * config.max_minutes
            )
        )

    def _no_more_gain(self) -> bool:
        patience = self.config.patience
        return patience is not None and self.state.evaluations_without_gain >= patience

    # --- evaluation -----------------------------------------------------------------------

    def valid_loss(self) -> float:
        """Mean validation cross-entropy per target token, without label smoothing."""
        return validation_loss(
            self.model, ((b.src, b.tgt_in, b.tgt_out) for b in self.valid.batches)
        )

    @torch.inference_mode()
    def translate(
        self,
        sources: Iterable[Tensor],
        beam: int,
        limit: int | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> list:
        """Detokenised translations of the source batches (at most ``limit`` sentences);
        ``on_batch`` hears the number translated so far after each batch."""
        self.model.eval()
        out: list[str] = []
        for src in sources:
            if limit is not None and len(out) >= limit:
                break
            src, max_len = src.to(self.device), self.config.max_len
            with self._autocast():
                if beam > 1:
                    ids = self.model.beam_search(
                        src, beam=beam, max_len=max_len, length_penalty=self.config.length_penalty
                    )
                else:
                    ids = self.model.greedy(src, max_len=max_len)
            out.extend(self.decode_text(seq) for seq in ids)
            if on_batch is not None:
                on_batch(min(len(out), limit) if limit is not None else len(out))
        return out[:limit] if limit is not None else out

    def bleu(
        self,
        data: EvalSet,
        beam: int,
        limit: int | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> BleuScore:
        hypotheses = self.translate(data.sources, beam, limit, on_batch)
        return corpus_bleu(hypotheses, list(data.references[: len(hypotheses)]))

    # --- checkpoints ----------------------------------------------------------------------

    def save(self) -> None:
        if self.checkpoint is not None:
            save_checkpoint(
                self.checkpoint,
                self.model,
                self.optimizer,
                self.scheduler,
                self.state,
                self.checkpoint_meta,
            )

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)
