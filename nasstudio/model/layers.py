"""Transformer layers whose weights can be used in part (HAT's elastic layers).

Every layer is allocated at some size and computes with the leading slices of its weights:
``W[:out, :in]``, ``bias[:out]``, layer norm ``[:dim]``. A standalone model allocates each
layer at exactly its architecture's size (the slices are the whole tensors); the
SuperTransformer allocates at the largest size of a search space and switches the active
size per sub-architecture. Layers are post-norm (fairseq's and HAT's default), so no final
layer norm is needed and the parameter counts match HAT's exactly.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def make_positions(tokens: Tensor, pad_id: int) -> Tensor:
    """fairseq's position ids (``utils.make_positions``): a sentence's real tokens count from
    ``pad_id + 1``, so padding on either side shifts nothing; padding gets ``pad_id``."""
    real = tokens.ne(pad_id)
    return real.long().cumsum(dim=1) * real + pad_id


def sinusoidal_positions(positions: Tensor, dim: int) -> Tensor:
    """fairseq's sinusoidal embedding (sin half, then cos half) of integer ``positions``."""
    half = dim // 2
    # fairseq's spacing of the frequencies; max(..., 1) avoids a division by zero for dim < 4.
    scale = math.log(10000.0) / max(half - 1, 1)
    freqs = torch.exp(torch.arange(half, device=positions.device, dtype=torch.float32) * -scale)
    angles = positions.to(torch.float32).unsqueeze(-1) * freqs
    emb = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


class SlicedLinear(nn.Linear):
    """A biased linear layer that computes with the leading ``active_out x active_in`` block."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(in_features, out_features, bias=True)
        self.active_in = in_features
        self.active_out = out_features

    def reset_parameters(self) -> None:
        # fairseq's Transformer initialisation.
        nn.init.xavier_uniform_(self.weight)
        nn.init.zeros_(self.bias)

    def set_active(self, in_features: int, out_features: int) -> None:
        self.active_in, self.active_out = in_features, out_features

    def forward(self, x: Tensor) -> Tensor:
        weight = self.weight[: self.active_out, : self.active_in]
        return F.linear(x, weight, self.bias[: self.active_out])


class SlicedLayerNorm(nn.LayerNorm):
    """A layer norm over the leading ``active_dim`` features."""

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        self.active_dim = dim

    def forward(self, x: Tensor) -> Tensor:
        d = self.active_dim
        return F.layer_norm(x, (d,), self.weight[:d], self.bias[:d], self.eps)


class Attention(nn.Module):
    """Multi-head attention with q/k/v projected to ``qkv_dim`` whatever the model width.

    The head dim is ``qkv_dim / heads``, so a change of head count reshapes the same weights.
    """

    def __init__(
        self, query_dim: int, key_dim: int, qkv_dim: int, heads: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.q_proj = SlicedLinear(query_dim, qkv_dim)
        self.k_proj = SlicedLinear(key_dim, qkv_dim)
        self.v_proj = SlicedLinear(key_dim, qkv_dim)
        self.out_proj = SlicedLinear(qkv_dim, query_dim)
        self.qkv_dim = qkv_dim
        self.heads = heads
        self.dropout = dropout

    def set_active(self, query_dim: int, key_dim: int, heads: int) -> None:
        self.q_proj.set_active(query_dim, self.qkv_dim)
        self.k_proj.set_active(key_dim, self.qkv_dim)
        self.v_proj.set_active(key_dim, self.qkv_dim)
        self.out_proj.set_active(self.qkv_dim, query_dim)
        self.heads = heads

    def _split(self, x: Tensor) -> Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.heads, -1).transpose(1, 2)

    def keys_values(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        """Keys and values of ``memory`` (B x S x key_dim) as B x heads x S x head_dim."""
        return self._split(self.k_proj(memory)), self._split(self.v_proj(memory))

    def forward(
        self,
        query: Tensor,
        keys: Tensor,
        values: Tensor,
        mask: Tensor | None = None,
        causal: bool = False,
    ) -> Tensor:
        """Attend from ``query`` (B x T x query_dim); ``mask`` is True where a key may be seen."""
        q = self._split(self.q_proj(query))
        out = F.scaled_dot_product_attention(
            q,
            keys,
            values,
            attn_mask=mask,
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=causal,
        )
        b, _, t, _ = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(b, t, self.qkv_dim))


class KVCache:
    """One decoder layer's self-attention keys and values so far (B x heads x t x head_dim)."""

    def __init__(self) -> None:
        self.keys: Tensor | None = None
        self.values: Tensor | None = None

    def extend(self, keys: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
        """Append the newest positions; return all keys and values."""
        if self.keys is not None and self.values is not None:
            keys = torch.cat([self.keys, keys], dim=2)
            values = torch.cat([self.values, values], dim=2)
        self.keys, self.values = keys, values
        return keys, values

    def reorder(self, index: Tensor) -> None:
        """Keep the batch rows ``index`` (beam search)."""
        if self.keys is not None and self.values is not None:
            self.keys, self.values = self.keys[index], self.values[index]


class FeedForward(nn.Module):
    """fc1 -> ReLU -> fc2 (HAT's activation)."""

    def __init__(self, dim: int, ffn_dim: int) -> None:
        super().__init__()
        self.fc1 = SlicedLinear(dim, ffn_dim)
        self.fc2 = SlicedLinear(ffn_dim, dim)

    def set_active(self, dim: int, ffn_dim: int) -> None:
        self.fc1.set_active(dim, ffn_dim)
        self.fc2.set_active(ffn_dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.relu(self.fc1(x)))


class EncoderLayer(nn.Module):
    """Post-norm self-attention and FFN blocks; two layer norms.

    ``dropout`` follows the self-attention block and ``scaled_dropout`` (the model sets it to
    HAT's width-scaled rate) the FFN block: HAT's encoder layer applies its unscaled
    ``args.dropout`` after self-attention and the scaled ``sample_dropout`` after the FFN.
    """

    def __init__(
        self,
        dim: int,
        ffn_dim: int,
        qkv_dim: int,
        heads: int,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.self_attn = Attention(dim, dim, qkv_dim, heads, attention_dropout)
        self.self_attn_norm = SlicedLayerNorm(dim)
        self.ffn = FeedForward(dim, ffn_dim)
        self.ffn_norm = SlicedLayerNorm(dim)
        self.dropout = self.scaled_dropout = dropout

    def set_active(self, dim: int, ffn_dim: int, heads: int, scaled_dropout: float) -> None:
        self.self_attn.set_active(dim, dim, heads)
        self.self_attn_norm.active_dim = dim
        self.ffn.set_active(dim, ffn_dim)
        self.ffn_norm.active_dim = dim
        self.scaled_dropout = scaled_dropout

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        keys, values = self.self_attn.keys_values(x)
        h = self.self_attn(x, keys, values, mask=mask)
        x = self.self_attn_norm(x + F.dropout(h, self.dropout, self.training))
        h = self.ffn(x)
        return self.ffn_norm(x + F.dropout(h, self.scaled_dropout, self.training))


class DecoderLayer(nn.Module):
    """Post-norm causal self-attention, encoder-decoder attention and FFN; three layer norms.

    Every block is followed by ``dropout``, which the model sets to HAT's width-scaled rate.
    """

    def __init__(
        self,
        dim: int,
        encoder_dim: int,
        ffn_dim: int,
        qkv_dim: int,
        heads: int,
        cross_heads: int,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.self_attn = Attention(dim, dim, qkv_dim, heads, attention_dropout)
        self.self_attn_norm = SlicedLayerNorm(dim)
        self.cross_attn = Attention(dim, encoder_dim, qkv_dim, cross_heads, attention_dropout)
        self.cross_attn_norm = SlicedLayerNorm(dim)
        self.ffn = FeedForward(dim, ffn_dim)
        self.ffn_norm = SlicedLayerNorm(dim)
        self.dropout = dropout

    def set_active(
        self,
        dim: int,
        encoder_dim: int,
        ffn_dim: int,
        heads: int,
        cross_heads: int,
        dropout: float,
    ) -> None:
        self.self_attn.set_active(dim, dim, heads)
        self.cross_attn.set_active(dim, encoder_dim, cross_heads)
        self.ffn.set_active(dim, ffn_dim)
        for norm in (self.self_attn_norm, self.cross_attn_norm, self.ffn_norm):
            norm.active_dim = dim
        self.dropout = dropout

    def forward(
        self,
        x: Tensor,
        memory_kv: tuple[Tensor, Tensor],
        memory_mask: Tensor,
        cache: KVCache | None = None,
    ) -> Tensor:
        """Decode ``x`` (B x T x dim) against precomputed encoder keys/values.

        Without ``cache`` the self-attention is causal over ``x``. With ``cache``, ``x`` is the
        one newest position, which attends to everything cached so far and itself.
        """
        keys, values = self.self_attn.keys_values(x)
        if cache is not None:
            keys, values = cache.extend(keys, values)
        h = self.self_attn(x, keys, values, causal=cache is None)
        x = self.self_attn_norm(x + F.dropout(h, self.dropout, self.training))
        h = self.cross_attn(x, *memory_kv, mask=memory_mask)
        x = self.cross_attn_norm(x + F.dropout(h, self.dropout, self.training))
        h = self.ffn(x)
        return self.ffn_norm(x + F.dropout(h, self.dropout, self.training))
