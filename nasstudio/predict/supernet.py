"""HAT's supernet proxy as a Predictor: each architecture scored with the weights it inherits
from a trained SuperTransformer. The value is the validation loss (HAT's proxy); beside it the
BLEU of greedy translations of the first validation sentences, unless ``bleu_sentences`` is 0
(loss only: a search ranks thousands of architectures and greedy decoding costs far more than
the loss). Both are recorded as predictions of kind ``supernet``, named after the checkpoint
and its step. Scoring runs in eval mode without sampling, so the same checkpoint gives the same
scores every time."""

from __future__ import annotations

import time
from collections.abc import Generator, Mapping, Sequence
from pathlib import Path
from typing import Any

from nasstudio.data.batching import EncodedPairs, encode_pairs
from nasstudio.jobs import JobHandle
from nasstudio.jobs.model import job_defaults
from nasstudio.jobs.records import NewArchitectures, NewTask
from nasstudio.metrics.latency import device_name
from nasstudio.model import SuperTransformer
from nasstudio.predict.base import AlsoPredicted, PredictionResult, predictions_of
from nasstudio.space import Architecture
from nasstudio.store import BLEU_VALID, Project
from nasstudio.train.bleu import BleuScore, corpus_bleu
from nasstudio.train.config import TrainConfig
from nasstudio.train.job import PreparedCorpus, eval_set, prepare_corpus
from nasstudio.train.supernet import SUPERNET_KIND, VALID_LOSS, load_supernet, read_checkpoint
from nasstudio.train.trainer import EvalSet


class SupernetPredictor:
    """Scores architectures with a supernet checkpoint on the corpus it was trained on."""

    kind = SUPERNET_KIND
    metric = VALID_LOSS

    def __init__(
        self,
        model: SuperTransformer,
        prepared: PreparedCorpus,
        settings: TrainConfig,
        name: str,
        provenance: Mapping[str, Any],
        bleu_sentences: int,
    ) -> None:
        self.model, self.prepared, self.settings = model, prepared, settings
        self.name, self.provenance = name, dict(provenance)
        loss_set, self._bleu_set = _validation_sets(prepared, settings, bleu_sentences)
        self._loss_batches = [(b.src, b.tgt_in, b.tgt_out) for b in loss_set.batches]
        self.provenance["valid_sentences"] = sum(len(b) for b in loss_set.batches)

    @classmethod
    def load(
        cls,
        handle: JobHandle,
        project: Project,
        task: str,
        checkpoint: str,
        corpus: Mapping[str, Any],
        device: str = "cpu",
        cache_dir: str | None = None,
        bleu_sentences: int = 200,
    ) -> SupernetPredictor:
        """The supernet in ``checkpoint``, trained on ``corpus`` (checked) over ``task``'s space."""
        if bleu_sentences < 0:
            raise ValueError(f"bleu_sentences must be 0 (loss only) or more, got {bleu_sentences}")
        path = Path(checkpoint)
        payload = read_checkpoint(path)
        meta = payload["meta"]
        prepared = prepare_corpus(
            handle, project, task, corpus, meta["vocab_size"], meta["vocab_type"], cache_dir
        )
        _check_corpus(path, meta, prepared)
        settings = TrainConfig.from_dict(meta["config"])
        step = payload["state"]["step"]
        provenance = {
            "checkpoint": str(path.resolve()),
            "step": step,
            "space": meta["space"],
            "corpus": prepared.data.name,
            "vocab": prepared.vocab.signature,
            "device": device_name(device),
        }
        handle.progress(0.0, "preparing the validation set")
        return cls(
            load_supernet(payload, prepared.vocab, settings, device),
            prepared,
            settings,
            f"{SUPERNET_KIND}:{path.stem}@step{step}",
            provenance,
            bleu_sentences,
        )

    def check_fits(self, archs: Sequence[Architecture]) -> None:
        """An architecture the supernet cannot compute is an error before any is scored."""
        for arch in archs:
            try:
                with self.model.using(arch):
                    pass
            except ValueError as exc:
                raise ValueError(f"architecture {arch.id}: {exc}") from None

    def predict(self, archs: Sequence[Architecture]) -> list[PredictionResult]:
        return [self._score(arch) for arch in archs]

    def _score(self, arch: Architecture) -> PredictionResult:
        loss = self.model.score(arch, self._loss_batches)
        provenance = {**self.provenance, "time": time.time()}
        if not self._bleu_set.sources:
            return PredictionResult(arch.id, loss, provenance=provenance)
        with self.model.using(arch):
            bleu = _greedy_bleu(self.model, self._bleu_set, self.prepared, self.settings.max_len)
        extra = {"decoding": "greedy", "sentences": bleu.sentences, "sacrebleu": bleu.signature}
        return PredictionResult(
            arch.id,
            loss,
            provenance=provenance,
            also=(AlsoPredicted(BLEU_VALID, bleu.score, extra),),
        )


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
    """Score architectures of ``task`` with ``SupernetPredictor``; the predictions go to the
    corpus' task, one architecture at a time, so a cancel keeps those done. Returns the scores
    by architecture id."""
    if bleu_sentences < 1:
        raise ValueError(f"bleu_sentences must be at least 1, got {bleu_sentences}")
    predictor = SupernetPredictor.load(
        handle, project, task, checkpoint, corpus, device, cache_dir, bleu_sentences
    )
    archs = [project.architecture(arch_id) for arch_id in arch_ids]
    predictor.check_fits(archs)
    target = predictor.prepared.task
    yield [
        NewTask(target),
        NewArchitectures(target.name, tuple(archs), f"scored by supernet (from {task})"),
    ]
    results = yield from predictions_of(handle, predictor, target.name, archs)
    return {r.arch_id: {VALID_LOSS: r.value, BLEU_VALID: r.also[0].value} for r in results}


def _check_corpus(path: Path, meta: Mapping[str, Any], prepared: PreparedCorpus) -> None:
    """Scores mean something only on the corpus and vocabulary the supernet was trained on."""
    for key, have in (("corpus", prepared.data.name), ("vocab", prepared.vocab.signature)):
        if meta[key] != have:
            raise ValueError(f"{path}: supernet trained with {key} {meta[key]!r}, not {have!r}")


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
    model: SuperTransformer, data: EvalSet, prepared: PreparedCorpus, max_len: int
) -> BleuScore:
    device = model.embed.weight.device
    hypotheses = [
        prepared.vocab.decode(ids)
        for src in data.sources
        for ids in model.greedy(src.to(device), max_len=max_len)
    ]
    return corpus_bleu(hypotheses, data.references)
