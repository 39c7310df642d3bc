"""Translating a file with an architecture's trained checkpoint, and scoring it on a test set.

A training run keeps its checkpoint beside the project (``job.checkpoint_dir``) and its
vocabulary beside that (``checkpoint.keep_vocabulary``). The translate job rebuilds the model
from them, translates every line of a file (an empty line gives an empty translation; a line
of any length is translated whole), and with a reference file records BLEU as a measurement
of that test set (``test_sets.TestSet``): a score on one test set never replaces another's.
It scores the sentences a training scores on the same files (a pair blank on both sides is
none), so the two name the same test set.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from nasstudio.data.corpus import read_lines
from nasstudio.data.vocab import EOS_ID, PAD_ID, Vocabulary, default_cache_dir
from nasstudio.jobs import JobHandle
from nasstudio.jobs.model import job_defaults
from nasstudio.jobs.records import Measurements
from nasstudio.metrics.latency import device_name
from nasstudio.model import TransformerMT
from nasstudio.store import (
    BLEU_TEST,
    BLEU_TEST_TOKENIZED,
    BLEU_VALID,
    Measurement,
    Project,
)
from nasstudio.train.bleu import BleuScore, corpus_bleu, tokenized_bleu
from nasstudio.train.checkpoint import (
    UnreadableCheckpoint,
    read_checkpoint_file,
    restore_weights,
    vocabulary_file,
)
from nasstudio.train.config import TrainConfig
from nasstudio.train.job import TRAINED_SOURCE, build_model, checkpoint_dir
from nasstudio.train.test_sets import TestSet, sentence_indices
from nasstudio.train.trainer import autocast_dtype

TRANSLATE_KIND = "translate"
# Its own source: translating the training's test split again (another beam, say) must not
# replace the score the training recorded.
TRANSLATED_SOURCE = "translated"
_DECODING = ("beam", "length_penalty")


class NoCheckpoint(ValueError):
    """An architecture has no trained checkpoint to translate with."""


@dataclass(frozen=True, slots=True)
class TestFiles:
    """Source lines, and with a reference file its lines and the test set they make."""

    __test__ = False  # not a pytest test class

    sources: list[str]
    references: list[str] | None = None
    test_set: TestSet | None = None

    def scored(self, hypotheses: Sequence[str]) -> tuple[list[str], list[str]]:
        """The hypotheses and references of the test set's sentences, to score: a pair
        blank on both sides is none (``test_sets.sentence_indices``)."""
        kept = sentence_indices(self.sources, self.references)
        return [hypotheses[i] for i in kept], [self.references[i] for i in kept]


def default_test_set_name(source: str | Path) -> str:
    """The default name of a test set: its source file's stem (``test2016.en.gz``:
    ``test2016``)."""
    return Path(Path(source).name.removesuffix(".gz")).stem or "test"


def read_test_files(
    source: str | Path, reference: str | Path | None = None, name: str | None = None
) -> TestFiles:
    """The lines of ``source`` and ``reference``; a reference needs one line per source line
    (ValueError naming both files and their counts)."""
    sources = read_lines(source)
    if reference is None:
        return TestFiles(sources)
    references = read_lines(reference)
    if len(references) != len(sources):
        raise ValueError(
            f"{source} has {len(sources):,} lines but the reference {reference} has "
            f"{len(references):,}: a reference needs one line per source line"
        )
    name = (name or "").strip() or default_test_set_name(source)
    test_set = TestSet.of_lines(name, sources, references)
    return TestFiles(sources, references, test_set)


def checkpoint_folders(project: Project, root: str | None = None) -> list[Path]:
    """Where trainings keep checkpoints: beside the project, and under ``root`` when given (a
    Ray cluster's storage: ``job.checkpoint_dir``), as runs of either kind may have
    trained the architecture."""
    folders = [checkpoint_dir(project)]
    if root:
        folders.append(checkpoint_dir(project, root))
    return list(dict.fromkeys(folders))


def checkpoint_files(project: Project, arch_id: str, root: str | None = None) -> list[Path]:
    """The training checkpoints of ``arch_id`` in ``checkpoint_folders``, newest first.
    Cheap: the files are not read."""
    files = [
        f for folder in checkpoint_folders(project, root) for f in folder.glob(f"{arch_id}-*.pt")
    ]
    return sorted(files, key=lambda path: path.stat().st_mtime, reverse=True)


def no_checkpoint_reason(project: Project, task: str, arch_id: str, root: str | None = None) -> str:
    """Why ``arch_id`` cannot be translated with: it was never trained (or its checkpoint
    went), with what to do about it."""
    folders = " or ".join(map(str, checkpoint_folders(project, root)))
    return (
        f"no trained checkpoint of {arch_id} in {folders}: train it first "
        f"(nasstudio train --task {task} --ids {arch_id}, or Train selected… in the window)"
    )


def recorded_decoding(project: Project, task: str, arch_id: str) -> dict[str, Any]:
    """Beam and length penalty of the BLEU a training recorded for ``arch_id`` in ``task``:
    those a translation decodes with unless asked otherwise (``run_config``); {} when none
    is recorded. Cheap: no checkpoint is read."""
    for m in reversed(project.measurements(arch_id, task)):
        if m.source == TRAINED_SOURCE and m.metric == BLEU_VALID:
            config = m.provenance.get("config", {})
            return {k: config[k] for k in _DECODING if k in config}
    return {}


@dataclass(frozen=True, slots=True)
class TrainedCheckpoint:
    """A checkpoint chosen to translate with, and why it was chosen."""

    path: Path
    payload: Mapping[str, Any]
    why: str
    recorded: Mapping[str, Any]  # the settings of the BLEU it stands behind ({}: none)

    @property
    def meta(self) -> Mapping[str, Any]:
        return self.payload["meta"]

    @property
    def step(self) -> int:
        return int(self.payload["state"]["step"])


def choose_checkpoint(
    project: Project,
    task: str,
    arch_id: str,
    path: str | Path | None = None,
    root: str | None = None,
) -> TrainedCheckpoint:
    """``path`` when given; else, of ``checkpoint_files(project, arch_id, root)``, the
    checkpoint of the run behind the BLEU recorded for ``arch_id`` in ``task``, or the newest
    one when none matches. ``NoCheckpoint`` without any."""
    if path is not None:
        return TrainedCheckpoint(Path(path), _read(Path(path)), "as asked", {})
    files = checkpoint_files(project, arch_id, root)
    if not files:
        raise NoCheckpoint(no_checkpoint_reason(project, task, arch_id, root))
    # Only a training records bleu_valid: translations record test sets.
    recorded = [
        m
        for m in project.measurements(arch_id, task)
        if m.source == TRAINED_SOURCE and m.metric == BLEU_VALID
    ]
    readable: list[tuple[Path, Any]] = []
    for file in files:
        try:
            payload = _read(file)
        except UnreadableCheckpoint:
            continue  # a partial or planted file is never translated with
        for m in recorded:
            if _same_run(payload["meta"], m.provenance):
                why = f"the run behind the recorded {m.metric} of task {task}"
                return TrainedCheckpoint(file, payload, why, m.provenance.get("config", {}))
        readable.append((file, payload))
    if not readable:
        reason = no_checkpoint_reason(project, task, arch_id, root)
        raise NoCheckpoint(f"{reason} (none is readable)")
    file, payload = readable[0]
    why = f"the newest of {len(files)}; none is behind a BLEU recorded in task {task}"
    return TrainedCheckpoint(file, payload, why, {})


def _read(path: Path) -> dict[str, Any]:
    """A training checkpoint's payload; ``UnreadableCheckpoint`` for any other file."""
    payload = read_checkpoint_file(path)
    if not isinstance(payload, dict) or not all(
        isinstance(payload.get(part), dict) for part in ("model", "meta", "state")
    ):
        raise UnreadableCheckpoint(f"{path}: not a training checkpoint of nasstudio train")
    return payload


def _same_run(meta: Mapping[str, Any], provenance: Mapping[str, Any]) -> bool:
    """Whether a checkpoint's meta is that of the run a measurement's provenance records."""
    recorded_config = provenance.get("config", {})
    return (
        meta.get("corpus") == provenance.get("corpus")
        and meta.get("vocab") == provenance.get("vocab")
        and all(_plain(recorded_config.get(k)) == _plain(v) for k, v in meta["config"].items())
    )


def _plain(value: Any) -> Any:
    """``value`` as JSON gives it back (tuples become lists), to compare with provenance."""
    return json.loads(json.dumps(value))


def checkpoint_vocabulary(checkpoint: TrainedCheckpoint) -> Vocabulary:
    """The vocabulary a checkpoint was trained with: kept beside it, else found by its digest
    in the vocabulary cache (runs from before vocabularies were kept)."""
    signature = str(checkpoint.meta.get("vocab", ""))
    digest = signature.rpartition("model:")[2]
    beside = vocabulary_file(checkpoint.path.parent, digest)
    cache = default_cache_dir()
    for file in (beside, *sorted(cache.glob("*.model"))):
        if file.is_file():
            model = file.read_bytes()
            if hashlib.sha256(model).hexdigest()[: len(digest)] == digest:
                return Vocabulary(model)
    raise ValueError(
        f"{checkpoint.path}: its vocabulary ({signature}) is neither beside it ({beside.name}) "
        f"nor in {cache}: train the architecture again to translate with it"
    )


def load_model(checkpoint: TrainedCheckpoint, project: Project) -> tuple[TransformerMT, Vocabulary]:
    """The trained model and its vocabulary, rebuilt from ``checkpoint``."""
    vocab = checkpoint_vocabulary(checkpoint)
    arch = project.architecture(checkpoint.meta["arch"])
    model = build_model(arch, vocab, run_config(checkpoint))
    restore_weights(checkpoint.path, checkpoint.payload, model)
    return model, vocab


def run_config(checkpoint: TrainedCheckpoint) -> TrainConfig:
    """The settings of the run that wrote ``checkpoint``, decoding as its recorded BLEU did
    (beam and length penalty; without one, the defaults)."""
    config = TrainConfig.from_dict(dict(checkpoint.meta.get("config", {})))
    decoding = {k: checkpoint.recorded[k] for k in _DECODING if k in checkpoint.recorded}
    return replace(config, **decoding)


def source_batches(encoded: Sequence[Sequence[int]], max_tokens: int) -> list[list[int]]:
    """Indices of the non-empty sentences in batches of at most ``max_tokens`` padded tokens
    (eos included), in length order; a sentence longer than that forms a batch of its own,
    so that every sentence is translated."""
    order = sorted((i for i, ids in enumerate(encoded) if ids), key=lambda i: len(encoded[i]))
    batches: list[list[int]] = []
    for i in order:
        width = len(encoded[i]) + 1
        if batches and (len(batches[-1]) + 1) * width <= max_tokens:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def _source_tensor(rows: Sequence[Sequence[int]]) -> torch.Tensor:
    out = torch.full((len(rows), max(map(len, rows)) + 1), PAD_ID, dtype=torch.long)
    for row, ids in zip(out, rows, strict=True):
        row[: len(ids) + 1] = torch.tensor([*ids, EOS_ID])
    return out


@torch.inference_mode()
def translate_lines(
    handle: JobHandle,
    model: TransformerMT,
    vocab: Vocabulary,
    sources: Sequence[str],
    config: TrainConfig,
    device: torch.device,
) -> list[str]:
    """Detokenised translations of ``sources``, one per line, reporting progress per batch.
    Every source is read whole; a translation is bounded by ``max_len`` tokens (and twice the
    source length plus 10), as in the training's final BLEU."""
    model.to(device).eval()
    encoded = vocab.encode_many(sources)
    hypotheses = [""] * len(sources)
    total = len(sources)
    done = sum(1 for ids in encoded if not ids)  # empty lines: empty translations
    handle.progress(done / max(total, 1), f"translating {done}/{total}")
    dtype = autocast_dtype(config, device)
    for batch in source_batches(encoded, config.max_tokens):
        handle.check_cancelled()
        src = _source_tensor([encoded[i] for i in batch]).to(device)
        autocast = torch.autocast(device.type, dtype) if dtype else contextlib.nullcontext()
        with autocast:
            if config.beam > 1:
                ids = model.beam_search(src, config.beam, config.max_len, config.length_penalty)
            else:
                ids = model.greedy(src, config.max_len)
        for i, sentence in zip(batch, ids, strict=True):
            hypotheses[i] = vocab.decode(sentence)
        done += len(batch)
        handle.progress(done / total, f"translating {done}/{total}")
    return hypotheses


def write_lines(path: str | Path, lines: Sequence[str]) -> None:
    """Write one line per sentence; a reader never sees half a file."""
    path = Path(path)
    text = "".join(f"{line}\n" for line in lines)
    if path.exists() and not path.is_file():
        # A device or pipe (/dev/stdout, a FIFO): renaming over it would replace it.
        with path.open("w", encoding="utf-8") as stream:
            stream.write(text)
        return
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


@job_defaults("process")
def translate_job(
    handle: JobHandle,
    project: Project,
    task: str,
    arch_id: str,
    source: str,
    output: str | None = None,
    reference: str | None = None,
    name: str | None = None,
    beam: int | None = None,
    length_penalty: float | None = None,
    device: str = "cpu",
    checkpoint: str | None = None,
    checkpoint_root: str | None = None,
) -> Generator[Any, None, dict[str, Any]]:
    """Translate the file ``source`` with ``arch_id``'s trained checkpoint (``checkpoint``, or
    ``choose_checkpoint``'s) and write the translations to ``output``. With ``reference``,
    record BLEU (sacrebleu's and the tokenised one) in ``task`` as measurements of the test
    set ``name`` (default: the source file's stem). ``beam`` and ``length_penalty`` default
    to those of the BLEU the checkpoint stands behind (``run_config``). Checkpoints are looked
    for beside the project and under ``checkpoint_root`` when given (a Ray cluster's
    storage).

    Returns the translations, the test set and the scores."""
    files = read_test_files(source, reference, name)
    chosen = choose_checkpoint(project, task, arch_id, checkpoint, checkpoint_root)
    handle.log(f"checkpoint {chosen.path} at step {chosen.step} ({chosen.why})")
    model, vocab = load_model(chosen, project)
    asked = {"beam": beam, "length_penalty": length_penalty}
    config = replace(run_config(chosen), **{k: v for k, v in asked.items() if v is not None})
    hypotheses = translate_lines(handle, model, vocab, files.sources, config, torch.device(device))
    if output:
        write_lines(output, hypotheses)
        handle.log(f"{len(hypotheses):,} translations written to {output}")
    result: dict[str, Any] = {"hypotheses": hypotheses, "checkpoint": str(chosen.path)}
    if files.test_set is None:
        handle.progress(1.0, f"translated {len(hypotheses):,} lines")
        return result
    scored_hypotheses, references = files.scored(hypotheses)
    scores = {
        BLEU_TEST: corpus_bleu(scored_hypotheses, references),
        BLEU_TEST_TOKENIZED: tokenized_bleu(scored_hypotheses, references),
    }
    provenance = {
        "checkpoint": str(chosen.path),
        "steps": chosen.step,
        "corpus": chosen.meta.get("corpus"),
        "vocab": vocab.signature,
        "config": config.as_dict(),
        "beam": config.beam,
        "length_penalty": config.length_penalty,
        "source_file": str(Path(source).resolve()),
        "reference_file": str(Path(reference).resolve()),
        "device": device_name(device),
        "time": time.time(),
    }
    yield Measurements(
        tuple(
            _measurement(arch_id, task, m, s, files.test_set, provenance) for m, s in scores.items()
        )
    )
    test_set = files.test_set
    summary = " · ".join(f"{m} {s.score:.2f}" for m, s in scores.items())
    handle.log(f"BLEU on {test_set.name} ({test_set.digest}): {summary}")
    for metric, score in scores.items():
        handle.log(f"{metric} signature: {score.signature}")
    handle.progress(1.0, f"{summary} on {test_set.name}")
    result.update(
        test_set=test_set.name,
        test_set_digest=test_set.digest,
        scores={m: {"score": s.score, "signature": s.signature} for m, s in scores.items()},
    )
    return result


def _measurement(
    arch_id: str,
    task: str,
    metric: str,
    score: BleuScore,
    test_set: TestSet,
    provenance: Mapping[str, Any],
) -> Measurement:
    return Measurement(
        arch_id,
        task,
        metric,
        score.score,
        TRANSLATED_SOURCE,
        provenance={**provenance, "sentences": score.sentences, "sacrebleu": score.signature},
        test_set=test_set.name,
        test_set_digest=test_set.digest,
    )
