"""Torch encoder-decoder Transformers built from an Architecture, and the weight-sharing
SuperTransformer."""

from nasstudio.model.flops import count_flops
from nasstudio.model.loss import Batch, token_cross_entropy, validation_loss
from nasstudio.model.supernet import (
    SuperTransformer,
    hat_super_embed_dims,
    largest_architecture,
    sandwich_archs,
    sandwich_backward,
    smallest_architecture,
)
from nasstudio.model.transformer import (
    DecoderState,
    EncoderOutput,
    TransformerMT,
    outdated_weights,
)

__all__ = [
    "Batch",
    "DecoderState",
    "EncoderOutput",
    "SuperTransformer",
    "TransformerMT",
    "count_flops",
    "hat_super_embed_dims",
    "largest_architecture",
    "outdated_weights",
    "sandwich_archs",
    "sandwich_backward",
    "smallest_architecture",
    "token_cross_entropy",
    "validation_loss",
]
