"""FlexiBERT (NAS-Bench-BERT) encoders in torch, built from a :class:`FlexiBertArch`, with
their proxy inputs and classic proxies.

The layers follow the benchmark's model code (FlexiBERT's ELECTRA variant, which the
training-free-nas and LPZero reference code reuse). ELECTRA-small embeddings: word (BERT
uncased, 30,522 ids), 512 positions and 2 token types of width 128, a layer norm, and a linear
projection to the hidden size. Each encoder layer is an operation and a feed-forward stack:

- ``SA`` self-attention, ``SDP`` scaled dot-product or ``WMA`` weighted multiplicative (the
  query passes a bias-free square matrix first), then an output projection, a residual and a
  layer norm;
- ``LT`` a linear transform: a projection split into heads, then the real part of a 2-D DFT
  or a 2-D DCT-II over positions and head features; no output projection and no residual;
- ``DSC`` ConvBERT's mixed attention: half the heads (at least one) attend, the other half
  are a span-based dynamic convolution whose kernel (``operation_parameter`` wide) a
  depthwise-separable convolution of the keys and the query predict; then an output
  projection, a residual and a layer norm;
- ``num_feed_forward`` linear layers with GELU (the first from the hidden size), a projection
  back, a residual to the operation's output and a layer norm.

The reference code built every network with the configuration's defaults, hidden size 256 and
feed-forward width 1,024, whatever the architecture states; the parameter counts and proxy
scores of its CSV are those of such networks. ``reference_sizes=True`` builds them the same
way; by default a network has the hidden size and widths the benchmark trained it with.
Dropout is left out: proxies are read from one deterministic pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from nasstudio.lpzero.benchmarks import FlexiBertArch
from nasstudio.lpzero.gpt2 import Embedding, Linear
from nasstudio.lpzero.inputs import LayerInputs

VOCAB_SIZE = 30522
MAX_POSITIONS = 512
TYPE_VOCAB_SIZE = 2
EMBEDDING_SIZE = 128
REFERENCE_HIDDEN_SIZE = 256
REFERENCE_FFN_DIM = 1024
_INIT_STD = 0.02
_LAYER_NORM_EPS = 1e-12
# BERT uncased ids: [CLS], [SEP], [MASK], and the first word piece; the word pieces from
# there on ("the", ",", ".", ...) are ordered by frequency.
CLS_ID, SEP_ID, MASK_ID, FIRST_WORD_ID = 101, 102, 103, 1996
MAX_UNITS = 32
"""Output units kept per linear layer, as GPT-2's inputs keep some (see
:func:`flexibert_network_inputs`); its own constant, so that the proxies found on FlexiBERT
keep their values."""


@dataclass(frozen=True)
class LayerConfig:
    """One encoder layer: operation (``SA``, ``LT``, ``DSC``), its parameter (``SDP``/``WMA``,
    ``DFT``/``DCT``, or the convolution's kernel size), heads and the feed-forward stack."""

    operation: str
    parameter: str | int
    heads: int
    ffn_dim: int
    ffn_layers: int


@dataclass(frozen=True)
class FlexiBertConfig:
    hidden_size: int
    layers: tuple[LayerConfig, ...]


def flexibert_config(arch: FlexiBertArch, *, reference_sizes: bool = False) -> FlexiBertConfig:
    """The network of ``arch``; with ``reference_sizes`` the reference code's fixed sizes."""
    layers = tuple(
        LayerConfig(
            layer["operation_type"],
            layer["operation_parameter"],
            layer["num_operation_heads"],
            REFERENCE_FFN_DIM if reference_sizes else layer["feed_forward_dimension"],
            layer["num_feed_forward"],
        )
        for layer in arch.layers
    )
    return FlexiBertConfig(REFERENCE_HIDDEN_SIZE if reference_sizes else arch.hidden_size, layers)


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(batch, length, heads * d) -> (batch, heads, length, d)."""
    batch, length, width = x.shape
    return x.view(batch, length, heads, width // heads).transpose(1, 2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    batch, heads, length, d = x.shape
    return x.transpose(1, 2).reshape(batch, length, heads * d)


class Embeddings(nn.Module):
    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.words = Embedding(VOCAB_SIZE, EMBEDDING_SIZE, padding_idx=0)
        self.positions = Embedding(MAX_POSITIONS, EMBEDDING_SIZE)
        self.token_types = Embedding(TYPE_VOCAB_SIZE, EMBEDDING_SIZE)
        self.norm = nn.LayerNorm(EMBEDDING_SIZE, eps=_LAYER_NORM_EPS)
        self.project = (
            Linear(EMBEDDING_SIZE, hidden_size) if hidden_size != EMBEDDING_SIZE else None
        )

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        x = (
            self.words(tokens)
            + self.token_types(torch.zeros_like(tokens))
            + self.positions(positions)
        )
        x = self.norm(x)
        return x if self.project is None else self.project(x)


class Attention(nn.Module):
    """Multi-head attention over the whole sequence; ``weighted`` makes it WMA. Hooks read
    ``query`` (the query that meets the keys), ``key``, ``value`` and ``softmax``."""

    def __init__(self, hidden_size: int, heads: int, width: int, weighted: bool) -> None:
        super().__init__()
        self.heads = heads
        self.q_proj = Linear(hidden_size, width)
        self.k_proj = Linear(hidden_size, width)
        self.v_proj = Linear(hidden_size, width)
        self.weight = Linear(width, width, bias=False) if weighted else None
        self.query, self.key, self.value = nn.Identity(), nn.Identity(), nn.Identity()
        self.softmax = nn.Softmax(dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        query = self.q_proj(x)
        if self.weight is not None:
            query = self.weight(query)
        q = self.query(_split_heads(query, self.heads))
        k = self.key(_split_heads(self.k_proj(x), self.heads))
        v = self.value(_split_heads(self.v_proj(x), self.heads))
        maps = self.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]))
        return _merge_heads(maps @ v)


class LinearTransform(nn.Module):
    """A projection split into heads, then the real part of the 2-D DFT (``DFT``) or the
    unnormalised 2-D DCT-II (``DCT``) of each head's (positions x features) matrix."""

    def __init__(self, hidden_size: int, heads: int, kind: str) -> None:
        super().__init__()
        self.heads = heads
        self.kind = kind
        self.input = Linear(hidden_size, hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        heads = _split_heads(self.input(x), self.heads)
        if self.kind == "DFT":
            return _merge_heads(torch.fft.fft2(heads).real)
        along_positions = _dct_matrix(heads.shape[-2], heads.dtype, heads.device)
        along_features = _dct_matrix(heads.shape[-1], heads.dtype, heads.device)
        return _merge_heads(along_positions @ heads @ along_features.T)


def _dct_matrix(n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """DCT-II without normalisation (scipy's ``norm=None``):
    y_k = 2 sum_i x_i cos(pi k (2i+1) / 2n)."""
    k = torch.arange(n, dtype=torch.float64).unsqueeze(1)
    i = torch.arange(n, dtype=torch.float64).unsqueeze(0)
    return (2 * torch.cos(math.pi * k * (2 * i + 1) / (2 * n))).to(dtype=dtype, device=device)


class ConvAttention(nn.Module):
    """ConvBERT's mixed attention: ``max(1, heads // 2)`` attention heads of width
    ``hidden // heads`` and as many dynamic-convolution heads, concatenated."""

    def __init__(self, hidden_size: int, heads: int, kernel: int) -> None:
        super().__init__()
        self.kernel = kernel
        self.half_heads = max(1, heads // 2)
        self.head_size = hidden_size // heads
        width = self.half_heads * self.head_size
        self.attention = Attention(hidden_size, self.half_heads, width, weighted=False)
        self.depthwise = nn.Conv1d(
            hidden_size, hidden_size, kernel, groups=hidden_size, padding=kernel // 2, bias=False
        )
        self.pointwise = nn.Conv1d(hidden_size, width, 1, bias=False)
        self.separable_bias = nn.Parameter(torch.empty(width))
        self.kernel_proj = Linear(width, self.half_heads * kernel)
        self.conv_out = Linear(hidden_size, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        keys = self.pointwise(self.depthwise(x.transpose(1, 2))).transpose(1, 2)
        keys = keys + self.separable_bias
        # One softmax-normalised kernel per position and convolution head.
        kernels = self.kernel_proj(keys * self.attention.q_proj(x))
        kernels = kernels.view(batch, length, self.half_heads, 1, self.kernel).softmax(-1)
        pad = (self.kernel - 1) // 2
        spans = F.pad(self.conv_out(x), (0, 0, pad, pad)).unfold(1, self.kernel, 1)
        spans = spans.reshape(batch, length, self.half_heads, self.head_size, self.kernel)
        convolved = (spans * kernels).sum(-1).reshape(batch, length, -1)
        return torch.cat([self.attention(x), convolved], dim=-1)


class Operation(nn.Module):
    """An SA or DSC operation with its output projection, residual and layer norm."""

    def __init__(self, mixer: nn.Module, hidden_size: int) -> None:
        super().__init__()
        self.mixer = mixer
        self.out = Linear(hidden_size, hidden_size)
        self.norm = nn.LayerNorm(hidden_size, eps=_LAYER_NORM_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.out(self.mixer(x)) + x)


class FeedForward(nn.Module):
    def __init__(self, hidden_size: int, dim: int, layers: int) -> None:
        super().__init__()
        self.fc = Linear(hidden_size, dim)
        self.act = nn.GELU()
        self.stack = nn.ModuleList(Linear(dim, dim) for _ in range(layers - 1))
        self.proj = Linear(dim, hidden_size)
        self.norm = nn.LayerNorm(hidden_size, eps=_LAYER_NORM_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.fc(x))
        for linear in self.stack:
            h = F.gelu(linear(h))
        return self.norm(self.proj(h) + x)


class EncoderLayer(nn.Module):
    def __init__(self, hidden_size: int, layer: LayerConfig) -> None:
        super().__init__()
        if layer.operation == "SA":
            weighted = layer.parameter == "WMA"
            mixer = Attention(hidden_size, layer.heads, hidden_size, weighted)
            self.operation = Operation(mixer, hidden_size)
        elif layer.operation == "DSC":
            mixer = ConvAttention(hidden_size, layer.heads, int(layer.parameter))
            self.operation = Operation(mixer, hidden_size)
        else:
            self.operation = LinearTransform(hidden_size, layer.heads, str(layer.parameter))
        self.ffn = FeedForward(hidden_size, layer.ffn_dim, layer.ffn_layers)

    @property
    def attention(self) -> Attention | None:
        """The layer's attention heads (SA and DSC layers), or None (LT layers)."""
        mixer = getattr(self.operation, "mixer", None)
        return mixer.attention if isinstance(mixer, ConvAttention) else mixer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ffn(self.operation(x))


class FlexiBert(nn.Module):
    """The encoder (what the benchmark's parameter counts cover) and, for the proxies' loss,
    ELECTRA's generator head for masked-LM: a projection to the embedding width, GELU, a layer
    norm and logits through the (tied) word embeddings."""

    def __init__(self, config: FlexiBertConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config.hidden_size)
        self.layers = nn.ModuleList(
            EncoderLayer(config.hidden_size, layer) for layer in config.layers
        )
        self.head = nn.Sequential(
            Linear(config.hidden_size, EMBEDDING_SIZE),
            nn.GELU(),
            nn.LayerNorm(EMBEDDING_SIZE, eps=_LAYER_NORM_EPS),
        )
        self.head_bias = nn.Parameter(torch.empty(VOCAB_SIZE))

    def hidden(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embeddings(tokens)
        for layer in self.layers:
            x = layer(x)
        return x

    def logits(self, tokens: torch.Tensor) -> torch.Tensor:
        return F.linear(
            self.head(self.hidden(tokens)), self.embeddings.words.weight, self.head_bias
        )

    def forward(self, tokens: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The mean masked-LM loss over the positions whose label is not -100 (only their
        logits are computed: the vocabulary is large)."""
        targets = labels != -100
        hidden = self.head(self.hidden(tokens)[targets])
        logits = F.linear(hidden, self.embeddings.words.weight, self.head_bias)
        return F.cross_entropy(logits, labels[targets])

    def encoder_parameters(self) -> Iterator[nn.Parameter]:
        yield from self.embeddings.parameters()
        yield from self.layers.parameters()

    def linear_layers(self) -> list[nn.Linear]:
        """The encoder layers' linear layers (operations and feed-forward stacks)."""
        return [m for m in self.layers.modules() if isinstance(m, nn.Linear)]


def build_flexibert(config: FlexiBertConfig, seed: int = 0) -> FlexiBert:
    """A freshly initialised network (BERT's init: normal(0, 0.02) weights and embeddings,
    zero biases and padding row, layer norms at one and zero), seeded."""
    model = FlexiBert(config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if parameter.dim() >= 2:
                parameter.normal_(0.0, _INIT_STD, generator=generator)
            elif name.endswith("bias"):
                parameter.zero_()  # layer-norm weights keep their ones
        model.embeddings.words.weight[0].zero_()
    return model


def count_parameters(config: FlexiBertConfig) -> int:
    """Parameters of the encoder (embeddings and layers, as the benchmark counts them), the
    model left uninitialised."""
    return sum(p.numel() for p in FlexiBert(config).encoder_parameters())


@dataclass(frozen=True)
class MaskedMinibatch:
    """The fixed masked-LM batch: ``batch_size`` sequences of ``length`` tokens, each
    ``[CLS]``, word pieces, ``[SEP]``; ``mask_fraction`` of the word pieces are replaced by
    ``[MASK]`` and are the loss's targets.

    The word pieces are drawn, with a fixed seed, from a Zipf distribution over BERT's
    uncased word pieces (probability of the r-th proportional to 1/r): from id 1996 on, that
    vocabulary lists them by frequency, and English word frequencies follow Zipf's law, so the
    batch has the token statistics of English text without a tokenizer or a download. It
    depends only on these fields, so every network sees the same tokens."""

    batch_size: int = 4
    length: int = 32
    mask_fraction: float = 0.15
    seed: int = 0

    def tokens_and_labels(self) -> tuple[torch.Tensor, torch.Tensor]:
        generator = torch.Generator().manual_seed(self.seed)
        words = self.length - 2
        ranks = torch.arange(1, VOCAB_SIZE - FIRST_WORD_ID + 1, dtype=torch.float64)
        draws = torch.multinomial(
            1.0 / ranks, self.batch_size * words, replacement=True, generator=generator
        )
        pieces = draws.view(self.batch_size, words) + FIRST_WORD_ID
        order = torch.rand(self.batch_size, words, generator=generator).argsort(-1)
        masked = torch.zeros_like(pieces, dtype=torch.bool)
        masked.scatter_(1, order[:, : max(1, round(self.mask_fraction * words))], True)
        labels = torch.where(masked, pieces, torch.full_like(pieces, -100))
        pieces = torch.where(masked, torch.full_like(pieces, MASK_ID), pieces)
        cls = torch.full((self.batch_size, 1), CLS_ID)
        sep = torch.full((self.batch_size, 1), SEP_ID)
        ignored = torch.full((self.batch_size, 1), -100)
        return torch.cat([cls, pieces, sep], 1), torch.cat([ignored, labels, ignored], 1)


def flexibert_network_inputs(
    model: FlexiBert,
    tokens: torch.Tensor,
    labels: torch.Tensor,
    max_units: int | None = MAX_UNITS,
) -> list[LayerInputs]:
    """The entries GPT-2's :func:`~nasstudio.lpzero.inputs.network_inputs` has, per encoder
    layer: on SA and DSC layers one entry of the attention's ``q``/``k``/``v`` (split into
    heads; WMA's query after its weight matrix) and ``softmax`` (attention maps); then one
    entry per linear layer (the operation's, then the feed-forward stack's) of its ``act``
    (output), ``weight`` and ``grad``, each cut to the first ``max_units`` output units (a
    random sample of a fresh layer's units: its rows are drawn independently). LT layers
    have no attention, so no entry has their q/k/v/softmax."""
    keep = slice(max_units)
    captured: list[LayerInputs] = []
    linears: list[tuple[nn.Linear, LayerInputs]] = []
    handles = []
    for layer in model.layers:
        attention = layer.attention
        if attention is not None:
            entry: LayerInputs = {}
            captured.append(entry)
            for name, module in (
                ("q", attention.query),
                ("k", attention.key),
                ("v", attention.value),
                ("softmax", attention.softmax),
            ):
                handles.append(module.register_forward_hook(_keep(entry, name, slice(None))))
        for linear in (m for m in layer.modules() if isinstance(m, nn.Linear)):
            entry = {}
            captured.append(entry)
            linears.append((linear, entry))
            handles.append(linear.register_forward_hook(_keep(entry, "act", keep)))
    try:
        model.zero_grad(set_to_none=True)
        with torch.enable_grad():  # also when a caller scores candidates under no_grad
            model(tokens, labels).backward()
    finally:
        for handle in handles:
            handle.remove()
    for linear, entry in linears:
        entry["weight"] = linear.weight.detach()[keep].clone()
        entry["grad"] = linear.weight.grad.detach()[keep].clone()
    return captured


def _keep(store: LayerInputs, name: str, units: slice) -> Callable:
    def hook(_module, _args, output: torch.Tensor) -> None:
        store[name] = output.detach()[..., units].clone()

    return hook


def flexibert_inputs(
    arch: FlexiBertArch,
    minibatch: MaskedMinibatch | None = None,
    seed: int = 0,
    *,
    reference_sizes: bool = False,
) -> list[LayerInputs]:
    """The inputs of a freshly initialised network of ``arch`` (weights seeded by ``seed``)
    from one masked-LM forward/backward pass on the fixed batch."""
    minibatch = minibatch or MaskedMinibatch()
    model = build_flexibert(flexibert_config(arch, reference_sizes=reference_sizes), seed=seed)
    _skip_word_embedding_gradient(model)
    return flexibert_network_inputs(model, *minibatch.tokens_and_labels())


def _skip_word_embedding_gradient(model: FlexiBert) -> None:
    """No proxy reads it, and it is the largest gradient (30,522 rows, also the tied output
    weights): leaving it out halves the backward pass."""
    model.embeddings.words.weight.requires_grad_(False)


def flexibert_classic(
    arch: FlexiBertArch,
    minibatch: MaskedMinibatch | None = None,
    seed: int = 0,
    *,
    reference_sizes: bool = False,
) -> dict[str, float]:
    """The classic proxies of a freshly initialised network of ``arch`` on the fixed batch:
    num_parameters (the encoder's), snip, grad_norm, head_confidence, attention_confidence
    (from one masked-LM backward pass) and synflow."""
    config = flexibert_config(arch, reference_sizes=reference_sizes)
    model = build_flexibert(config, seed=seed)
    _skip_word_embedding_gradient(model)
    tokens, labels = (minibatch or MaskedMinibatch()).tokens_and_labels()
    values = {"num_parameters": float(sum(p.numel() for p in model.encoder_parameters()))}
    values |= gradient_proxies(model, tokens, labels)
    values["synflow"] = synflow(model, tokens)
    return values


def gradient_proxies(
    model: FlexiBert, tokens: torch.Tensor, labels: torch.Tensor
) -> dict[str, float]:
    """From one backward pass of the masked-LM loss: snip (sum of |w * dL/dw|) and grad_norm
    (sum of each layer's gradient norm) over the encoder layers' linear layers, and the
    forward-only head_confidence and attention_confidence."""
    projections: list[torch.Tensor] = []
    maps: list[torch.Tensor] = []
    handles = [
        module.register_forward_hook(lambda _m, _a, out: projections.append(out.detach()))
        for module in _head_projections(model)
    ]
    handles += [
        layer.attention.softmax.register_forward_hook(lambda _m, _a, out: maps.append(out.detach()))
        for layer in model.layers
        if layer.attention is not None
    ]
    try:
        model.zero_grad(set_to_none=True)
        model(tokens, labels).backward()
    finally:
        for handle in handles:
            handle.remove()
    weights = [linear.weight for linear in model.linear_layers()]
    return {
        "snip": sum(float((w.detach() * w.grad).abs().sum()) for w in weights),
        "grad_norm": sum(float(w.grad.norm()) for w in weights),
        # The reference's head confidence: per projection, the mean over sequences and
        # features of the largest output over positions.
        "head_confidence": sum(float(out.amax(1).mean()) for out in projections),
        # Voita et al.'s confidence: mean over heads and queries of the largest weight.
        "attention_confidence": sum(float(m.amax(-1).mean()) for m in maps),
    }


def _head_projections(model: FlexiBert) -> list[nn.Linear]:
    """The projections whose outputs are split into heads: q, k, v (and WMA's weight matrix)
    of SA and DSC layers, the input projection of LT layers."""
    modules: list[nn.Linear] = []
    for layer in model.layers:
        attention = layer.attention
        if attention is None:
            modules.append(layer.operation.input)
            continue
        modules += [attention.q_proj, attention.k_proj, attention.v_proj]
        if attention.weight is not None:
            modules.append(attention.weight)
    return modules


def synflow(model: FlexiBert, tokens: torch.Tensor) -> float:
    """Sum of |w * dR/dw| over the encoder layers' linear weights, R the sum of the masked-LM
    logits of the network with every parameter replaced by its magnitude, in double precision
    (the encoder's own output would not do: a layer norm's outputs sum to a constant). The
    parameters are restored after."""
    signs = {}
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            signs[name] = parameter.sign()
            parameter.abs_()
    model.double()
    try:
        model.zero_grad(set_to_none=True)
        model.logits(tokens).sum().backward()
        weights = [linear.weight for linear in model.linear_layers()]
        return float(sum((w.detach() * w.grad).abs().sum() for w in weights))
    finally:
        model.float()
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                parameter.mul_(signs[name])
