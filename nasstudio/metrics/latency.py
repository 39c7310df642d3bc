"""Latency interface, and latency measured on the local device with HAT's protocol.

HAT's protocol (its ``latency_dataset.py``): a model with random weights (latency does not
depend on their values), batch 1, a 30-token source. The encoder is timed on its own. The
decoder is timed over 30 incremental steps with the key/value cache, on the encoder output
repeated once per beam hypothesis (beam 5 in HAT's tables; fixed input tokens, no search);
the first step's cross-attention keys/values are inside the decoder time, as in fairseq.
After warm-up runs, each part is run ``repeats`` times (HAT's tables: 20) and summarised by
the mean and std of the runs between the 10th and 90th percentile.
"""

from __future__ import annotations

import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from nasstudio.model import TransformerMT
from nasstudio.space import Architecture

SOURCE_TOKENS = 30
DECODER_STEPS = 30
HAT_BEAM = 5
HAT_REPEATS = 20
HAT_WARMUP = 5  # HAT's dry runs
DEFAULT_VOCAB = 32768  # WMT'14 En-De, the vocabulary of HAT's WMT latency tables


@dataclass(frozen=True, slots=True)
class LatencyEstimate:
    """Latency of one translation (30-token source, 30 decoder steps) in milliseconds."""

    encoder_ms: float
    decoder_ms: float
    device: str
    encoder_std_ms: float | None = None
    decoder_std_ms: float | None = None

    @property
    def total_ms(self) -> float:
        return self.encoder_ms + self.decoder_ms


class LatencyEstimator(Protocol):
    """Anything that gives an architecture's latency on a named device: a measurement on this
    machine or a predictor fitted to a latency table."""

    device: str

    def estimate(self, arch: Architecture) -> LatencyEstimate: ...


def trimmed_stats(samples: Sequence[float]) -> tuple[float, float]:
    """HAT's outlier trim: mean and population std of the sorted samples from index
    int(0.1 n) up to, not including, n - max(1, int(0.1 n)); all samples if that is empty."""
    ordered = sorted(samples)
    if not ordered:
        raise ValueError("no latency samples to summarise")
    n = len(ordered)
    kept = ordered[int(0.1 * n) : n - max(1, int(0.1 * n))] or ordered
    return statistics.fmean(kept), statistics.pstdev(kept)


def device_name(device: torch.device | str = "cpu") -> str:
    """The name latencies are stored under: ``cpu:<processor model>`` or ``cuda:<gpu name>``."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    if device.type == "cpu":
        return f"cpu:{_cpu_model()}"
    return device.type


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass  # not Linux
    if platform.system() == "Darwin":
        result = subprocess.run(
            ["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True
        )
        if result.returncode == 0 and result.stdout.strip():
            return result.stdout.strip()
    return platform.processor() or platform.machine() or "unknown"


@contextmanager
def _cpu_threads(threads: int | None) -> Iterator[None]:
    """Use ``threads`` intra-op threads for the duration (None leaves torch's setting)."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _synchronizer(device: torch.device) -> Callable[[], None]:
    """Wait for queued device work, so a wall-clock reading covers it (CUDA is async)."""
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def measure_latency(
    model: TransformerMT,
    *,
    beam: int = HAT_BEAM,
    repeats: int = HAT_REPEATS,
    warmup: int = HAT_WARMUP,
    threads: int | None = None,
    source_tokens: int = SOURCE_TOKENS,
    decoder_steps: int = DECODER_STEPS,
) -> LatencyEstimate:
    """Time ``model`` on the device its weights are on with HAT's protocol (module docstring).

    ``threads`` sets torch's CPU thread count during the measurement. The model runs in eval
    mode; its mode is restored.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    device = model.embed.weight.device
    sync = _synchronizer(device)
    token = (model.pad_id + 1) % model.vocab_size  # any non-padding id
    src = torch.full((1, source_tokens), token, device=device)
    prev = torch.full((beam,), token, device=device)
    beam_rows = torch.zeros(beam, dtype=torch.long, device=device)
    encoder_times: list[float] = []
    decoder_times: list[float] = []
    was_training = model.training
    model.eval()
    try:
        with _cpu_threads(threads), torch.inference_mode():
            # Repeating the encoder output per hypothesis is outside the timing, as in HAT.
            encoder_out = model.encode(src).index_select(beam_rows)
            for run in range(warmup + repeats):
                sync()
                start = time.perf_counter()
                model.encode(src)
                sync()
                middle = time.perf_counter()
                state = model.start_decoding(encoder_out)
                for _ in range(decoder_steps):
                    model.decode_step(prev, state)
                sync()
                end = time.perf_counter()
                if run >= warmup:
                    encoder_times.append((middle - start) * 1000)
                    decoder_times.append((end - middle) * 1000)
    finally:
        model.train(was_training)
    encoder_ms, encoder_std = trimmed_stats(encoder_times)
    decoder_ms, decoder_std = trimmed_stats(decoder_times)
    return LatencyEstimate(encoder_ms, decoder_ms, device_name(device), encoder_std, decoder_std)


class MeasuredLatency:
    """A LatencyEstimator that measures on this machine: it builds a randomly initialised
    TransformerMT for the architecture and times it with ``measure_latency``."""

    def __init__(
        self,
        vocab_size: int = DEFAULT_VOCAB,
        *,
        device: torch.device | str = "cpu",
        beam: int = HAT_BEAM,
        repeats: int = HAT_REPEATS,
        warmup: int = HAT_WARMUP,
        threads: int | None = None,
    ) -> None:
        self.torch_device = torch.device(device)
        self.device = device_name(self.torch_device)
        self.vocab_size = vocab_size
        self.beam, self.repeats, self.warmup, self.threads = beam, repeats, warmup, threads

    def estimate(self, arch: Architecture) -> LatencyEstimate:
        model = TransformerMT(arch, self.vocab_size, dropout=0.0).to(self.torch_device)
        return measure_latency(
            model, beam=self.beam, repeats=self.repeats, warmup=self.warmup, threads=self.threads
        )
