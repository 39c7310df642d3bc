import itertools
import random

import numpy as np
import pytest

from nasstudio.metrics.efficiency import efficiency
from nasstudio.search import EvolutionSettings, evolve
from nasstudio.space import Genome, get_space

SPACE = get_space("hat-wmt")
VOCAB = 32768
GFLOPS_LIMIT = 3.0
SMALL = EvolutionSettings(
    iterations=6, population=20, parents=5, mutations=8, mutation_prob=0.3, crossovers=7
)


def gflops(arch):
    return efficiency(arch, VOCAB).gflops


def under_limit(archs):
    return np.array([gflops(arch) <= GFLOPS_LIMIT for arch in archs])


def small_ffn(iteration, archs):
    """Toy fitness: smaller FFNs are better."""
    return np.array([-sum(a.encoder_ffn_dims) - sum(a.decoder_ffn_dims) for a in archs]), "toy"


def run(settings=SMALL, fitness=small_ffn, feasible=under_limit, initial=()):
    return list(evolve(SPACE, settings, fitness, feasible, initial))


def test_every_architecture_yielded_satisfies_the_constraint():
    generations = run()
    assert len(generations) == SMALL.iterations
    for generation in generations:
        assert all(gflops(arch) <= GFLOPS_LIMIT for arch in generation.archs)


def test_population_sizes_follow_hat():
    sizes = [len(g.archs) for g in run()]
    # The first population is `population`, later ones are parents + mutants + crossovers.
    assert sizes == [20] + [5 + 8 + 7] * 5


def test_same_seed_gives_the_same_generations_and_another_seed_others():
    def history(seed):
        settings = EvolutionSettings(**{**SMALL.__dict__, "seed": seed})
        return [([a.id for a in g.archs], g.fitness.tolist(), g.scorer) for g in run(settings)]

    assert history(4) == history(4)
    assert history(4) != history(5)


def test_best_fitness_never_decreases_with_a_fixed_fitness():
    best = [g.fitness[0] for g in run()]
    assert all(later >= earlier for earlier, later in itertools.pairwise(best))


def test_each_generation_is_sorted_best_first_by_its_fitness():
    for generation in run():
        expected = small_ffn(0, generation.archs)[0]
        assert generation.fitness.tolist() == expected.tolist()
        assert generation.fitness.tolist() == sorted(generation.fitness.tolist(), reverse=True)


def test_the_fitness_gets_the_iteration_so_a_scorer_can_switch():
    calls = []

    def switching(iteration, archs):
        calls.append(iteration)
        total = np.array([sum(a.encoder_ffn_dims) + sum(a.decoder_ffn_dims) for a in archs])
        # Iterations 0 and 1 favour small FFNs, the rest large ones.
        return (-total, "small") if iteration < 2 else (total, "large")

    generations = run(fitness=switching)
    assert calls == list(range(SMALL.iterations))
    assert [g.scorer for g in generations] == ["small", "small"] + ["large"] * 4
    # Iteration 2 is already ranked by the new scorer: the largest FFNs come first.
    totals = [sum(a.encoder_ffn_dims) + sum(a.decoder_ffn_dims) for a in generations[2].archs]
    assert totals == sorted(totals, reverse=True)


def test_initial_architectures_start_the_population_unless_they_break_the_constraint():
    rng = random.Random(11)
    samples = [SPACE.sample(rng) for _ in range(40)]
    feasible = [a for a in samples if gflops(a) <= GFLOPS_LIMIT][:3]
    infeasible = [a for a in samples if gflops(a) > GFLOPS_LIMIT][:2]
    assert len(feasible) == 3 and len(infeasible) == 2

    def record(iteration, archs):
        seen.append(list(archs))
        return small_ffn(iteration, archs)

    seen = []
    run(
        settings=EvolutionSettings(**{**SMALL.__dict__, "iterations": 1}),
        fitness=record,
        initial=feasible + infeasible,
    )
    assert seen[0][:3] == feasible
    assert not set(seen[0]) & set(infeasible)
    assert len(seen[0]) == SMALL.population


def test_an_unsatisfiable_constraint_is_named_in_the_error():
    with pytest.raises(ValueError, match=r"gflops <= 0\.01.*relax the constraint"):
        list(
            evolve(
                SPACE,
                SMALL,
                small_ffn,
                lambda archs: np.zeros(len(archs), dtype=bool),
                constraint="gflops <= 0.01",
            )
        )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"population": 0}, "population must be at least 1"),
        ({"parents": 30}, r"parents \(30\) must not exceed the population \(20\)"),
        ({"mutations": -1}, "mutations must not be negative"),
        ({"mutation_prob": 1.5}, r"mutation_prob must be within \[0, 1\]"),
        ({"parents": 1}, "crossovers need at least 2 parents"),
    ],
)
def test_bad_settings_are_refused_with_a_clear_message(changes, message):
    with pytest.raises(ValueError, match=message):
        EvolutionSettings(**{**SMALL.__dict__, **changes})


class OneGeneRandom(random.Random):
    """Mutation randomness that resamples only the gene at ``position``, to ``value``."""

    def __init__(self, position, value):
        super().__init__(0)
        self.position, self.value, self.calls = position, value, 0

    def random(self):
        hit = self.calls == self.position
        self.calls += 1
        return 0.0 if hit else 0.99

    def choice(self, seq):
        assert self.value in seq
        return self.value


DECODER_DEPTH_GENE = 3  # after the encoder embed, decoder embed and encoder depth genes


def with_decoder_depth(genome, depth):
    genes = genome.genes
    return Genome(SPACE, (*genes[:DECODER_DEPTH_GENE], depth, *genes[DECODER_DEPTH_GENE + 1 :]))


def test_inactive_layer_genes_survive_a_depth_drop_and_come_back():
    deep = with_decoder_depth(SPACE.sample_genome(random.Random(2)), 6)
    shallow = deep.mutate(OneGeneRandom(DECODER_DEPTH_GENE, 1), prob=0.5)
    assert shallow.architecture.decoder_layers == 1
    again = shallow.mutate(OneGeneRandom(DECODER_DEPTH_GENE, 6), prob=0.5)
    assert again.architecture == deep.architecture


def test_crossover_keeps_the_inactive_genes_of_the_parents():
    deep = with_decoder_depth(SPACE.sample_genome(random.Random(3)), 6)
    shallow = with_decoder_depth(deep, 1)
    rng = random.Random(0)
    children = [shallow.crossover(deep, rng) for _ in range(20)]
    six_deep = [c for c in children if c.architecture.decoder_layers == 6]
    assert six_deep and all(c.architecture == deep.architecture for c in six_deep)
