"""Searches over the architecture space and the Pareto analysis of their results."""

from nasstudio.search.evolution import EvolutionSettings, Feasible, Fitness, Generation, evolve
from nasstudio.search.pareto import Direction, hypervolume_2d, pareto_front_2d

__all__ = [
    "Direction",
    "EvolutionSettings",
    "Feasible",
    "Fitness",
    "Generation",
    "evolve",
    "hypervolume_2d",
    "pareto_front_2d",
]
