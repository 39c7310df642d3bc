"""Job functions for the runner tests, importable by path as worker processes need."""

from __future__ import annotations

import os
import random
import signal
import time

from nasstudio.jobs.records import NewArchitectures
from nasstudio.space import get_space


def slow_job(handle, project):
    while True:
        handle.sleep(5)
        yield None


def failing_job(handle, project, message):
    handle.log("about to fail")
    yield "partial"
    raise RuntimeError(message)


def pid_then_wait_job(handle, project, seconds=60.0):
    """Yields its pid, then waits (cancel wakes it)."""
    yield os.getpid()
    handle.sleep(seconds)
    return "woke"


def ignores_cancel_job(handle, project):
    """A job that never looks at its cancel flag: only the executor can end it. It logs once
    it is past every check the runner makes for it."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    handle.log("sleeping")
    time.sleep(600)
    yield None


def torch_seed_job(handle, project, steps=5):
    """Draws from the generators the worker seeded, then from ones it seeds itself."""
    import torch

    yield {"worker_random": random.random(), "worker_torch": torch.rand(1).item()}
    torch.manual_seed(7)
    values = [torch.rand(1).item() for _ in range(steps)]
    return {"threads": torch.get_num_threads(), "values": values}


def add_archs_job(handle, project, task, count, seed):
    archs = get_space("tiny-cpu").sample_many(count, seed)
    for start in range(0, count, 10):
        yield NewArchitectures(task, tuple(archs[start : start + 10]), "test")
    return count


class WidthPredictor:
    """A Predictor for the tests: 'predicts' a tenth of the encoder width; cannot do 640."""

    name, kind, metric = "width/10", "fitted", "bleu_valid"

    def predict(self, archs):
        from nasstudio.predict.base import PredictionResult

        return [
            PredictionResult(a.id, None, error="too wide")
            if a.encoder_embed_dim == 640
            else PredictionResult(a.id, a.encoder_embed_dim / 10, provenance={"rule": "width"})
            for a in archs
        ]
