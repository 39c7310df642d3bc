"""The project's own MT architectures as a proxy suite (``task:<task>``): the architectures of
a task with a measured validation BLEU (trained or imported ground truth; the others are
skipped), each as a freshly initialised :class:`~nasstudio.model.TransformerMT`.

The minibatch is fixed: ``MT_BATCH`` source and target sequences of token ids drawn, with a
fixed seed, as :class:`~nasstudio.lpzero.inputs.Minibatch` draws them (Zipf over the ids),
from the task's vocabulary above the three special ids (padding, BOS, EOS); the target is fed
after a BOS as in teacher forcing. Every encoder and decoder layer gives inputs laid out as
GPT-2's (:func:`mt_inputs`); the gradients are those of the cross-entropy on the batch. Dropout
is off, so the inputs depend only on the architecture and the seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import torch
from torch import Tensor, nn

from nasstudio.lpzero.inputs import MAX_UNITS, LayerInputs, Minibatch
from nasstudio.lpzero.suites import TASK_PREFIX, ProxySuite, SuiteError, sample_indices
from nasstudio.model import TransformerMT, token_cross_entropy
from nasstudio.model.layers import Attention, SlicedLinear
from nasstudio.space import Architecture
from nasstudio.store import BLEU_VALID, Project

MT_BATCH = Minibatch(batch_size=4, length=24, seed=0)
_SPECIALS = 3  # padding, BOS and EOS take ids 0, 1 and 2


def mt_suite(project: Project, task: str, sample: int | None = None, seed: int = 0) -> ProxySuite:
    """The architectures of ``task`` with a measured validation BLEU, against it."""
    spec = project.task(task)
    if spec is None:
        known = ", ".join(t.name for t in project.tasks()) or "none"
        raise SuiteError(f"no task '{task}' in {project.path} (tasks: {known})")
    table = project.table(task)
    count = int(table[BLEU_VALID].notna().sum()) if BLEU_VALID in table.columns else 0
    if count < 2:
        raise SuiteError(
            f"task '{task}' has {count} architectures with a measured validation BLEU;"
            " a proxy is ranked on 2 or more (train or import some first)"
        )
    measured = table[BLEU_VALID].dropna()
    chosen = [measured.index[i] for i in sample_indices(len(measured), sample, seed)]
    archs = project.task_architectures(task, chosen)
    vocab = spec.vocab_size
    return ProxySuite(
        TASK_PREFIX + task,
        tuple(chosen),
        tuple(float(measured[i]) for i in chosen),
        "BLEU (valid)",
        lambda index: mt_inputs(archs[index], vocab),
        lambda index: mt_classic(archs[index], vocab),
    )


def mt_batch(vocab_size: int, minibatch: Minibatch = MT_BATCH) -> tuple[Tensor, Tensor, Tensor]:
    """The fixed source, target input (BOS first) and target output of a vocabulary."""
    if vocab_size <= _SPECIALS + 1:
        raise SuiteError(f"a vocabulary of {vocab_size} ids has no room for a batch")
    targets = replace(minibatch, seed=minibatch.seed + 1)
    src = minibatch.tokens(vocab_size - _SPECIALS)[:, 1:] + _SPECIALS
    tgt = targets.tokens(vocab_size - _SPECIALS) + _SPECIALS
    tgt[:, 0] = 1  # BOS
    return src, tgt[:, :-1], tgt[:, 1:]


def build_mt(arch: Architecture, vocab_size: int, seed: int = 0) -> TransformerMT:
    """A freshly initialised model of ``arch`` (weights seeded, dropout off). No proxy reads
    the embedding's gradient, the largest of a WMT-sized model: it is not computed."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = TransformerMT(arch, vocab_size, dropout=0.0, attention_dropout=0.0)
    model.embed.weight.requires_grad_(False)
    return model


def _loss(model: TransformerMT, vocab_size: int) -> Tensor:
    src, tgt_in, tgt_out = mt_batch(vocab_size)
    return token_cross_entropy(model(src, tgt_in), tgt_out, model.pad_id)


def mt_inputs(
    arch: Architecture, vocab_size: int, seed: int = 0, max_units: int | None = MAX_UNITS
) -> list[LayerInputs]:
    """The proxy inputs, laid out as GPT-2's (:func:`~nasstudio.lpzero.inputs.network_inputs`):
    per encoder layer, then per decoder layer, one entry of its self-attention's ``q``/``k``/
    ``v`` and ``softmax``, then one entry per linear layer (self-attention q, k, v and output,
    in the decoder those of the encoder-decoder attention too, FFN in and out) of its ``act``
    (output), ``weight`` and ``grad``, each keeping its first ``max_units`` output units."""
    model = build_mt(arch, vocab_size, seed)
    layers = [*model.encoder, *model.decoder]
    keep = slice(max_units)
    attention: list[LayerInputs] = [{} for _ in layers]
    linears = [[(linear, {}) for linear in _linears(layer)] for layer in layers]
    handles = []
    for store, layer, entries in zip(attention, layers, linears, strict=True):
        handles += _attention_hooks(store, layer.self_attn)
        handles += [linear.register_forward_hook(_keep_units(e, keep)) for linear, e in entries]
    try:
        model.zero_grad(set_to_none=True)
        with torch.enable_grad():  # also when a caller scores candidates under no_grad
            _loss(model, vocab_size).backward()
    finally:
        for handle in handles:
            handle.remove()
    captured = []
    for store, entries, causal in zip(
        attention, linears, [False] * len(model.encoder) + [True] * len(model.decoder), strict=True
    ):
        store["softmax"] = _attention_maps(store["q"], store["k"], causal)
        captured.append(store)
        for linear, entry in entries:
            entry["weight"] = linear.weight.detach()[keep].clone()
            entry["grad"] = linear.weight.grad.detach()[keep].clone()
            captured.append(entry)
    return captured


def _linears(layer: nn.Module) -> list[SlicedLinear]:
    attentions = [layer.self_attn] + ([layer.cross_attn] if hasattr(layer, "cross_attn") else [])
    projections = [getattr(a, n) for a in attentions for n in ("q_proj", "k_proj", "v_proj")]
    return [*projections, *(a.out_proj for a in attentions), layer.ffn.fc1, layer.ffn.fc2]


def _attention_hooks(store: LayerInputs, attention: Attention) -> list:
    def keep(name: str) -> Callable:
        def hook(_module: nn.Module, _args: tuple, output: Tensor) -> None:
            # (batch, length, qkv_dim) -> (batch, heads, length, head dim)
            batch, length, _ = output.shape
            heads = output.detach().view(batch, length, attention.heads, -1).transpose(1, 2)
            store[name] = heads.clone()

        return hook

    return [
        getattr(attention, f"{name}_proj").register_forward_hook(keep(name))
        for name in ("q", "k", "v")
    ]


def _keep_units(store: LayerInputs, keep: slice) -> Callable:
    def hook(_module: nn.Module, _args: tuple, output: Tensor) -> None:
        store["act"] = output.detach()[..., keep].clone()

    return hook


def _attention_maps(q: Tensor, k: Tensor, causal: bool) -> Tensor:
    """softmax(q k^T / sqrt(head dim)), each position seeing only earlier ones if causal."""
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if causal:
        length = scores.shape[-1]
        hidden = torch.ones(length, length, dtype=torch.bool).triu(1)
        scores = scores.masked_fill(hidden, -math.inf)
    return scores.softmax(-1)


def mt_classic(arch: Architecture, vocab_size: int, seed: int = 0) -> dict[str, float]:
    """#params (total and without the embedding), snip (sum of |w * dL/dw|) and grad_norm
    (sum of each linear weight's gradient norm) over the linear layers, from one backward pass
    of the cross-entropy on the fixed batch."""
    model = build_mt(arch, vocab_size, seed)
    model.zero_grad(set_to_none=True)
    with torch.enable_grad():
        _loss(model, vocab_size).backward()
    weights = [m.weight for m in model.modules() if isinstance(m, SlicedLinear)]
    total = sum(p.numel() for p in model.parameters())
    return {
        "num_parameters": float(total),
        "num_parameters_nonembedding": float(total - model.embed.weight.numel()),
        "snip": sum(float((w.detach() * w.grad).abs().sum()) for w in weights),
        "grad_norm": sum(float(w.grad.norm()) for w in weights),
    }
