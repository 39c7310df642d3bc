"""HAT's evolutionary search over genomes, with any fitness and any feasibility constraint.

Protocol (HAT's ``fairseq/evolution.py``, llmas's HS-NAS settings as defaults): a population
of feasible genomes is scored, sorted best first and yielded; the top ``parents`` survive
unchanged, ``mutations`` children are mutated from random parents and ``crossovers`` children
crossed from two random parents, keeping only feasible children. As in HAT, the next population
is parents + mutants + crossovers (the initial one has ``population`` members), and the
survivors are scored again in the next iteration: ``evolve`` keeps no score cache, because only
the fitness knows which scorer it uses at an iteration; a fitness that wants to skip repeats
caches by (scorer, arch.id) itself.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from nasstudio.space import Architecture, Genome, SearchSpace

Fitness = Callable[[int, Sequence[Architecture]], tuple[np.ndarray, str]]
"""(iteration, archs) -> (one value per arch, higher is better; label of the scorer used)."""
Feasible = Callable[[Sequence[Architecture]], np.ndarray]
"""archs -> boolean mask: which ones satisfy the constraint."""

# How many candidates to draw per wanted feasible one before giving up.
TRIES_PER_MEMBER = 100


@dataclass(frozen=True)
class EvolutionSettings:
    """llmas's HS-NAS settings (HAT's search with a population of 125)."""

    iterations: int = 30
    population: int = 125
    parents: int = 25
    mutations: int = 50
    mutation_prob: float = 0.3
    crossovers: int = 50
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("iterations", "population", "parents"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("mutations", "crossovers"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        if self.parents > self.population:
            raise ValueError(
                f"parents ({self.parents}) must not exceed the population ({self.population})"
            )
        if self.crossovers and self.parents < 2:
            raise ValueError(f"crossovers need at least 2 parents, got {self.parents}")
        if not 0.0 <= self.mutation_prob <= 1.0:
            raise ValueError(f"mutation_prob must be within [0, 1], got {self.mutation_prob}")


@dataclass(frozen=True)
class Generation:
    index: int  # 0-based iteration
    archs: tuple[Architecture, ...]  # whole population, best first
    fitness: np.ndarray  # one per arch, higher is better, same order
    scorer: str  # label returned by the fitness for this iteration
    seconds: float  # time spent inside the fitness call of this iteration


def evolve(
    space: SearchSpace,
    settings: EvolutionSettings,
    fitness: Fitness,
    feasible: Feasible,
    initial: Sequence[Architecture] = (),
    *,
    constraint: str = "the constraint",
) -> Iterator[Generation]:
    """Yield one Generation per iteration, ranked by ``fitness(iteration, archs)``.

    The population starts with the feasible ones of ``initial`` (at most ``population``; those
    that break the constraint are left out), filled up with random feasible genomes. Every
    architecture ever yielded satisfies ``feasible``; ``constraint`` names it in the ValueError
    raised when too few candidates do. One ``random.Random(settings.seed)`` drives all choices,
    so the same seed and fitness give the same generations.
    """
    rng = random.Random(settings.seed)
    population = initial_population(space, settings.population, feasible, initial, rng, constraint)
    for index in range(settings.iterations):
        archs = [genome.architecture for genome in population]
        started = time.perf_counter()
        values, scorer = fitness(index, archs)
        seconds = time.perf_counter() - started
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (len(archs),):
            raise ValueError(
                f"fitness returned {values.shape} values for {len(archs)} architectures"
            )
        # Best first; NaN (a scorer that failed on an architecture) ranks last.
        order = np.argsort(-np.nan_to_num(values, nan=-np.inf), kind="stable")
        population = [population[i] for i in order]
        yield Generation(
            index=index,
            archs=tuple(archs[i] for i in order),
            fitness=values[order],
            scorer=scorer,
            seconds=seconds,
        )
        if index + 1 < settings.iterations:
            population = _next_population(
                population[: settings.parents], settings, feasible, rng, constraint
            )


def initial_population(
    space: SearchSpace,
    size: int,
    feasible: Feasible,
    initial: Sequence[Architecture],
    rng: random.Random,
    constraint: str = "the constraint",
) -> list[Genome]:
    """The feasible ones of ``initial`` (their genomes), then random feasible genomes."""
    given = [space.genome(arch) for arch in initial[:size]]
    mask = _mask(feasible, given)
    population = [genome for genome, ok in zip(given, mask, strict=True) if ok]
    return population + feasible_genomes(
        lambda: space.sample_genome(rng),
        size - len(population),
        feasible,
        constraint,
        "random samples",
    )


def feasible_genomes(
    draw: Callable[[], Genome], count: int, feasible: Feasible, constraint: str, what: str
) -> list[Genome]:
    """``count`` genomes from ``draw`` that satisfy ``feasible``, checked in batches."""
    kept: list[Genome] = []
    tries = 0
    while len(kept) < count:
        if tries >= TRIES_PER_MEMBER * count:
            raise ValueError(
                f"only {len(kept)} of {tries} {what} satisfy {constraint}; "
                f"{count} were needed: relax the constraint"
            )
        batch = [draw() for _ in range(count - len(kept))]
        tries += len(batch)
        kept += [genome for genome, ok in zip(batch, _mask(feasible, batch), strict=True) if ok]
    return kept


def _next_population(
    parents: list[Genome],
    settings: EvolutionSettings,
    feasible: Feasible,
    rng: random.Random,
    constraint: str,
) -> list[Genome]:
    def mutant() -> Genome:
        return rng.choice(parents).mutate(rng, settings.mutation_prob)

    def crossed() -> Genome:
        a, b = rng.sample(parents, 2)
        return a.crossover(b, rng)

    mutants = feasible_genomes(mutant, settings.mutations, feasible, constraint, "mutants")
    children = feasible_genomes(crossed, settings.crossovers, feasible, constraint, "crossovers")
    return parents + mutants + children


def _mask(feasible: Feasible, genomes: Sequence[Genome]) -> np.ndarray:
    if not genomes:
        return np.zeros(0, dtype=bool)
    mask = np.asarray(feasible([genome.architecture for genome in genomes]), dtype=bool)
    if mask.shape != (len(genomes),):
        raise ValueError(f"feasible returned {mask.shape} values for {len(genomes)} architectures")
    return mask
