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

Training follows HAT's SuperTransformer, in which HAT trains every SubTransformer too (its
``configs/*/subtransformer/common.yml`` names the 640-wide SuperTransformer to train it in):
``super_embed_dims`` are the encoder and decoder widths of that super-network (by default the
model's own). Positions are fairseq's (``make_positions``: from ``pad_id + 1``, padding gets
``pad_id`` and a zero embedding), embedded with one sinusoid table of the super width sliced to
the active width; dropout is scaled by active width / super width (HAT's ``calc_dropout``;
attention dropout is not); the embedding is initialised with std ``super width ** -0.5``. The
super widths are a buffer of the state dict, so a checkpoint records its position scheme.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nasstudio.model.decoding import beam_search, greedy_search
from nasstudio.model.layers import (
    DecoderLayer,
    EncoderLayer,
    KVCache,
    make_positions,
    sinusoidal_positions,
)
from nasstudio.space import Architecture

_SUPER_WIDTHS = "position_table_widths"  # the state-dict buffer that records the scheme


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
    stops at ``eos_id``. ``super_embed_dims`` (encoder, decoder) are the widths of the
    SuperTransformer the model is trained as a part of, as HAT does (see the module's text).
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
        super_embed_dims: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id
        self.dropout, self.attention_dropout = dropout, attention_dropout
        self.capacity = arch  # the sizes the weights are allocated at
        e, d, q = arch.encoder_embed_dim, arch.decoder_embed_dim, arch.qkv_dim
        self.super_embed_dims = _checked_super_dims(super_embed_dims or (e, d), arch)
        self.register_buffer(_SUPER_WIDTHS, torch.tensor(self.super_embed_dims))
        self.embed = nn.Embedding(vocab_size, max(e, d), padding_idx=pad_id)
        # HAT's EmbeddingSuper: std of the super-network's (shared) embedding width.
        nn.init.normal_(self.embed.weight, std=max(self.super_embed_dims) ** -0.5)
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
        self._activate(arch)  # sets the width-scaled dropout

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
        x = self._embed(src, make_positions(src, self.pad_id), decoder=False)
        attend = (~pad)[:, None, None, :]
        states = []
        for layer in self.encoder[: self.arch.encoder_layers]:
            x = layer(x, attend)
            states.append(x)
        return EncoderOutput(states, pad)

    def decode(self, tgt_in: Tensor, encoder_out: EncoderOutput) -> Tensor:
        """Teacher-forced decoder pass: logits (B x T x vocab) for ``tgt_in`` (B x T)."""
        x = self._embed(tgt_in, make_positions(tgt_in, self.pad_id), decoder=True)
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
        # The step's position as in teacher forcing (fairseq: pad_id + number of tokens so far).
        positions = torch.full_like(prev_tokens, self.pad_id + 1 + state.step)[:, None]
        x = self._embed(prev_tokens[:, None], positions, decoder=True)
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

    def positional_embeddings(self, positions: Tensor, decoder: bool) -> Tensor:
        """The encoder's (or decoder's) sinusoidal embeddings of ``positions`` (position ids as
        ``make_positions`` numbers them) at the active width: the leading columns of the one
        table of the super width, zero at padding's position ``pad_id`` (fairseq's table)."""
        table_width = self.super_embed_dims[decoder]
        emb = sinusoidal_positions(positions, table_width)[..., : self._width(decoder)]
        return emb.masked_fill(positions.eq(self.pad_id).unsqueeze(-1), 0.0)

    def scaled_dropout(self, decoder: bool) -> float:
        """HAT's ``calc_dropout``: the dropout rate times active width / super width."""
        return self.dropout * self._width(decoder) / self.super_embed_dims[decoder]

    # --- internals ------------------------------------------------------------------------

    def _width(self, decoder: bool) -> int:
        return self.arch.decoder_embed_dim if decoder else self.arch.encoder_embed_dim

    def _embed(self, tokens: Tensor, positions: Tensor, decoder: bool) -> Tensor:
        dim = self._width(decoder)
        x = F.embedding(tokens, self.embed.weight[:, :dim], self.pad_id) * math.sqrt(dim)
        x = x + self.positional_embeddings(positions, decoder)
        return F.dropout(x, self.scaled_dropout(decoder), self.training)

    def _project(self, x: Tensor) -> Tensor:
        return F.linear(x, self.embed.weight[:, : self.arch.decoder_embed_dim])

    def _activate(self, arch: Architecture) -> None:
        """Compute ``arch`` with the leading slices of the allocated weights."""
        problem = _misfit(arch, self.capacity)
        if problem:
            raise ValueError(f"architecture does not fit the allocated weights: {problem}")
        e, d = arch.encoder_embed_dim, arch.decoder_embed_dim
        self._arch = arch
        encoder_dropout, decoder_dropout = self.scaled_dropout(False), self.scaled_dropout(True)
        # The layers beyond arch's depth keep their old settings; they are not run.
        for layer, ffn, heads in zip(
            self.encoder, arch.encoder_ffn_dims, arch.encoder_heads, strict=False
        ):
            layer.set_active(e, ffn, heads, encoder_dropout)
        for layer, ffn, heads, cross in zip(
            self.decoder,
            arch.decoder_ffn_dims,
            arch.decoder_heads,
            arch.decoder_cross_heads,
            strict=False,
        ):
            layer.set_active(d, e, ffn, heads, cross, decoder_dropout)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: Any) -> None:
        """Take the super widths the weights were trained with from the state dict; refuse
        weights saved before the model recorded them (their positions were different)."""
        problem = outdated_weights(state_dict, self, prefix)
        if problem:
            raise ValueError(problem)
        widths = tuple(int(w) for w in state_dict[prefix + _SUPER_WIDTHS].tolist())
        self.super_embed_dims = _checked_super_dims(widths, self.capacity)
        self._activate(self.arch)
        super()._load_from_state_dict(state_dict, prefix, *args)


def outdated_weights(weights: Mapping[str, Any], model: nn.Module, prefix: str = "") -> str | None:
    """Why ``weights`` (a state dict) would compute differently in ``model`` than in the model
    that saved them, or None: weights of a TransformerMT saved before it recorded its
    position scheme were trained with other positions."""
    if not isinstance(model, TransformerMT) or prefix + _SUPER_WIDTHS in weights:
        return None
    return (
        "these weights predate HAT's positional embeddings (positions from pad_id + 1, one "
        "sinusoid table of the super width): they would decode differently; train it again"
    )


def _checked_super_dims(dims: tuple[int, int], arch: Architecture) -> tuple[int, int]:
    e, d = (int(w) for w in dims)
    if e < arch.encoder_embed_dim or d < arch.decoder_embed_dim:
        raise ValueError(
            f"super_embed_dims {(e, d)} narrower than the model "
            f"({arch.encoder_embed_dim}, {arch.decoder_embed_dim})"
        )
    return e, d


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
