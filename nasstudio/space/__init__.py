"""Architectures and HAT's search space."""

from nasstudio.space.architecture import HAT_QKV_DIM, Architecture, ArchitectureError
from nasstudio.space.hat import HatConfigError, from_yaml, parse_arch_info, to_arch_info, to_yaml
from nasstudio.space.searchspace import (
    FEATURE_NAMES,
    PRESETS,
    Genome,
    OutOfSpaceError,
    SearchSpace,
    average_features,
    get_space,
)

__all__ = [
    "FEATURE_NAMES",
    "HAT_QKV_DIM",
    "PRESETS",
    "Architecture",
    "ArchitectureError",
    "Genome",
    "HatConfigError",
    "OutOfSpaceError",
    "SearchSpace",
    "average_features",
    "from_yaml",
    "get_space",
    "parse_arch_info",
    "to_arch_info",
    "to_yaml",
]
