"""The one Architecture type: an immutable encoder-decoder Transformer configuration."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

# HAT projects queries, keys and values to this width whatever the embedding dim.
HAT_QKV_DIM = 512


class ArchitectureError(ValueError):
    """An architecture that is malformed in itself (not merely outside a search space)."""


@dataclass(frozen=True, slots=True)
class Architecture:
    """A HAT SubTransformer: per-layer FFN dims and heads, arbitrary encoder-decoder attention.

    ``decoder_arbitrary_attn[i]`` follows HAT: -1 attends to the last encoder layer, k >= 1 to
    the last k + 1 encoder layers (concatenated along the sequence).
    """

    encoder_embed_dim: int
    decoder_embed_dim: int
    encoder_ffn_dims: tuple[int, ...]
    encoder_heads: tuple[int, ...]
    decoder_ffn_dims: tuple[int, ...]
    decoder_heads: tuple[int, ...]
    decoder_cross_heads: tuple[int, ...]
    decoder_arbitrary_attn: tuple[int, ...]
    qkv_dim: int = HAT_QKV_DIM
    id: str = field(init=False, compare=False, repr=False)
    _canonical: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name in (
            "encoder_ffn_dims",
            "encoder_heads",
            "decoder_ffn_dims",
            "decoder_heads",
            "decoder_cross_heads",
            "decoder_arbitrary_attn",
        ):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        for name in ("encoder_embed_dim", "decoder_embed_dim", "qkv_dim"):
            object.__setattr__(self, name, int(getattr(self, name)))
        self._check_shape()
        d = self.as_dict()
        if self.qkv_dim == HAT_QKV_DIM:
            del d["qkv_dim"]
        canonical = json.dumps(d, sort_keys=True, separators=(",", ":"))
        object.__setattr__(self, "_canonical", canonical)
        object.__setattr__(self, "id", hashlib.sha256(canonical.encode()).hexdigest()[:16])

    def _check_shape(self) -> None:
        if not self.encoder_ffn_dims:
            raise ArchitectureError("an architecture needs at least one encoder layer")
        if not self.decoder_ffn_dims:
            raise ArchitectureError("an architecture needs at least one decoder layer")
        if len(self.encoder_heads) != self.encoder_layers:
            raise ArchitectureError(
                f"encoder has {self.encoder_layers} FFN dims but "
                f"{len(self.encoder_heads)} head counts"
            )
        for name in ("decoder_heads", "decoder_cross_heads", "decoder_arbitrary_attn"):
            if len(getattr(self, name)) != self.decoder_layers:
                raise ArchitectureError(
                    f"decoder has {self.decoder_layers} FFN dims but "
                    f"{len(getattr(self, name))} values in {name}"
                )
        for name in ("encoder_embed_dim", "decoder_embed_dim", "qkv_dim"):
            if getattr(self, name) <= 0:
                raise ArchitectureError(f"{name} must be positive, got {getattr(self, name)}")
        for heads in (*self.encoder_heads, *self.decoder_heads, *self.decoder_cross_heads):
            if heads <= 0 or self.qkv_dim % heads:
                raise ArchitectureError(f"{heads} heads do not divide qkv_dim {self.qkv_dim}")
        for k in self.decoder_arbitrary_attn:
            if k == 0 or k < -1:
                raise ArchitectureError(
                    f"arbitrary encoder-decoder attention must be -1 or >= 1, got {k}"
                )
            if max(k + 1, 1) > self.encoder_layers:
                raise ArchitectureError(
                    f"arbitrary encoder-decoder attention {k} needs {k + 1} encoder layers, "
                    f"the encoder has {self.encoder_layers}"
                )

    @property
    def encoder_layers(self) -> int:
        return len(self.encoder_ffn_dims)

    @property
    def decoder_layers(self) -> int:
        return len(self.decoder_ffn_dims)

    def attended_encoder_layers(self, decoder_layer: int) -> int:
        """How many of the last encoder layers decoder layer ``decoder_layer`` attends to."""
        k = self.decoder_arbitrary_attn[decoder_layer]
        return 1 if k == -1 else k + 1

    def as_dict(self) -> dict[str, Any]:
        """Plain field dict (lists for tuples), the inverse of ``Architecture(**d)``."""
        d = {name: getattr(self, name) for name in _FIELDS}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def canonical_json(self) -> str:
        """Compact, key-sorted JSON; qkv_dim is left out at HAT's default so HAT ids stay stable."""
        return self._canonical

    @classmethod
    def from_json(cls, text: str) -> Architecture:
        return cls(**json.loads(text))

    def summary(self) -> str:
        """One short line for tooltips and logs."""
        return (
            f"enc {self.encoder_layers}x{self.encoder_embed_dim} / "
            f"dec {self.decoder_layers}x{self.decoder_embed_dim}"
        )


_FIELDS = (
    "encoder_embed_dim",
    "decoder_embed_dim",
    "encoder_ffn_dims",
    "encoder_heads",
    "decoder_ffn_dims",
    "decoder_heads",
    "decoder_cross_heads",
    "decoder_arbitrary_attn",
    "qkv_dim",
)
