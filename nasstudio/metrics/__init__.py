"""Efficiency metrics of an architecture: parameters, GFLOPs, latency."""

from nasstudio.metrics.efficiency import Efficiency, efficiency
from nasstudio.metrics.latency import LatencyEstimate, LatencyEstimator

__all__ = ["Efficiency", "LatencyEstimate", "LatencyEstimator", "efficiency"]
