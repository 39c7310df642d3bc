"""HAT's search space: choices per gene, sampling, mutation, crossover, validation, features."""

from __future__ import annotations

import random
from dataclasses import dataclass

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
        """Resample each gene (scalar or per-layer value) with probability ``prob``."""
        genes = self._genes(arch, rng)
        for name, choices in self._scalar_choices().items():
            if rng.random() < prob:
                genes[name] = rng.choice(choices)
        for name, choices in self._layer_choices().items():
            genes[name] = [rng.choice(choices) if rng.random() < prob else v for v in genes[name]]
        return self._from_genes(genes, rng)

    def crossover(self, a: Architecture, b: Architecture, rng: random.Random) -> Architecture:
        """Uniform crossover: every gene comes from either parent with equal chance."""
        ga, gb = self._genes(a, rng), self._genes(b, rng)
        child = {}
        for name in ga:
            if isinstance(ga[name], list):
                child[name] = [rng.choice(pair) for pair in zip(ga[name], gb[name], strict=True)]
            else:
                child[name] = rng.choice((ga[name], gb[name]))
        return self._from_genes(child, rng)

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

    def _genes(self, arch: Architecture, rng: random.Random) -> dict:
        """HAT's genome: per-layer lists at the maximum depth, unused layers filled at random,
        so that a depth mutation or crossover has values for the layers it switches on."""
        genes: dict = {
            "encoder_embed_dim": arch.encoder_embed_dim,
            "decoder_embed_dim": arch.decoder_embed_dim,
            "encoder_layers": arch.encoder_layers,
            "decoder_layers": arch.decoder_layers,
        }
        for name, choices in self._layer_choices().items():
            values = list(getattr(arch, name))
            depth = (
                self.max_encoder_layers if name.startswith("encoder") else self.max_decoder_layers
            )
            genes[name] = values + [rng.choice(choices) for _ in range(depth - len(values))]
        return genes

    def _from_genes(self, genes: dict, rng: random.Random) -> Architecture:
        enc, dec = genes["encoder_layers"], genes["decoder_layers"]
        allowed = self._arbitrary_choices(enc)
        arbitrary = [
            k if k in allowed else rng.choice(allowed) for k in genes["decoder_arbitrary_attn"]
        ]
        return Architecture(
            encoder_embed_dim=genes["encoder_embed_dim"],
            decoder_embed_dim=genes["decoder_embed_dim"],
            encoder_ffn_dims=genes["encoder_ffn_dims"][:enc],
            encoder_heads=genes["encoder_heads"][:enc],
            decoder_ffn_dims=genes["decoder_ffn_dims"][:dec],
            decoder_heads=genes["decoder_heads"][:dec],
            decoder_cross_heads=genes["decoder_cross_heads"][:dec],
            decoder_arbitrary_attn=arbitrary[:dec],
            qkv_dim=self.qkv_dim,
        )

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
            depth = (
                self.max_encoder_layers if name.startswith("encoder") else self.max_decoder_layers
            )
            layer_values = list(getattr(arch, name))
            values += layer_values + [0] * (depth - len(layer_values))
        return np.asarray(values, dtype=np.float64)


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
