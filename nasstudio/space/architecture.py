"""The one Architecture type: an immutable encoder-decoder Transformer configuration."""

from __future__ import annotations

import hashlib
import json
import operator
from dataclasses import dataclass, field
from typing import Any

_SCALAR_FIELDS = ("encoder_embed_dim", "decoder_embed_dim", "qkv_dim")
# Encoder fields first, then the decoder's (the first one sets each side's depth).
_LAYER_FIELDS = (
    "encoder_ffn_dims",
    "encoder_heads",
    "decoder_ffn_dims",
    "decoder_heads",
    "decoder_cross_heads",
    "decoder_arbitrary_attn",
)

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
        try:  # operator.index takes ints (numpy's too) and refuses floats and strings
            for name in _LAYER_FIELDS:
                value = tuple(operator.index(v) for v in getattr(self, name))
                object.__setattr__(self, name, value)
            for name in _SCALAR_FIELDS:
                object.__setattr__(self, name, operator.index(getattr(self, name)))
        except TypeError:
            raise ArchitectureError(
                f"{name} must hold integers, got {getattr(self, name)!r}"
            ) from None
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
        for name in _LAYER_FIELDS[3:]:
            if len(getattr(self, name)) != self.decoder_layers:
                raise ArchitectureError(
                    f"decoder has {self.decoder_layers} FFN dims but "
                    f"{len(getattr(self, name))} values in {name}"
                )
        for name in _SCALAR_FIELDS:
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
        d: dict[str, Any] = {name: getattr(self, name) for name in _SCALAR_FIELDS}
        d.update({name: list(getattr(self, name)) for name in _LAYER_FIELDS})
        return d

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
