"""An encoder-decoder Transformer built from any Architecture, with HAT's conventions.

Post-norm layers, q/k/v projected to ``arch.qkv_dim``, sinusoidal positions, token embeddings
scaled by sqrt(dim), no final layer norm, and one embedding matrix shared by the encoder, the
decoder and the output projection: ``nn.Embedding(vocab, max(e, d))`` whose leading e columns
feed the encoder and leading d columns the decoder and the (tied, bias-free) output
projection. Without the embedding the parameter count equals
``efficiency(arch, vocab).params_without_embeddings`` exactly; the embedding holds
vocab x max(e, d) values where the analytic count says vocab x d, so the totals differ when
the encoder is wider than the decoder.

Decoder layer i attends to the outputs of the last ``arch.attended_encoder_layers(i)`` encoder
layers concatenated along the sequence (HAT's arbitrary encoder-decoder attention).
Targets are right-padded (teacher forcing); sources may be padded on either side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nasstudio.model.decoding import beam_search, greedy_search
from nasstudio.model.layers import DecoderLayer, EncoderLayer, KVCache, sinusoidal_positions
from nasstudio.space import Architecture


@dataclass
class EncoderOutput:
    """Every encoder layer's output (B x S x e, first layer first) and the source padding."""

    states: list[Tensor]
    padding_mask: Tensor  # B x S, True at padding

    def memory(self, layers: int) -> tuple[Tensor, Tensor]:
        """The last ``layers`` outputs concatenated along the sequence (last layer first, as
        in HAT) and the attention mask over it (B x 1 x 1 x layers*S, True = may attend)."""
        memory = torch.cat(self.states[::-1][:layers], dim=1)
        attend = (~self.padding_mask).repeat(1, layers)
        return memory, attend[:, None, None, :]

    def index_select(self, index: Tensor) -> EncoderOutput:
        """The batch rows ``index`` (e.g. each sentence repeated once per beam)."""
        return EncoderOutput([s[index] for s in self.states], self.padding_mask[index])


@dataclass
class DecoderState:
    """What incremental decoding keeps between steps: per decoder layer, the cross-attention
    keys/values (computed once per sequence) and mask, and the growing self-attention cache."""

    memory_kv: list[tuple[Tensor, Tensor]]
    memory_masks: list[Tensor]
    caches: list[KVCache]
    step: int = 0

    def reorder_hypotheses(self, index: Tensor) -> None:
        """Row i continues the hypothesis in row ``index[i]`` (beam search). Both rows belong
        to the same sentence, so their encoder memory is the same: only the self-attention
        caches move."""
        for cache in self.caches:
            cache.reorder(index)


class TransformerMT(nn.Module):
    """Encoder-decoder Transformer for translation, built from an Architecture.

    ``pad_id`` marks padding in sources and targets; decoding starts from ``bos_id`` and
    stops at ``eos_id``.
    """

    def __init__(
        self,
        arch: Architecture,
        vocab_size: int,
        *,
        pad_id: int = 0,
        bos_id: int = 1,
        eos_id: int = 2,
        dropout: float = 0.1,
        attention_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id
        self.dropout, self.attention_dropout = dropout, attention_dropout
        self.capacity = arch  # the sizes the weights are allocated at
        e, d, q = arch.encoder_embed_dim, arch.decoder_embed_dim, arch.qkv_dim
        width = max(e, d)
        self.embed = nn.Embedding(vocab_size, width, padding_idx=pad_id)
        nn.init.normal_(self.embed.weight, std=width**-0.5)
        nn.init.zeros_(self.embed.weight[pad_id])
        self.encoder = nn.ModuleList(
            EncoderLayer(e, ffn, q, heads, dropout, attention_dropout)
            for ffn, heads in zip(arch.encoder_ffn_dims, arch.encoder_heads, strict=True)
        )
        self.decoder = nn.ModuleList(
            DecoderLayer(d, e, ffn, q, heads, cross, dropout, attention_dropout)
            for ffn, heads, cross in zip(
                arch.decoder_ffn_dims, arch.decoder_heads, arch.decoder_cross_heads, strict=True
            )
        )
        self._arch = arch

    @property
    def arch(self) -> Architecture:
        """The architecture the model computes (for a standalone model, its own)."""
        return self._arch

    # --- full passes ----------------------------------------------------------------------

    def forward(self, src: Tensor, tgt_in: Tensor) -> Tensor:
        """Logits (B x T x vocab) for target inputs ``tgt_in`` (B x T) given ``src`` (B x S)."""
        return self.decode(tgt_in, self.encode(src))

    def encode(self, src: Tensor) -> EncoderOutput:
        """Run the encoder over ``src`` (B x S token ids)."""
        pad = src.eq(self.pad_id)
        # Positions count real tokens only, so left padding does not shift them.
        positions = ((~pad).cumsum(dim=1) - 1).clamp(min=0)
        x = self._embed(src, positions, self.arch.encoder_embed_dim)
        attend = (~pad)[:, None, None, :]
        states = []
        for layer in self.encoder[: self.arch.encoder_layers]:
            x = layer(x, attend)
            states.append(x)
        return EncoderOutput(states, pad)

    def decode(self, tgt_in: Tensor, encoder_out: EncoderOutput) -> Tensor:
        """Teacher-forced decoder pass: logits (B x T x vocab) for ``tgt_in`` (B x T)."""
        positions = torch.arange(tgt_in.size(1), device=tgt_in.device).expand_as(tgt_in)
        x = self._embed(tgt_in, positions, self.arch.decoder_embed_dim)
        state = self.start_decoding(encoder_out)
        layers = self.decoder[: self.arch.decoder_layers]
        for layer, kv, mask in zip(layers, state.memory_kv, state.memory_masks, strict=True):
            x = layer(x, kv, mask)
        return self._project(x)

    # --- incremental decoding -------------------------------------------------------------

    def start_decoding(self, encoder_out: EncoderOutput) -> DecoderState:
        """Compute every decoder layer's cross-attention keys/values once for the sequence."""
        memory_kv, masks = [], []
        for i, layer in enumerate(self.decoder[: self.arch.decoder_layers]):
            memory, attend = encoder_out.memory(self.arch.attended_encoder_layers(i))
            memory_kv.append(layer.cross_attn.keys_values(memory))
            masks.append(attend)
        return DecoderState(memory_kv, masks, [KVCache() for _ in memory_kv])

    def decode_step(self, prev_tokens: Tensor, state: DecoderState) -> Tensor:
        """Logits (B x vocab) of the next token after ``prev_tokens`` (B,), the tokens of
        position ``state.step``; extends the self-attention caches and advances the step."""
        positions = torch.full_like(prev_tokens, state.step)[:, None]
        x = self._embed(prev_tokens[:, None], positions, self.arch.decoder_embed_dim)
        layers = self.decoder[: self.arch.decoder_layers]
        for layer, kv, mask, cache in zip(
            layers, state.memory_kv, state.memory_masks, state.caches, strict=True
        ):
            x = layer(x, kv, mask, cache)
        state.step += 1
        return self._project(x[:, 0])

    def greedy(self, src: Tensor, max_len: int | None = None) -> list[list[int]]:
        """Greedy translations of ``src`` as token ids (no BOS/EOS), at most ``max_len`` and
        at most 2 x source length + 10 tokens each."""
        return greedy_search(self, src, _max_len(src, max_len))

    def beam_search(
        self,
        src: Tensor,
        beam: int = 5,
        max_len: int | None = None,
        length_penalty: float = 1.0,
    ) -> list[list[int]]:
        """Beam-search translations of ``src`` (see ``decoding.beam_search``)."""
        return beam_search(self, src, beam, _max_len(src, max_len), length_penalty)

    # --- internals ------------------------------------------------------------------------

    def _embed(self, tokens: Tensor, positions: Tensor, dim: int) -> Tensor:
        x = F.embedding(tokens, self.embed.weight[:, :dim], self.pad_id) * math.sqrt(dim)
        x = x + sinusoidal_positions(positions, dim)
        return F.dropout(x, self.dropout, self.training)

    def _project(self, x: Tensor) -> Tensor:
        return F.linear(x, self.embed.weight[:, : self.arch.decoder_embed_dim])

    def _activate(self, arch: Architecture) -> None:
        """Compute ``arch`` with the leading slices of the allocated weights."""
        problem = _misfit(arch, self.capacity)
        if problem:
            raise ValueError(f"architecture does not fit the allocated weights: {problem}")
        e, d = arch.encoder_embed_dim, arch.decoder_embed_dim
        # The layers beyond arch's depth keep their old settings; they are not run.
        for layer, ffn, heads in zip(
            self.encoder, arch.encoder_ffn_dims, arch.encoder_heads, strict=False
        ):
            layer.set_active(e, ffn, heads)
        for layer, ffn, heads, cross in zip(
            self.decoder,
            arch.decoder_ffn_dims,
            arch.decoder_heads,
            arch.decoder_cross_heads,
            strict=False,
        ):
            layer.set_active(d, e, ffn, heads, cross)
        self._arch = arch


def _max_len(src: Tensor, max_len: int | None) -> int:
    # An untrained model rarely ends a sentence: bound the output by the source's length too,
    # or decoding runs to ``max_len`` and takes minutes.
    bound = 2 * src.size(1) + 10
    return bound if max_len is None else min(max_len, bound)


def _misfit(arch: Architecture, capacity: Architecture) -> str | None:
    """Why ``arch`` cannot be cut from weights allocated for ``capacity`` (None if it can)."""
    if arch.qkv_dim != capacity.qkv_dim:
        return f"qkv_dim {arch.qkv_dim} != {capacity.qkv_dim}"
    pairs = {
        "encoder_embed_dim": (arch.encoder_embed_dim, capacity.encoder_embed_dim),
        "decoder_embed_dim": (arch.decoder_embed_dim, capacity.decoder_embed_dim),
        "encoder_layers": (arch.encoder_layers, capacity.encoder_layers),
        "decoder_layers": (arch.decoder_layers, capacity.decoder_layers),
    }
    for name, (wanted, available) in pairs.items():
        if wanted > available:
            return f"{name} {wanted} > {available}"
    for side in ("encoder", "decoder"):
        wanted_dims = getattr(arch, f"{side}_ffn_dims")
        for layer, (wanted, available) in enumerate(
            zip(wanted_dims, getattr(capacity, f"{side}_ffn_dims"), strict=False)
        ):
            if wanted > available:
                return f"{side}_ffn_dims[{layer}] {wanted} > {available}"
    return None
