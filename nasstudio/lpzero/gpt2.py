"""The LTS GPT-2 decoder in torch, built from a :class:`GPT2Config`.

It follows the model the LTS benchmark was trained with (archai's GPT-2 "flex" with adaptive
input and output): per-layer head counts and FFN widths, learned positions, pre-layer-norm
blocks with biased linear layers and a final layer norm, an adaptive embedding whose clusters
shrink by ``div_val`` and a projected adaptive log-softmax that shares the embedding weights
and, where ``tie_projs`` says so, its projections. With these, parameter counts equal the
``params`` of LPZero's archs file exactly (total and non-embedding).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from nasstudio.lpzero.benchmarks import GPT2Config

_INIT_STD = 0.02
_PROJ_INIT_STD = 0.01
_RESIDUAL_PROJECTIONS = ("attn.out.weight", "ffn.proj.weight")


class _Uninitialised:
    """Skips torch's init: build_gpt2 initialises every parameter itself, and counting
    parameters needs no values at all."""

    def reset_parameters(self) -> None:
        pass


class Linear(_Uninitialised, nn.Linear):
    pass


class Embedding(_Uninitialised, nn.Embedding):
    pass


class Attention(nn.Module):
    """Causal multi-head self-attention with separate q/k/v projections (the same parameters
    as GPT-2's fused ``c_attn``), so hooks can read each projection and the softmax map."""

    def __init__(self, d_model: int, n_head: int) -> None:
        super().__init__()
        self.n_head = n_head
        self.q = Linear(d_model, d_model)
        self.k = Linear(d_model, d_model)
        self.v = Linear(d_model, d_model)
        self.softmax = nn.Softmax(dim=-1)
        self.out = Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, d_model = x.shape
        q, k, v = (self._heads(proj(x)) for proj in (self.q, self.k, self.v))
        scores = q @ k.transpose(-1, -2) / (q.shape[-1] ** 0.5)
        future = torch.ones(length, length, dtype=torch.bool, device=x.device).triu(1)
        weights = self.softmax(scores.masked_fill(future, float("-inf")))
        mixed = (weights @ v).transpose(1, 2).reshape(batch, length, d_model)
        return self.out(mixed)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, d_model = x.shape
        return x.view(batch, length, self.n_head, d_model // self.n_head).transpose(1, 2)


class FeedForward(nn.Module):
    def __init__(self, d_model: int, d_inner: int) -> None:
        super().__init__()
        self.fc = Linear(d_model, d_inner)
        self.act = nn.GELU(approximate="tanh")
        self.proj = Linear(d_inner, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.act(self.fc(x)))


class Block(nn.Module):
    def __init__(self, d_model: int, n_head: int, d_inner: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(d_model)
        self.attn = Attention(d_model, n_head)
        self.ln_2 = nn.LayerNorm(d_model)
        self.ffn = FeedForward(d_model, d_inner)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.ffn(self.ln_2(x))


class AdaptiveEmbedding(nn.Module):
    """Token clusters with embedding widths ``d_embed // div_val**i``, each projected to
    ``d_model`` (a single table when ``div_val`` is 1, projected only if widths differ)."""

    def __init__(self, config: GPT2Config) -> None:
        super().__init__()
        self.ends = (0, *config.cluster_ends)
        self.d_model = config.d_model
        sizes = [b - a for a, b in zip(self.ends, self.ends[1:], strict=False)]
        if config.div_val == 1:
            sizes, widths = [config.n_token], [config.d_embed]
        else:
            widths = [config.d_embed // config.div_val**i for i in range(len(sizes))]
        self.layers = nn.ModuleList(Embedding(n, w) for n, w in zip(sizes, widths, strict=True))
        self.projs = nn.ParameterList(
            nn.Parameter(torch.empty(config.d_model, w))
            for w in widths
            if config.div_val > 1 or w != config.d_model
        )

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        weight = self.layers[0].weight
        out = torch.zeros(*tokens.shape, self.d_model, device=weight.device, dtype=weight.dtype)
        starts = self.ends if len(self.layers) > 1 else (0, self.ends[-1])
        for i, layer in enumerate(self.layers):
            inside = (tokens >= starts[i]) & (tokens < starts[i + 1])
            vectors = layer(tokens[inside] - starts[i])
            if len(self.projs):
                vectors = F.linear(vectors, self.projs[i])
            out[inside] = vectors
        return out * self.d_model**0.5


class AdaptiveLogSoftmax(nn.Module):
    """Transformer-XL's projected adaptive softmax: a head over the first cluster plus one
    logit per tail cluster, and a softmax inside each tail cluster. Output weights are the
    embedding tables; a projection is shared with the embedding unless ``tie_projs`` is off."""

    def __init__(self, config: GPT2Config, embedding: AdaptiveEmbedding) -> None:
        super().__init__()
        self.ends = embedding.ends
        self.n_clusters = len(self.ends) - 2
        self.single_table = config.div_val == 1
        self.embedding = [embedding]  # a list keeps the shared module out of this one's children
        self.cluster_weight = nn.Parameter(torch.zeros(self.n_clusters, config.d_embed))
        self.cluster_bias = nn.Parameter(torch.zeros(self.n_clusters))
        self.biases = nn.ParameterList(
            nn.Parameter(torch.zeros(config.n_token if self.single_table else b - a))
            for a, b in (
                [(0, config.n_token)]
                if self.single_table
                else zip(self.ends, self.ends[1:], strict=False)
            )
        )
        self.own_projs = nn.ParameterDict()
        for i, shared in enumerate(embedding.projs):
            tied = config.tie_projs[i] if i < len(config.tie_projs) else True
            if not tied:
                self.own_projs[str(i)] = nn.Parameter(torch.empty_like(shared))

    def _proj(self, i: int) -> torch.Tensor | None:
        index = 0 if self.single_table else i
        if str(index) in self.own_projs:
            return self.own_projs[str(index)]
        projs = self.embedding[0].projs
        return projs[index] if len(projs) else None

    def _cluster(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.single_table:
            return self.embedding[0].layers[i].weight, self.biases[i]
        start, end = self.ends[i], self.ends[i + 1]
        return self.embedding[0].layers[0].weight[start:end], self.biases[0][start:end]

    def log_probs(self, hidden: torch.Tensor) -> torch.Tensor:
        """Log-probabilities over the whole vocabulary, shape ``(*hidden.shape[:-1], n_token)``."""
        parts = []
        head_weight, head_bias = self._cluster(0)
        head = F.linear(
            self._project(hidden, 0),
            torch.cat([head_weight, self.cluster_weight]),
            torch.cat([head_bias, self.cluster_bias]),
        ).log_softmax(-1)
        first = self.ends[1]
        parts.append(head[..., :first])
        for i in range(1, self.n_clusters + 1):
            weight, bias = self._cluster(i)
            tail = F.linear(self._project(hidden, i), weight, bias).log_softmax(-1)
            parts.append(tail + head[..., first + i - 1 : first + i])
        return torch.cat(parts, dim=-1)

    def _project(self, hidden: torch.Tensor, i: int) -> torch.Tensor:
        proj = self._proj(i)
        return hidden if proj is None else hidden @ proj


class GPT2LM(nn.Module):
    """Decoder-only language model; ``forward`` returns the mean next-token loss."""

    def __init__(self, config: GPT2Config) -> None:
        super().__init__()
        self.config = config
        self.embedding = AdaptiveEmbedding(config)
        self.positions = Embedding(config.n_positions, config.d_model)
        self.blocks = nn.ModuleList(
            Block(config.d_model, heads, inner)
            for heads, inner in zip(config.n_head, config.d_inner, strict=True)
        )
        self.ln_f = nn.LayerNorm(config.d_model)
        self.softmax = AdaptiveLogSoftmax(config, self.embedding)

    def hidden(self, tokens: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(tokens.shape[-1], device=tokens.device)
        x = self.embedding(tokens) + self.positions(positions)
        for block in self.blocks:
            x = block(x)
        return self.ln_f(x)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        log_probs = self.softmax.log_probs(self.hidden(tokens[:, :-1]))
        return F.nll_loss(log_probs.flatten(0, 1), tokens[:, 1:].flatten())

    def non_embedding_parameters(self) -> list[nn.Parameter]:
        """The parameters of the blocks and the final layer norm."""
        return [*self.blocks.parameters(), *self.ln_f.parameters()]


def build_gpt2(config: GPT2Config, seed: int = 0, device: str | torch.device = "cpu") -> GPT2LM:
    """A freshly initialised model with GPT-2's init, as the benchmark's models had: normal(0,
    0.02), the residual projections (attention output, FFN output) scaled by 1/sqrt(2 n_layer)
    so the residual stream's variance does not grow with depth, zero biases; seeded."""
    with torch.device(device):
        model = GPT2LM(config)
    generator = torch.Generator(device=device).manual_seed(seed)
    residual_std = _INIT_STD / (2 * config.n_layer) ** 0.5
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if parameter.dim() >= 2:
                std = _PROJ_INIT_STD if "projs" in name else _INIT_STD
                if name.endswith(_RESIDUAL_PROJECTIONS):
                    std = residual_std
                parameter.normal_(0.0, std, generator=generator)
            elif name.endswith("bias"):
                parameter.zero_()  # layer-norm weights keep their ones
    return model


def count_parameters(config: GPT2Config) -> dict[str, int]:
    """``total`` and ``nonembedding`` parameter counts of the model, left uninitialised (its
    memory is reserved but never written, so even the largest costs little)."""
    model = GPT2LM(config)
    return {
        "total": sum(p.numel() for p in model.parameters()),
        "nonembedding": sum(p.numel() for p in model.non_embedding_parameters()),
    }
