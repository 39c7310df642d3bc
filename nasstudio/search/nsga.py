"""Multi-objective search: pymoo's NSGA-II over the integer genome, one front per generation.

A genome is encoded as one index per gene into the space's choices (``Genome.indices``), so
inactive layer genes live on like in ``evolve``. Offspring come from pymoo's uniform crossover
and a per-gene resampling mutation (HAT's, with ``mutation_prob``). Feasibility is kept by
repair, not as a pymoo constraint: an infeasible offspring is replaced by a random feasible
genome, so the objectives (the expensive predictors) only ever see feasible architectures.
Offspring that encode an architecture already in the population are dropped as duplicates.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.duplicate import DefaultDuplicateElimination
from pymoo.core.evaluator import Evaluator
from pymoo.core.mutation import Mutation
from pymoo.core.population import Population
from pymoo.core.problem import Problem
from pymoo.core.repair import Repair
from pymoo.core.termination import NoTermination
from pymoo.operators.crossover.ux import UniformCrossover
from pymoo.problems.static import StaticProblem
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from nasstudio.search.evolution import (
    EvolutionSettings,
    Feasible,
    feasible_genomes,
    initial_population,
)
from nasstudio.space import Architecture, Genome, SearchSpace

Objectives = Callable[[Sequence[Architecture]], np.ndarray]
"""archs -> array of shape (n, k), every objective minimised."""


@dataclass(frozen=True)
class FrontGeneration:
    index: int  # 0-based generation
    archs: tuple[Architecture, ...]  # the surviving population
    objectives: np.ndarray  # shape (n, k), minimised, same order as archs
    front: tuple[int, ...]  # indices into archs of the non-dominated ones
    seconds: float  # time spent inside the objectives call of this generation


def nsga2(
    space: SearchSpace,
    settings: EvolutionSettings,
    objectives: Objectives,
    feasible: Feasible,
    initial: Sequence[Architecture] = (),
    *,
    constraint: str = "the constraint",
) -> Iterator[FrontGeneration]:
    """Yield the surviving population and its front after each of ``settings.iterations``.

    Uses ``population``, ``mutation_prob`` and ``seed`` of ``settings`` (NSGA-II has no
    parents/mutations/crossovers split: every offspring is crossed, then mutated). The first
    population is built as in ``evolve``: the feasible ones of ``initial``, then random feasible
    genomes, without repeated architectures. Same seed and objectives give the same fronts.
    """
    rng = random.Random(settings.seed)
    genomes = initial_population(space, settings.population, feasible, initial, rng, constraint)
    genomes = list({genome.architecture.id: genome for genome in reversed(genomes)}.values())[::-1]
    values, seconds = _timed(objectives, [genome.architecture for genome in genomes])
    choices = space.gene_choices
    problem = Problem(
        n_var=len(choices),
        n_obj=values.shape[1],
        xl=np.zeros(len(choices)),
        xu=np.array([len(c) - 1 for c in choices]),
        vtype=int,
    )
    first = Population.new("X", np.array([genome.indices() for genome in genomes]))
    Evaluator().eval(StaticProblem(problem, F=values), first)
    algorithm = NSGA2(
        pop_size=settings.population,
        sampling=first,
        crossover=UniformCrossover(),
        mutation=_ResampleMutation(settings.mutation_prob),
        repair=_ResampleInfeasible(space, feasible, rng, constraint),
        eliminate_duplicates=DefaultDuplicateElimination(func=_encodings(space)),
    )
    algorithm.setup(problem, termination=NoTermination(), seed=settings.seed)
    algorithm.tell(infills=algorithm.ask())
    yield _front_generation(0, space, algorithm.pop, seconds)
    for index in range(1, settings.iterations):
        offspring = algorithm.ask()
        if offspring is None or len(offspring) == 0:
            return  # every offspring repeated an architecture: the search has converged
        archs = [_architecture(space, x) for x in offspring.get("X")]
        values, seconds = _timed(objectives, archs)
        Evaluator().eval(StaticProblem(problem, F=values), offspring)
        algorithm.tell(infills=offspring)
        yield _front_generation(index, space, algorithm.pop, seconds)


def _timed(objectives: Objectives, archs: list[Architecture]) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    values = np.asarray(objectives(archs), dtype=np.float64)
    seconds = time.perf_counter() - started
    if values.ndim != 2 or values.shape[0] != len(archs):
        raise ValueError(
            f"objectives returned shape {values.shape} for {len(archs)} architectures, "
            "expected (architectures, objectives)"
        )
    return values, seconds


def _front_generation(
    index: int, space: SearchSpace, population: Population, seconds: float
) -> FrontGeneration:
    values = population.get("F")
    front = NonDominatedSorting().do(values, only_non_dominated_front=True)
    return FrontGeneration(
        index=index,
        archs=tuple(_architecture(space, x) for x in population.get("X")),
        objectives=values,
        front=tuple(sorted(int(i) for i in front)),
        seconds=seconds,
    )


def _architecture(space: SearchSpace, indices: np.ndarray) -> Architecture:
    return Genome.from_indices(space, indices).architecture


def _encodings(space: SearchSpace) -> Callable[[Population], np.ndarray]:
    """Duplicates are judged by architecture: genomes differing only in inactive genes match."""

    def encode(population: Population) -> np.ndarray:
        return np.array(
            [space.layer_encoding(_architecture(space, x)) for x in population.get("X")]
        )

    return encode


class _ResampleMutation(Mutation):
    """HAT's mutation on indices: each gene resampled from all its choices with ``prob``."""

    def __init__(self, prob: float) -> None:
        super().__init__(prob=1.0, prob_var=prob)

    def _do(self, problem, X, *args, random_state=None, **kwargs):
        prob = self.get_prob_var(problem, size=len(X))[:, None]
        resampled = random_state.integers(0, problem.xu + 1, size=X.shape)
        return np.where(random_state.random(X.shape) < prob, resampled, X)


class _ResampleInfeasible(Repair):
    """Replaces each infeasible genome with a random feasible one."""

    def __init__(self, space: SearchSpace, feasible: Feasible, rng: random.Random, constraint: str):
        super().__init__()
        self.space, self.feasible, self.rng, self.constraint = space, feasible, rng, constraint

    def _do(self, problem, X, **kwargs):
        archs = [_architecture(self.space, x) for x in X]
        bad = np.flatnonzero(~np.asarray(self.feasible(archs), dtype=bool))
        if bad.size == 0:
            return X
        fresh = feasible_genomes(
            lambda: self.space.sample_genome(self.rng),
            bad.size,
            self.feasible,
            self.constraint,
            "random samples",
        )
        X = np.array(X, copy=True)
        X[bad] = [genome.indices() for genome in fresh]
        return X
