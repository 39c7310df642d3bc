"""Latency interface. Measurement on the local device and the learned predictor plug in here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from nasstudio.space import Architecture


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
