"""HAT's search space: choices per gene, sampling, mutation, crossover, validation, features."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from nasstudio.space.architecture import HAT_QKV_DIM, Architecture

# Column order of HAT's latency tables and of LLM-Distill-PP's input.
FEATURE_NAMES = (
    "encoder_embed_dim",
    "encoder_layer_num",
    "encoder_ffn_embed_dim_avg",
    "encoder_self_attention_heads_avg",
    "decoder_embed_dim",
    "decoder_layer_num",
    "decoder_ffn_embed_dim_avg",
    "decoder_self_attention_heads_avg",
    "decoder_ende_attention_heads_avg",
    "decoder_arbitrary_ende_attn_avg",
)


class OutOfSpaceError(ValueError):
    """An architecture value that the search space does not allow."""


@dataclass(frozen=True)
class SearchSpace:
    name: str
    description: str
    encoder_embed_dims: tuple[int, ...]
    decoder_embed_dims: tuple[int, ...]
    encoder_layer_nums: tuple[int, ...]
    decoder_layer_nums: tuple[int, ...]
    encoder_ffn_dims: tuple[int, ...]
    decoder_ffn_dims: tuple[int, ...]
    encoder_heads: tuple[int, ...]
    decoder_heads: tuple[int, ...]
    cross_heads: tuple[int, ...]
    arbitrary_attn: tuple[int, ...] = (-1, 1, 2)
    qkv_dim: int = HAT_QKV_DIM

    @property
    def max_encoder_layers(self) -> int:
        return max(self.encoder_layer_nums)

    @property
    def max_decoder_layers(self) -> int:
        return max(self.decoder_layer_nums)

    # --- sampling and evolution -------------------------------------------------------------

    def sample(self, rng: random.Random) -> Architecture:
        enc_layers = rng.choice(self.encoder_layer_nums)
        dec_layers = rng.choice(self.decoder_layer_nums)
        return Architecture(
            encoder_embed_dim=rng.choice(self.encoder_embed_dims),
            decoder_embed_dim=rng.choice(self.decoder_embed_dims),
            encoder_ffn_dims=[rng.choice(self.encoder_ffn_dims) for _ in range(enc_layers)],
            encoder_heads=[rng.choice(self.encoder_heads) for _ in range(enc_layers)],
            decoder_ffn_dims=[rng.choice(self.decoder_ffn_dims) for _ in range(dec_layers)],
            decoder_heads=[rng.choice(self.decoder_heads) for _ in range(dec_layers)],
            decoder_cross_heads=[rng.choice(self.cross_heads) for _ in range(dec_layers)],
            decoder_arbitrary_attn=[
                rng.choice(self._arbitrary_choices(enc_layers)) for _ in range(dec_layers)
            ],
            qkv_dim=self.qkv_dim,
        )

    def sample_many(self, n: int, seed: int) -> list[Architecture]:
        rng = random.Random(seed)
        return [self.sample(rng) for _ in range(n)]

    def mutate(self, arch: Architecture, rng: random.Random, prob: float) -> Architecture:
        """Resample each gene of ``arch``'s genome with probability ``prob``."""
        return self.genome(arch).mutate(rng, prob).architecture

    def crossover(self, a: Architecture, b: Architecture, rng: random.Random) -> Architecture:
        """Uniform crossover: every gene comes from either parent with equal chance."""
        return self.genome(a).crossover(self.genome(b), rng).architecture

    def genome(self, arch: Architecture) -> Genome:
        """``arch``'s genome; inactive layers repeat layer 0's values, as HAT's config2gene does."""
        self.validate(arch)
        genes = [
            arch.encoder_embed_dim,
            arch.decoder_embed_dim,
            arch.encoder_layers,
            arch.decoder_layers,
        ]
        for name, depth, _ in self._gene_layout[len(self._scalar_choices()) :]:
            values = list(getattr(arch, name))
            genes += values + [values[0]] * (depth - len(values))
        return Genome(self, tuple(genes))

    def sample_genome(self, rng: random.Random) -> Genome:
        """Every gene, active or not, drawn from all its choices (HAT's random_sample)."""
        return Genome(self, tuple(rng.choice(choices) for choices in self.gene_choices))

    @cached_property
    def gene_choices(self) -> tuple[tuple[int, ...], ...]:
        """The allowed values of each gene, in genome order."""
        return tuple(choices for _, count, choices in self._gene_layout for _ in range(count))

    @cached_property
    def _gene_layout(self) -> tuple[tuple[str, int, tuple[int, ...]], ...]:
        """(field, genes, choices) in genome order: one gene per scalar, then each per-layer
        field at the maximum depth."""
        scalars = [(name, 1, choices) for name, choices in self._scalar_choices().items()]
        layers = [
            (name, self._max_depth(name), choices)
            for name, choices in self._layer_choices().items()
        ]
        return tuple(scalars + layers)

    def _max_depth(self, layer_field: str) -> int:
        if layer_field.startswith("encoder"):
            return self.max_encoder_layers
        return self.max_decoder_layers

    def _express(self, genes: tuple[int, ...]) -> Architecture:
        """The architecture a genome encodes: the active layers' genes only."""
        fields, start = {}, 0
        for name, count, _ in self._gene_layout:
            fields[name], start = genes[start : start + count], start + count
        enc, dec = fields["encoder_layers"][0], fields["decoder_layers"][0]
        # An arbitrary-attention gene asking for more encoder layers than are active attends
        # to all of them (the largest allowed value below it), so a shallow encoder keeps it.
        allowed = self._arbitrary_choices(enc)
        arbitrary = [
            max(k for k in allowed if k <= gene) for gene in fields["decoder_arbitrary_attn"]
        ]
        return Architecture(
            encoder_embed_dim=fields["encoder_embed_dim"][0],
            decoder_embed_dim=fields["decoder_embed_dim"][0],
            encoder_ffn_dims=fields["encoder_ffn_dims"][:enc],
            encoder_heads=fields["encoder_heads"][:enc],
            decoder_ffn_dims=fields["decoder_ffn_dims"][:dec],
            decoder_heads=fields["decoder_heads"][:dec],
            decoder_cross_heads=fields["decoder_cross_heads"][:dec],
            decoder_arbitrary_attn=arbitrary[:dec],
            qkv_dim=self.qkv_dim,
        )

    def _arbitrary_choices(self, encoder_layers: int) -> tuple[int, ...]:
        return tuple(k for k in self.arbitrary_attn if max(k + 1, 1) <= encoder_layers)

    def _scalar_choices(self) -> dict[str, tuple[int, ...]]:
        return {
            "encoder_embed_dim": self.encoder_embed_dims,
            "decoder_embed_dim": self.decoder_embed_dims,
            "encoder_layers": self.encoder_layer_nums,
            "decoder_layers": self.decoder_layer_nums,
        }

    def _layer_choices(self) -> dict[str, tuple[int, ...]]:
        return {
            "encoder_ffn_dims": self.encoder_ffn_dims,
            "encoder_heads": self.encoder_heads,
            "decoder_ffn_dims": self.decoder_ffn_dims,
            "decoder_heads": self.decoder_heads,
            "decoder_cross_heads": self.cross_heads,
            "decoder_arbitrary_attn": self.arbitrary_attn,
        }

    # --- validation --------------------------------------------------------------------------

    def validate(self, arch: Architecture) -> None:
        """Raise OutOfSpaceError naming the first value that this space does not allow."""
        problems = self.problems(arch)
        if problems:
            raise OutOfSpaceError(f"not in search space '{self.name}': {problems[0]}")

    def contains(self, arch: Architecture) -> bool:
        return not self.problems(arch)

    def problems(self, arch: Architecture) -> list[str]:
        out = []
        if arch.qkv_dim != self.qkv_dim:
            out.append(f"qkv_dim is {arch.qkv_dim}, expected {self.qkv_dim}")
        scalars = {
            "encoder_embed_dim": arch.encoder_embed_dim,
            "decoder_embed_dim": arch.decoder_embed_dim,
            "encoder_layers": arch.encoder_layers,
            "decoder_layers": arch.decoder_layers,
        }
        for name, choices in self._scalar_choices().items():
            if scalars[name] not in choices:
                out.append(f"{name} is {scalars[name]}, expected one of {list(choices)}")
        for name, choices in self._layer_choices().items():
            for layer, value in enumerate(getattr(arch, name)):
                if value not in choices:
                    out.append(f"{name}[{layer}] is {value}, expected one of {list(choices)}")
        return out

    # --- encodings ---------------------------------------------------------------------------

    def layer_encoding(self, arch: Architecture) -> np.ndarray:
        """Per-layer vector: scalars, then every per-layer gene at maximum depth (0 = no layer)."""
        values = [
            arch.encoder_embed_dim,
            arch.decoder_embed_dim,
            arch.encoder_layers,
            arch.decoder_layers,
        ]
        for name in self._layer_choices():
            layer_values = list(getattr(arch, name))
            values += layer_values + [0] * (self._max_depth(name) - len(layer_values))
        return np.asarray(values, dtype=np.float64)


@dataclass(frozen=True)
class Genome:
    """HAT's genome: the scalar genes, then every per-layer gene at the space's maximum depth.

    Genes of layers beyond the current depth are inactive: the architecture does not show them,
    but mutation and crossover carry them on, so a depth that drops and rises again gets its old
    layer values back, as in HAT's evolutionary search.
    """

    space: SearchSpace
    genes: tuple[int, ...]

    def __post_init__(self) -> None:
        choices = self.space.gene_choices
        if len(self.genes) != len(choices):
            raise OutOfSpaceError(
                f"a genome of space '{self.space.name}' has {len(choices)} genes, "
                f"got {len(self.genes)}"
            )
        for position, (gene, allowed) in enumerate(zip(self.genes, choices, strict=True)):
            if gene not in allowed:
                raise OutOfSpaceError(f"gene {position} is {gene}, expected one of {list(allowed)}")

    @cached_property
    def architecture(self) -> Architecture:
        return self.space._express(self.genes)

    def mutate(self, rng: random.Random, prob: float) -> Genome:
        """Resample each gene, active or not, with probability ``prob`` (HAT's mutate)."""
        genes = tuple(
            rng.choice(choices) if rng.random() < prob else gene
            for gene, choices in zip(self.genes, self.space.gene_choices, strict=True)
        )
        return Genome(self.space, genes)

    def crossover(self, other: Genome, rng: random.Random) -> Genome:
        """Uniform crossover: every gene from either parent with equal chance."""
        genes = tuple(rng.choice(pair) for pair in zip(self.genes, other.genes, strict=True))
        return Genome(self.space, genes)

    def indices(self) -> tuple[int, ...]:
        """Each gene as its index among the gene's choices (an integer encoding)."""
        return tuple(
            choices.index(gene)
            for gene, choices in zip(self.genes, self.space.gene_choices, strict=True)
        )

    @classmethod
    def from_indices(cls, space: SearchSpace, indices: Sequence[int]) -> Genome:
        return cls(
            space, tuple(c[int(i)] for c, i in zip(space.gene_choices, indices, strict=True))
        )


def average_features(arch: Architecture) -> np.ndarray:
    """HAT's 10 averaged features (FEATURE_NAMES); arbitrary attention as layers attended."""
    dec = arch.decoder_layers
    return np.array(
        [
            arch.encoder_embed_dim,
            arch.encoder_layers,
            sum(arch.encoder_ffn_dims) / arch.encoder_layers,
            sum(arch.encoder_heads) / arch.encoder_layers,
            arch.decoder_embed_dim,
            dec,
            sum(arch.decoder_ffn_dims) / dec,
            sum(arch.decoder_heads) / dec,
            sum(arch.decoder_cross_heads) / dec,
            sum(arch.attended_encoder_layers(i) for i in range(dec)) / dec,
        ],
        dtype=np.float64,
    )


PRESETS: dict[str, SearchSpace] = {
    space.name: space
    for space in (
        SearchSpace(
            name="hat-wmt",
            description="HAT's space for WMT'14 En-De / En-Fr and WMT'19 En-De",
            encoder_embed_dims=(512, 640),
            decoder_embed_dims=(512, 640),
            encoder_layer_nums=(6,),
            decoder_layer_nums=(1, 2, 3, 4, 5, 6),
            encoder_ffn_dims=(1024, 2048, 3072),
            decoder_ffn_dims=(1024, 2048, 3072),
            encoder_heads=(4, 8),
            decoder_heads=(4, 8),
            cross_heads=(4, 8),
        ),
        SearchSpace(
            name="hat-iwslt",
            description="HAT's space for IWSLT'14 De-En",
            encoder_embed_dims=(512, 640),
            decoder_embed_dims=(512, 640),
            encoder_layer_nums=(6,),
            decoder_layer_nums=(1, 2, 3, 4, 5, 6),
            encoder_ffn_dims=(512, 1024, 2048),
            decoder_ffn_dims=(512, 1024, 2048),
            encoder_heads=(2, 4),
            decoder_heads=(2, 4),
            cross_heads=(2, 4),
        ),
        SearchSpace(
            name="tiny-cpu",
            description="Small models that train in minutes on a CPU (demo corpus)",
            encoder_embed_dims=(64, 128),
            decoder_embed_dims=(64, 128),
            encoder_layer_nums=(1, 2, 3),
            decoder_layer_nums=(1, 2, 3),
            encoder_ffn_dims=(128, 256, 512),
            decoder_ffn_dims=(128, 256, 512),
            encoder_heads=(2, 4),
            decoder_heads=(2, 4),
            cross_heads=(2, 4),
            qkv_dim=128,
        ),
    )
}


def get_space(name: str) -> SearchSpace:
    try:
        return PRESETS[name]
    except KeyError:
        raise OutOfSpaceError(
            f"unknown search space '{name}', expected one of {sorted(PRESETS)}"
        ) from None
