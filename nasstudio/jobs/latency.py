"""Measuring the latency of architectures on this machine, as a job."""

from __future__ import annotations

import math
import time
from collections.abc import Generator, Sequence
from typing import Any

import torch

from nasstudio.jobs.model import JobHandle, job_defaults
from nasstudio.jobs.records import Measurements
from nasstudio.metrics.latency import (
    DECODER_STEPS,
    HAT_BEAM,
    HAT_REPEATS,
    HAT_WARMUP,
    SOURCE_TOKENS,
    LatencyEstimate,
    MeasuredLatency,
)
from nasstudio.store import LATENCY_MS, Measurement, Project

MEASURED_SOURCE = "measured"
PROTOCOL = (
    f"HAT: random weights, batch 1, {SOURCE_TOKENS}-token source; encoder timed alone, decoder "
    f"over {DECODER_STEPS} cached steps on the encoder output repeated per beam; mean and std "
    "of the runs between the 10th and 90th percentile"
)


@job_defaults("process")
def latency_job(
    handle: JobHandle,
    project: Project,
    task: str,
    arch_ids: Sequence[str],
    device: str = "cpu",
    beam: int = HAT_BEAM,
    repeats: int = HAT_REPEATS,
    warmup: int = HAT_WARMUP,
    threads: int | None = None,
) -> Generator[Measurements, None, dict[str, LatencyEstimate]]:
    """Measure each architecture of ``task`` with HAT's protocol (``metrics.latency``) on
    ``device``, at the task's vocabulary size, and record it as ``latency_ms`` of that device.

    Each measurement is yielded for the runner to record, so a cancel (checked between
    architectures) keeps those already measured. Returns the estimates by architecture id.
    """
    spec = project.task(task)
    if spec is None:
        raise KeyError(f"no task '{task}' in the project")
    archs = project.task_architectures(task, arch_ids)
    estimator = MeasuredLatency(
        spec.vocab_size, device=device, beam=beam, repeats=repeats, warmup=warmup, threads=threads
    )
    settings = {
        "beam": beam,
        "repeats": repeats,
        "warmup": warmup,
        # None leaves torch's thread count: record the count it used.
        "threads": threads if threads is not None else torch.get_num_threads(),
        "vocab_size": spec.vocab_size,
    }
    estimates: dict[str, LatencyEstimate] = {}
    for done, arch in enumerate(archs):
        handle.check_cancelled()
        handle.progress(done / len(archs), f"measuring {arch.id} ({done + 1}/{len(archs)})")
        estimate = estimator.estimate(arch)
        estimates[arch.id] = estimate
        yield Measurements((_measurement(arch.id, task, estimate, settings),))
    handle.progress(1.0, f"measured {len(estimates)} architectures on {estimator.device}")
    return estimates


def _measurement(
    arch_id: str, task: str, estimate: LatencyEstimate, settings: dict[str, Any]
) -> Measurement:
    encoder_std, decoder_std = estimate.encoder_std_ms or 0.0, estimate.decoder_std_ms or 0.0
    return Measurement(
        arch_id,
        task,
        LATENCY_MS,
        estimate.total_ms,
        MEASURED_SOURCE,
        device=estimate.device,
        # The protocol times the parts separately; their spreads add as independent ones.
        std=math.hypot(encoder_std, decoder_std),
        provenance={
            "encoder_ms": estimate.encoder_ms,
            "decoder_ms": estimate.decoder_ms,
            "encoder_std_ms": estimate.encoder_std_ms,
            "decoder_std_ms": estimate.decoder_std_ms,
            **settings,
            "protocol": PROTOCOL,
            "torch": torch.__version__,
            "time": time.time(),
        },
    )
