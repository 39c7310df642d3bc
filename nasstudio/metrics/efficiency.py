"""Parameters and FLOPs of an Architecture, computed analytically.

Conventions are HAT's and the llmas files': every linear layer has a bias; two layer norms per
encoder layer and three per decoder layer, no final norm; source and target embeddings and the
output projection share one vocab x decoder-dim matrix. FLOPs are 2 x the multiply-adds of the
linear layers and the two attention matmuls of one forward pass, output projection included.
"""

from __future__ import annotations

from dataclasses import dataclass

from nasstudio.space import Architecture

SOURCE_TOKENS = 30
TARGET_TOKENS = 30


@dataclass(frozen=True, slots=True)
class Efficiency:
    params: int
    params_without_embeddings: int
    embedding_params: int
    flops: int
    output_projection_flops: int

    @property
    def gflops(self) -> float:
        return self.flops / 1e9


def _linear_params(d_in: int, d_out: int) -> int:
    return d_in * d_out + d_out


def efficiency(
    arch: Architecture,
    vocab_size: int,
    source_tokens: int = SOURCE_TOKENS,
    target_tokens: int = TARGET_TOKENS,
) -> Efficiency:
    """Parameter counts and FLOPs of ``arch`` for a joint vocabulary of ``vocab_size``."""
    e, d, q = arch.encoder_embed_dim, arch.decoder_embed_dim, arch.qkv_dim
    src, tgt = source_tokens, target_tokens
    params = 0
    macs = 0
    for ffn in arch.encoder_ffn_dims:
        params += 3 * _linear_params(e, q) + _linear_params(q, e)
        params += _linear_params(e, ffn) + _linear_params(ffn, e) + 2 * 2 * e
        macs += src * (4 * e * q + 2 * e * ffn) + 2 * src * src * q
    for layer, ffn in enumerate(arch.decoder_ffn_dims):
        memory = arch.attended_encoder_layers(layer) * src
        params += 3 * _linear_params(d, q) + _linear_params(q, d)
        params += _linear_params(d, q) + 2 * _linear_params(e, q) + _linear_params(q, d)
        params += _linear_params(d, ffn) + _linear_params(ffn, d) + 3 * 2 * d
        macs += tgt * (6 * d * q + 2 * d * ffn) + 2 * tgt * tgt * q
        macs += memory * 2 * e * q + 2 * tgt * memory * q
    output_macs = tgt * d * vocab_size
    embedding_params = vocab_size * d
    return Efficiency(
        params=params + embedding_params,
        params_without_embeddings=params,
        embedding_params=embedding_params,
        flops=2 * (macs + output_macs),
        output_projection_flops=2 * output_macs,
    )
