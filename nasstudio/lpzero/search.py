"""LPZero's genetic programming over proxy expressions, with its rule-based pruning (RPS).

Steady-state evolution: a population of random valid expressions; each iteration draws two
parents from the better half, applies crossover and mutation (each with probability 0.5),
scores the child and lets it replace the worst member when it is better. Fitness is the
magnitude of the Spearman rho between the proxy's values and the ground truth on the sample of
architectures: a proxy that ranks in reverse is as informative once negated, so the sign is
kept beside it (``Score.rho``, ``Iteration.best_rho``) rather than halving the space.
RPS rejects a child before scoring when its operation chain is degenerate
(:func:`structural_rule`) and after scoring when its values are unusable (:func:`value_rule`).
Fitness is cached by expression text; each network's inputs come from one
:class:`~nasstudio.lpzero.inputs.InputCache`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import partial

import numpy as np
import torch
from scipy.stats import kendalltau, spearmanr

from nasstudio.lpzero.benchmarks import GPT2Arch
from nasstudio.lpzero.expr import INPUTS, OVER_LAYERS, Branch, Expression
from nasstudio.lpzero.inputs import InputCache, LayerInputs, Minibatch, gpt2_inputs
from nasstudio.lpzero.ops import BINARY, NORMALISING_OPS, SCALAR_OPS, UNARY, OperationError

# Pairs whose second operation undoes the first (on its domain).
INVERSE_PAIRS = frozenset(
    {
        ("exp", "log"),
        ("log", "exp"),
        ("invert", "invert"),
        ("negate", "negate"),
        ("square", "sqrt"),
        ("sqrt", "square"),
    }
)
# Operations that change nothing when repeated.
IDEMPOTENT_OPS = frozenset({"abs", "relu", "zscore", "minmax", "softmax", "normalized_sum"})
ELEMENTWISE_BINARY = frozenset({"add", "sub", "mul"})


def structural_rule(expression: Expression) -> str | None:
    """The pruning rule a candidate breaks before scoring, or None. Rules: a normalisation
    after a scalar reduction (the signal collapses to a constant), an operation followed by
    its inverse, an idempotent operation repeated (a no-op), two equal branches subtracted
    (always zero), and a matrix product of scalars."""
    for branch in (expression.left, expression.right):
        for first, second in zip(branch.ops, branch.ops[1:], strict=False):
            if first in SCALAR_OPS and second in NORMALISING_OPS:
                return "normalisation after a scalar reduction"
            if (first, second) in INVERSE_PAIRS:
                return "operation followed by its inverse"
            if first == second and first in IDEMPOTENT_OPS:
                return "idempotent operation repeated"
    if expression.binary == "sub" and expression.left == expression.right:
        return "difference of equal branches"
    if expression.binary == "matmul" and any(
        set(b.ops) & SCALAR_OPS for b in (expression.left, expression.right)
    ):
        return "matrix product of a scalar"
    return None


def value_rule(values: Sequence[float], failures: int, max_failures: int) -> str | None:
    """The pruning rule a scored candidate breaks, or None: it failed on more than
    ``max_failures`` architectures, gave NaN or inf, or is constant across architectures."""
    if failures > max_failures:
        return f"failed on {failures} architectures"
    if not values:
        return "no values"
    if not all(math.isfinite(v) for v in values):
        return "NaN or inf"
    if max(values) == min(values):
        return "constant across architectures"
    return None


def rank_correlations(proxy: Sequence[float], truth: Sequence[float]) -> tuple[float, float]:
    """Spearman rho and Kendall tau (tau-b) of a proxy against the ground truth."""
    return float(spearmanr(proxy, truth).statistic), float(kendalltau(proxy, truth).statistic)


@dataclass
class Score:
    """A candidate's signed Spearman rho and Kendall tau (None when pruned), the rule that
    pruned it, and its value on each network scored, in order (NaN where it failed)."""

    rho: float | None
    rule: str | None = None
    values: list[float] = field(default_factory=list)
    tau: float | None = None

    @property
    def fitness(self) -> float | None:
        """|rho|: the search's fitness."""
        return None if self.rho is None else abs(self.rho)

    @property
    def sign(self) -> int:
        """-1 when the proxy ranks in reverse (negate it to use it), else 1."""
        return -1 if self.rho is not None and self.rho < 0 else 1


@dataclass(frozen=True)
class GPSettings:
    """The paper's defaults: 80 expressions, 1,000 steady-state iterations, unary chains of
    length 2, crossover and mutation each with probability 0.5."""

    population: int = 80
    iterations: int = 1000
    chain_length: int = 2
    crossover_p: float = 0.5
    mutation_p: float = 0.5
    seed: int = 0
    over_layers: str = "mean"  # or "sum" (see expr.OVER_LAYERS): the candidates' reduction

    def __post_init__(self) -> None:
        if self.over_layers not in OVER_LAYERS:
            raise ValueError(f"over_layers {self.over_layers!r}: expected one of {OVER_LAYERS}")


@dataclass(frozen=True)
class Iteration:
    """Progress after one iteration: best and median fitness (|rho|), the best formula with
    its signed rho and tau, what the child was and what happened to it. ``best_values`` are
    the best's values per evaluator network (NaN where it failed), given when the best
    changed and always on the first iteration, else None."""

    index: int
    best_fitness: float
    median_fitness: float
    best: str
    child: str
    child_fitness: float | None
    pruned_by: str | None
    best_rho: float = math.nan
    best_tau: float = math.nan
    best_values: tuple[float, ...] | None = None


class ProxyEvaluator:
    """Scores expressions on a sample of networks, caching fitness by expression text."""

    def __init__(
        self,
        networks: Sequence[Callable[[], list[LayerInputs]]],
        truth: Sequence[float],
        max_failures: int = 2,
    ) -> None:
        self.networks = networks
        self.truth = list(truth)
        self.max_failures = max_failures
        self.cache: dict[str, Score] = {}
        self.hits = 0
        self.misses = 0

    def score(self, expression: Expression) -> Score:
        text = str(expression)
        if text in self.cache:
            self.hits += 1
            return self.cache[text]
        self.misses += 1
        score = self._evaluate(expression)
        self.cache[text] = score
        return score

    def _evaluate(self, expression: Expression) -> Score:
        rule = structural_rule(expression)
        if rule:
            return Score(None, rule)
        values, scored, truth, failures = [], [], [], 0
        with torch.no_grad():
            for inputs, target in zip(self.networks, self.truth, strict=True):
                try:
                    value = expression.value(inputs())
                except OperationError:
                    values.append(math.nan)
                    failures += 1
                    if failures > self.max_failures:
                        break
                    continue
                values.append(value)
                scored.append(value)
                truth.append(target)
        rule = value_rule(scored, failures, self.max_failures)
        if rule:
            return Score(None, rule, values)
        rho, tau = rank_correlations(scored, truth)
        return Score(rho if math.isfinite(rho) else None, None, values, tau)


def gpt2_evaluator(
    archs: Sequence[GPT2Arch],
    cache: InputCache | None = None,
    max_failures: int = 2,
    minibatch: Minibatch | None = None,
) -> ProxyEvaluator:
    """An evaluator on GPT-2 benchmark architectures against their ground truth, reading each
    network's inputs through ``cache`` (a fresh one by default)."""
    cache = cache or InputCache()
    networks = [
        partial(cache.get, arch.arch_id, partial(gpt2_inputs, arch.config, minibatch))
        for arch in archs
    ]
    return ProxyEvaluator(networks, [arch.ground_truth for arch in archs], max_failures)


def random_expression(
    rng: random.Random, chain_length: int = 2, over_layers: str = "mean"
) -> Expression:
    def branch() -> Branch:
        return Branch(
            rng.choice(INPUTS), tuple(rng.choice(list(UNARY)) for _ in range(chain_length))
        )

    return Expression(branch(), branch(), rng.choice(list(BINARY)), over_layers)


def crossover(a: Expression, b: Expression, rng: random.Random) -> Expression:
    """Each part (left branch, right branch, binary operation) from either parent."""
    pick = lambda x, y: x if rng.random() < 0.5 else y  # noqa: E731
    return replace(
        a, left=pick(a.left, b.left), right=pick(a.right, b.right), binary=pick(a.binary, b.binary)
    )


def mutate(expression: Expression, rng: random.Random) -> Expression:
    """One node replaced: an input, a unary operation, or the binary operation."""
    sides = {"left": expression.left, "right": expression.right}
    target = rng.choice(["binary", "left", "right"])
    if target == "binary":
        return replace(expression, binary=rng.choice(list(BINARY)))
    branch = sides[target]
    slot = rng.randrange(len(branch.ops) + 1)
    if slot == 0:
        branch = Branch(rng.choice(INPUTS), branch.ops)
    else:
        ops = list(branch.ops)
        ops[slot - 1] = rng.choice(list(UNARY))
        branch = Branch(branch.input, tuple(ops))
    sides[target] = branch
    return replace(expression, left=sides["left"], right=sides["right"])


def gp_search(
    evaluator: ProxyEvaluator,
    settings: GPSettings = GPSettings(),
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[Iteration]:
    """Steady-state GP; yields one :class:`Iteration` per iteration (seeded: the same
    settings and evaluator give the same sequence). Scoring the initial population takes
    as long as many iterations, so ``progress(done, total)`` reports it member by member."""
    rng = random.Random(settings.seed)
    population = _initial_population(evaluator, settings, rng, progress)
    best_text = None
    for index in range(settings.iterations):
        (_, mother, _), (_, father, _) = rng.sample(population[: max(2, len(population) // 2)], 2)
        child = mother
        if rng.random() < settings.crossover_p:
            child = crossover(mother, father, rng)
        if rng.random() < settings.mutation_p:
            child = mutate(child, rng)
        score = evaluator.score(child)
        known = any(str(member) == str(child) for _, member, _ in population)
        if score.fitness is not None and score.fitness > population[-1][0] and not known:
            population[-1] = (score.fitness, child, score)
            population.sort(key=lambda member: member[0], reverse=True)
        _, leader, best = population[0]
        changed = str(leader) != best_text
        best_text = str(leader)
        yield Iteration(
            index,
            best.fitness,
            float(np.median([f for f, _, _ in population])),
            best_text,
            str(child),
            score.fitness,
            score.rule,
            best.rho,
            best.tau,
            tuple(best.values) if changed else None,  # unpruned: one value per network
        )


def _initial_population(
    evaluator: ProxyEvaluator,
    settings: GPSettings,
    rng: random.Random,
    progress: Callable[[int, int], None] | None,
) -> list[tuple[float, Expression, Score]]:
    """Random valid expressions with their fitness and score, best first."""
    population: list[tuple[float, Expression, Score]] = []
    attempts = 0
    while len(population) < settings.population:
        attempts += 1
        if attempts > 100 * settings.population:
            raise RuntimeError("could not find enough valid random expressions")
        candidate = random_expression(rng, settings.chain_length, settings.over_layers)
        score = evaluator.score(candidate)
        if score.fitness is not None:
            population.append((score.fitness, candidate, score))
            if progress:
                progress(len(population), settings.population)
    population.sort(key=lambda member: member[0], reverse=True)
    return population
