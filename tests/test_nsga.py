import itertools

import numpy as np
import pytest

from nasstudio.metrics.efficiency import efficiency
from nasstudio.search import EvolutionSettings
from nasstudio.search.nsga import nsga2
from nasstudio.space import get_space

SPACE = get_space("hat-wmt")
VOCAB = 32768
GFLOPS_LIMIT = 4.0
SMALL = EvolutionSettings(iterations=5, population=24, parents=4, mutation_prob=0.3, seed=1)


def gflops(arch):
    return efficiency(arch, VOCAB).gflops


def under_limit(archs):
    return np.array([gflops(arch) <= GFLOPS_LIMIT for arch in archs])


def capacity_and_cost(archs):
    """Toy objectives, both minimised: minus the FFN capacity, and GFLOPs."""
    assert all(gflops(arch) <= GFLOPS_LIMIT for arch in archs), "an infeasible arch was scored"
    return np.array(
        [[-(sum(a.encoder_ffn_dims) + sum(a.decoder_ffn_dims)), gflops(a)] for a in archs]
    )


def run(settings=SMALL):
    return list(nsga2(SPACE, settings, capacity_and_cost, under_limit))


def dominates(a, b):
    return bool(np.all(a <= b) and np.any(a < b))


def test_each_front_is_exactly_the_non_dominated_set_of_its_population():
    generations = run()
    assert [g.index for g in generations] == list(range(SMALL.iterations))
    for generation in generations:
        values = generation.objectives
        assert values.shape == (len(generation.archs), 2)
        brute_force = [
            i
            for i in range(len(values))
            if not any(dominates(values[j], values[i]) for j in range(len(values)))
        ]
        assert list(generation.front) == brute_force


def test_every_architecture_satisfies_the_constraint_and_appears_once():
    for generation in run():
        assert all(gflops(arch) <= GFLOPS_LIMIT for arch in generation.archs)
        assert len({arch.id for arch in generation.archs}) == len(generation.archs)


def test_the_front_never_loses_ground():
    # NSGA-II is elitist: no front point is dominated by a point of the previous front.
    generations = run()
    for earlier, later in itertools.pairwise(generations):
        old = earlier.objectives[list(earlier.front)]
        for point in later.objectives[list(later.front)]:
            assert not any(dominates(o, point) for o in old)


def test_same_seed_gives_the_same_fronts_and_another_seed_others():
    def history(seed):
        settings = EvolutionSettings(**{**SMALL.__dict__, "seed": seed})
        return [([a.id for a in g.archs], g.objectives.tolist(), g.front) for g in run(settings)]

    assert history(1) == history(1)
    assert history(1) != history(2)


def test_objectives_of_the_wrong_shape_are_refused():
    with pytest.raises(ValueError, match=r"objectives returned shape \(24,\)"):
        list(nsga2(SPACE, SMALL, lambda archs: np.zeros(len(archs)), under_limit))
