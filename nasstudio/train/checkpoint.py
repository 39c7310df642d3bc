"""Checkpoints that survive a crash: written to a temporary file, then renamed into place.

A checkpoint holds tensors and plain values only (dicts, lists, tuples, numbers, strings: the
random generators' states too), so that it loads with ``torch.load(weights_only=True)``: a file
planted in the checkpoint folder cannot run code. One that does not load that way, or does not
fit the run, is ``UnreadableCheckpoint``: the trainer names it in a warning and starts over.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nasstudio.data.vocab import Vocabulary
from nasstudio.model import outdated_weights

_PARTS = ("model", "optimizer", "scheduler", "state", "meta", "rng")


class UnreadableCheckpoint(ValueError):
    """A checkpoint file that is corrupt, holds more than tensors and plain values, or does
    not have the parts of a training checkpoint; the message names the file."""


@dataclass
class TrainingState:
    """Where a run stands: the optimiser step, and the epoch and batch it has reached."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_valid_loss: float = float("inf")
    evaluations_without_gain: int = 0
    elapsed_s: float = 0.0


def save_checkpoint(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    state: TrainingState,
    meta: dict[str, Any],
) -> None:
    """Write everything a resume needs; a crash mid-write leaves the previous file intact."""
    payload = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "state": vars(state),
        "meta": meta,
        "rng": _rng_state(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(payload, partial)
    os.replace(partial, path)


def read_checkpoint_file(path: Path) -> Any:
    """What ``path`` holds, loaded with ``weights_only=True``: tensors and plain values, never
    code. ``UnreadableCheckpoint`` when it is corrupt or holds anything else."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types: UnpicklingError, RuntimeError, EOFError…
        first_line = (str(exc).strip().splitlines() or [""])[0][:200]
        raise UnreadableCheckpoint(
            f"{path}: not a readable checkpoint ({type(exc).__name__}: {first_line})"
        ) from None


def load_checkpoint(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    expected_meta: dict[str, Any],
) -> TrainingState:
    """Restore a run from ``path``. A checkpoint of another architecture, corpus or setting
    is refused with the first key that differs rather than silently mixed in (ValueError); a
    corrupt or unsafe one is ``UnreadableCheckpoint``, raised before anything is restored."""
    payload = read_checkpoint_file(path)
    _check_parts(path, payload, model)
    for key, value in expected_meta.items():
        if payload["meta"].get(key) != value:
            raise ValueError(
                f"{path}: checkpoint has {key}={payload['meta'].get(key)!r}, expected {value!r}"
            )
    try:
        optimizer.load_state_dict(payload["optimizer"])
        scheduler.load_state_dict(payload["scheduler"])
        _restore_rng(payload["rng"])
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
        raise UnreadableCheckpoint(f"{path}: cannot restore the run ({exc})") from None
    model.load_state_dict(payload["model"])  # last: its keys and shapes were checked
    return TrainingState(**payload["state"])


def restore_weights(path: Path, payload: Any, model: torch.nn.Module) -> None:
    """Load the weights of ``payload`` (a checkpoint read from ``path``) into ``model``, and
    nothing else: translating needs no optimiser and no random state. ``UnreadableCheckpoint``
    when it is not a training checkpoint or its weights do not fit."""
    _check_parts(path, payload, model)
    model.load_state_dict(payload["model"])


def vocabulary_file(folder: Path, digest: str) -> Path:
    """Where the subword vocabulary with model digest ``digest`` (``Vocabulary.digest``) of
    the checkpoints in ``folder`` is kept."""
    return folder / f"vocab-{digest}.model"


def keep_vocabulary(folder: Path, vocab: Vocabulary) -> None:
    """Keep ``vocab`` beside the checkpoints in ``folder`` (once): a checkpoint translates
    text only with its vocabulary, and the vocabulary cache may have been cleared."""
    path = vocabulary_file(folder, vocab.digest)
    if path.is_file():
        return
    folder.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    vocab.save(partial)
    os.replace(partial, path)


def _check_parts(path: Path, payload: Any, model: torch.nn.Module) -> None:
    """Refuse a file without the parts of a checkpoint, or with weights that do not fit."""
    if not isinstance(payload, dict) or any(part not in payload for part in _PARTS):
        raise UnreadableCheckpoint(f"{path}: not a training checkpoint (expected {_PARTS})")
    state = payload["state"]
    names = {f.name for f in fields(TrainingState)}
    if not isinstance(payload["meta"], dict) or not isinstance(state, dict) or set(state) != names:
        raise UnreadableCheckpoint(f"{path}: not a training checkpoint (its state or meta)")
    weights, expected = payload["model"], model.state_dict()
    outdated = isinstance(weights, dict) and outdated_weights(weights, model)
    if outdated:
        raise UnreadableCheckpoint(f"{path}: {outdated}")
    fits = isinstance(weights, dict) and weights.keys() == expected.keys()
    if not fits or any(
        not isinstance(weights[k], torch.Tensor) or weights[k].shape != v.shape
        for k, v in expected.items()
    ):
        raise UnreadableCheckpoint(f"{path}: its weights do not fit the model")


def _rng_state() -> dict[str, Any]:
    """The random generators' states as tensors and plain values (``weights_only`` loads them;
    numpy's own state holds an array, which it does not)."""
    kind, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _restore_rng(rng: dict[str, Any]) -> None:
    version, internal, gauss_next = rng["python"]
    random.setstate((version, tuple(internal), gauss_next))
    state = rng["numpy"]
    np.random.set_state(
        (
            state["kind"],
            state["keys"].numpy().astype(np.uint32),
            state["position"],
            state["has_gauss"],
            state["cached_gaussian"],
        )
    )
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
