"""Checkpoints that survive a crash: written to a temporary file, then renamed into place."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch


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
        "rng": {
            "python": random.getstate(),
            "numpy": np.random.get_state(),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(payload, partial)
    os.replace(partial, path)


def load_checkpoint(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    expected_meta: dict[str, Any],
) -> TrainingState:
    """Restore a run from ``path``. A checkpoint of another architecture, corpus or setting
    is refused with the first key that differs rather than silently mixed in."""
    payload = torch.load(path, map_location="cpu", weights_only=False)
    for key, value in expected_meta.items():
        if payload["meta"].get(key) != value:
            raise ValueError(
                f"{path}: checkpoint has {key}={payload['meta'].get(key)!r}, expected {value!r}"
            )
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])
    rng = payload["rng"]
    random.setstate(rng["python"])
    np.random.set_state(rng["numpy"])
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    return TrainingState(**payload["state"])
