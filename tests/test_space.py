import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nasstudio.space import (
    FEATURE_NAMES,
    PRESETS,
    Architecture,
    ArchitectureError,
    Genome,
    HatConfigError,
    OutOfSpaceError,
    average_features,
    from_yaml,
    get_space,
    parse_arch_info,
    to_arch_info,
    to_yaml,
)

SPACES = sorted(PRESETS)


def small_arch(**changes):
    fields = dict(
        encoder_embed_dim=512,
        decoder_embed_dim=640,
        encoder_ffn_dims=[1024] * 6,
        encoder_heads=[4] * 6,
        decoder_ffn_dims=[2048, 3072],
        decoder_heads=[8, 4],
        decoder_cross_heads=[4, 8],
        decoder_arbitrary_attn=[-1, 2],
    )
    fields.update(changes)
    return Architecture(**fields)


@pytest.mark.parametrize("name", SPACES)
@given(seed=st.integers(0, 2**32 - 1))
@settings(max_examples=30, deadline=None)
def test_sampled_mutated_and_crossed_architectures_stay_in_space(name, seed):
    space = get_space(name)
    rng = random.Random(seed)
    a, b = space.sample(rng), space.sample(rng)
    assert space.contains(a) and space.contains(b)
    assert space.contains(space.mutate(a, rng, prob=0.5))
    assert space.contains(space.crossover(a, b, rng))


def test_sampling_is_seeded():
    space = get_space("hat-wmt")
    assert space.sample_many(20, seed=7) == space.sample_many(20, seed=7)
    assert space.sample_many(20, seed=7) != space.sample_many(20, seed=8)


def test_mutation_with_probability_zero_keeps_the_architecture_and_one_changes_it():
    space = get_space("hat-wmt")
    rng = random.Random(0)
    arch = space.sample(rng)
    assert space.mutate(arch, rng, prob=0.0) == arch
    changed = [space.mutate(arch, rng, prob=1.0) != arch for _ in range(20)]
    assert sum(changed) >= 18


def test_crossover_takes_every_gene_from_a_parent():
    space = get_space("hat-wmt")
    rng = random.Random(3)
    a, b = space.sample(rng), space.sample(rng)
    for _ in range(20):
        child = space.crossover(a, b, rng)
        assert child.encoder_embed_dim in (a.encoder_embed_dim, b.encoder_embed_dim)
        assert child.decoder_layers in (a.decoder_layers, b.decoder_layers)
        for i, ffn in enumerate(child.encoder_ffn_dims):
            assert ffn in (a.encoder_ffn_dims[i], b.encoder_ffn_dims[i])


@pytest.mark.parametrize("name", SPACES)
def test_an_architecture_round_trips_through_its_genome_and_integer_encoding(name):
    space = get_space(name)
    for arch in space.sample_many(20, seed=5):
        genome = space.genome(arch)
        assert genome.architecture == arch
        assert Genome.from_indices(space, genome.indices()) == genome


def test_an_arbitrary_attention_gene_beyond_a_shallow_encoder_attends_to_all_its_layers():
    space = get_space("tiny-cpu")  # encoder depth 1-3, arbitrary attention -1, 1 or 2
    genome = space.genome(
        Architecture(
            encoder_embed_dim=64,
            decoder_embed_dim=64,
            encoder_ffn_dims=[128] * 3,
            encoder_heads=[2] * 3,
            decoder_ffn_dims=[128] * 3,
            decoder_heads=[2] * 3,
            decoder_cross_heads=[2] * 3,
            decoder_arbitrary_attn=[2, 1, -1],
            qkv_dim=128,
        )
    )
    encoder_depth_gene = 2
    for depth, expected in ((2, (1, 1, -1)), (1, (-1, -1, -1))):
        genes = genome.genes
        shallow = Genome(
            space, (*genes[:encoder_depth_gene], depth, *genes[encoder_depth_gene + 1 :])
        )
        assert shallow.architecture.decoder_arbitrary_attn == expected


def test_a_genome_refuses_values_outside_the_space():
    space = get_space("hat-wmt")
    genes = space.sample_genome(random.Random(0)).genes
    with pytest.raises(OutOfSpaceError, match=r"gene 0 is 100, expected one of \[512, 640\]"):
        Genome(space, (100, *genes[1:]))
    # 4 scalar genes, 2 encoder genes x 6 layers, 4 decoder genes x 6 layers
    with pytest.raises(OutOfSpaceError, match="has 40 genes, got 39"):
        Genome(space, genes[1:])


def test_id_is_stable_and_depends_only_on_the_configuration():
    a, b = small_arch(), small_arch()
    assert a.id == b.id and a == b and hash(a) == hash(b)
    assert small_arch(decoder_embed_dim=512).id != a.id
    # A fixed string: the id must not change between versions, or stored records are orphaned.
    assert a.id == Architecture.from_json(a.canonical_json()).id
    assert len(a.id) == 16


def test_architecture_is_immutable():
    arch = small_arch()
    with pytest.raises(AttributeError):
        arch.encoder_embed_dim = 640


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(decoder_heads=[8]), "decoder has 2 FFN dims"),
        (dict(encoder_heads=[4] * 5), "encoder has 6 FFN dims"),
        (dict(decoder_arbitrary_attn=[0, 1]), "must be -1 or >= 1"),
        (dict(decoder_heads=[8, 3]), "do not divide"),
        (dict(encoder_ffn_dims=[1024], encoder_heads=[4]), "needs 3 encoder layers"),
        (dict(encoder_ffn_dims=["1024"] * 6), "must hold integers"),
        (dict(decoder_embed_dim=640.5), "must hold integers"),
    ],
)
def test_malformed_architectures_are_rejected(changes, message):
    with pytest.raises(ArchitectureError, match=message):
        small_arch(**changes)


def test_validate_names_the_out_of_space_value():
    space = get_space("hat-wmt")
    with pytest.raises(OutOfSpaceError, match=r"decoder_ffn_dims\[1\] is 4096"):
        space.validate(small_arch(decoder_ffn_dims=[2048, 4096]))
    with pytest.raises(OutOfSpaceError, match="encoder_layers is 2"):
        space.validate(
            small_arch(
                encoder_ffn_dims=[1024] * 2, encoder_heads=[4] * 2, decoder_arbitrary_attn=[-1, 1]
            )
        )
    with pytest.raises(OutOfSpaceError, match="unknown search space"):
        get_space("nope")
    # hat-iwslt has heads {2, 4}: 8 heads are out of it.
    assert "decoder_heads[0] is 8" in " ".join(get_space("hat-iwslt").problems(small_arch()))


@pytest.mark.parametrize("name", SPACES)
def test_hat_yaml_and_arch_info_round_trip(name):
    for arch in get_space(name).sample_many(50, seed=1):
        assert from_yaml(to_yaml(arch)) == arch
        assert parse_arch_info(to_arch_info(arch)) == arch


def test_hat_yaml_reads_six_entry_lists_and_ignores_training_keys():
    text = "\n".join(
        [
            "encoder-embed-dim-subtransformer: 640",
            "decoder-embed-dim-subtransformer: 512",
            "encoder-ffn-embed-dim-all-subtransformer: [3072, 3072, 3072, 3072, 3072, 3072]",
            "decoder-ffn-embed-dim-all-subtransformer: [2048, 1024, 3072, 3072, 3072, 3072]",
            "encoder-layer-num-subtransformer: 6",
            "decoder-layer-num-subtransformer: 2",
            "encoder-self-attention-heads-all-subtransformer: [8, 8, 8, 8, 8, 8]",
            "decoder-self-attention-heads-all-subtransformer: [8, 4, 8, 8, 8, 8]",
            "decoder-ende-attention-heads-all-subtransformer: [8, 8, 8, 8, 8, 8]",
            "decoder-arbitrary-ende-attn-all-subtransformer: [1, -1, -1, -1, -1, -1]",
            "max-tokens: 4096",
        ]
    )
    arch = from_yaml(text)
    assert arch.decoder_ffn_dims == (2048, 1024)
    assert arch.decoder_arbitrary_attn == (1, -1)
    assert get_space("hat-wmt").contains(arch)


@pytest.mark.parametrize(
    "text, key",
    [
        ("encoder-embed-dim-subtransformer: 640", "encoder-layer-num-subtransformer"),
        (
            to_yaml(small_arch()).replace(
                "decoder-layer-num-subtransformer: 2", "decoder-layer-num-subtransformer: two"
            ),
            "decoder-layer-num-subtransformer",
        ),
        (
            to_yaml(small_arch()).replace("[2048, 3072, 3072, 3072, 3072, 3072]", "[2048]"),
            "decoder-ffn-embed-dim-all-subtransformer",
        ),
    ],
)
def test_bad_hat_configs_name_the_key(text, key):
    with pytest.raises(HatConfigError) as info:
        from_yaml(text)
    assert info.value.key == key and key in str(info.value)


def test_average_features_follow_hat_latency_table_encoding():
    features = dict(zip(FEATURE_NAMES, average_features(small_arch()), strict=True))
    assert features["decoder_layer_num"] == 2
    assert features["decoder_ffn_embed_dim_avg"] == 2560
    # -1 attends to one encoder layer, 2 to three: HAT's table stores their mean, 2.
    assert features["decoder_arbitrary_ende_attn_avg"] == 2


def test_layer_encoding_has_fixed_length_and_zeros_for_absent_layers():
    space = get_space("hat-wmt")
    short = space.layer_encoding(small_arch())
    deep = space.layer_encoding(space.sample(random.Random(0)))
    assert short.shape == deep.shape == (4 + 2 * 6 + 4 * 6,)
    assert np.count_nonzero(short == 0) == 4 * 4  # four decoder genes x four absent layers
