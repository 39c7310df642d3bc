"""Efficiency metrics of an architecture: parameters, GFLOPs, latency."""

from typing import TYPE_CHECKING, Any

from nasstudio.metrics.efficiency import Efficiency, efficiency

if TYPE_CHECKING:
    from nasstudio.metrics.latency import (
        LatencyEstimate,
        LatencyEstimator,
        MeasuredLatency,
        device_name,
        measure_latency,
        trimmed_stats,
    )

__all__ = [
    "Efficiency",
    "LatencyEstimate",
    "LatencyEstimator",
    "MeasuredLatency",
    "device_name",
    "efficiency",
    "measure_latency",
    "trimmed_stats",
]
_LATENCY_NAMES = frozenset(__all__) - {"Efficiency", "efficiency"}


def __getattr__(name: str) -> Any:
    # The latency module imports torch (1-2 s); the store and the CLI import this package for
    # ``efficiency`` alone and should start without it.
    if name in _LATENCY_NAMES:
        from nasstudio.metrics import latency

        return getattr(latency, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
