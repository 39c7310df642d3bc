"""The classic zero-cost proxies, for comparison with searched ones, on a freshly initialised
GPT-2 and the fixed minibatch. As in LPZero's reference code, the weight-based ones sum over
the linear layers of the blocks (q, k and v together as GPT-2's fused ``c_attn``).

Each proxy is a function ``(model, tokens) -> float``; :data:`CLASSIC_PROXIES` names them.
Those reading the loss gradient of the weights share one backward pass through
:func:`gradient_proxies`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from nasstudio.lpzero.gpt2 import GPT2LM

Proxy = Callable[[GPT2LM, torch.Tensor], float]


def _linear_groups(model: GPT2LM) -> list[list[torch.nn.Parameter]]:
    """The weights of each block's linear layers; q, k and v form one group (``c_attn``)."""
    groups = []
    for block in model.blocks:
        attn, ffn = block.attn, block.ffn
        groups.append([attn.q.weight, attn.k.weight, attn.v.weight])
        groups += [[attn.out.weight], [ffn.fc.weight], [ffn.proj.weight]]
    return groups


def _summed_output(model: GPT2LM, tokens: torch.Tensor) -> torch.Tensor:
    """The sum of the network's outputs (log-probabilities over the vocabulary); the final
    hidden states would not do, as a fresh layer norm's outputs always sum to zero."""
    return model.softmax.log_probs(model.hidden(tokens)).sum()


def _loss_backward(model: GPT2LM, tokens: torch.Tensor) -> None:
    model.zero_grad(set_to_none=True)
    model(tokens).backward()


def gradient_proxies(model: GPT2LM, tokens: torch.Tensor) -> dict[str, float]:
    """snip (sum of |w * dL/dw|), grad_norm (sum of each layer's gradient norm) and
    head_importance, from one backward pass of the language-model loss."""
    captured = _capture_head_outputs(model)
    try:
        _loss_backward(model, tokens)
    finally:
        captured.close()
    groups = _linear_groups(model)
    snip = sum(float((w.detach() * w.grad).abs().sum()) for group in groups for w in group)
    grad_norm = sum(math.sqrt(sum(float(w.grad.square().sum()) for w in group)) for group in groups)
    return {"snip": snip, "grad_norm": grad_norm, "head_importance": captured.importance()}


class _capture_head_outputs:
    """Michel et al.'s head importance: per head, |sum of (head output * dL/d head output)|,
    the loss's sensitivity to a mask on that head, summed over heads and layers."""

    def __init__(self, model: GPT2LM) -> None:
        self.pairs: list[tuple[torch.Tensor, int]] = []
        self.handles = [
            block.attn.out.register_forward_pre_hook(self._keep(block.attn.n_head))
            for block in model.blocks
        ]

    def _keep(self, heads: int):
        def hook(_module, args):
            args[0].retain_grad()
            self.pairs.append((args[0], heads))

        return hook

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()

    def importance(self) -> float:
        total = 0.0
        for mixed, heads in self.pairs:
            product = (mixed.detach() * mixed.grad).view(*mixed.shape[:-1], heads, -1)
            total += float(product.sum(dim=(0, 1, 3)).abs().sum())
        return total


def snip(model: GPT2LM, tokens: torch.Tensor) -> float:
    return gradient_proxies(model, tokens)["snip"]


def grad_norm(model: GPT2LM, tokens: torch.Tensor) -> float:
    return gradient_proxies(model, tokens)["grad_norm"]


def head_importance(model: GPT2LM, tokens: torch.Tensor) -> float:
    return gradient_proxies(model, tokens)["head_importance"]


def fisher(model: GPT2LM, tokens: torch.Tensor) -> float:
    """Sum over the linear layers' output channels of 0.5 * mean over tokens of
    (activation * dL/d activation)^2 (Theis et al.'s Fisher pruning signal)."""
    outputs: list[torch.Tensor] = []

    def keep(_module, _args, output: torch.Tensor) -> None:
        output.retain_grad()
        outputs.append(output)

    modules = [m for b in model.blocks for m in (b.attn.q, b.attn.k, b.attn.v, b.attn.out)]
    modules += [m for b in model.blocks for m in (b.ffn.fc, b.ffn.proj)]
    handles = [m.register_forward_hook(keep) for m in modules]
    try:
        _loss_backward(model, tokens)
    finally:
        for handle in handles:
            handle.remove()
    total = 0.0
    for output in outputs:
        signal = (output.detach() * output.grad).flatten(0, -2)
        total += float(0.5 * signal.square().mean(0).sum())
    return total


def grasp(model: GPT2LM, tokens: torch.Tensor) -> float:
    """GraSP: -sum of w * (H g) over the linear weights, H the loss Hessian, g its gradient."""
    weights = [w for group in _linear_groups(model) for w in group]
    model.zero_grad(set_to_none=True)
    grads = torch.autograd.grad(model(tokens), weights, create_graph=True)
    inner = sum((g * g.detach()).sum() for g in grads)
    hessian_grad = torch.autograd.grad(inner, weights)
    return -float(sum((w.detach() * hg).sum() for w, hg in zip(weights, hessian_grad, strict=True)))


def _synflow_scores(model: GPT2LM, tokens: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(|w|, dR/dw) per linear weight, R the summed output of the network with every
    parameter replaced by its magnitude, in double precision; restored after."""
    signs = {}
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            signs[name] = parameter.sign()
            parameter.abs_()
    model.double()
    try:
        model.zero_grad(set_to_none=True)
        _summed_output(model, tokens).backward()
        weights = [w for group in _linear_groups(model) for w in group]
        return [(w.detach().clone(), w.grad.clone()) for w in weights]
    finally:
        model.float()
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                parameter.mul_(signs[name])


def synflow(model: GPT2LM, tokens: torch.Tensor) -> float:
    return float(sum((w * g).abs().sum() for w, g in _synflow_scores(model, tokens)))


def logsynflow(model: GPT2LM, tokens: torch.Tensor) -> float:
    """synflow with the gradient's magnitude on a log scale: sum of |w| * |log |dR/dw||."""
    scores = _synflow_scores(model, tokens)
    return float(sum((w * g.abs().clamp_min(1e-300).log().abs()).sum() for w, g in scores))


def jacobian_covariance(model: GPT2LM, tokens: torch.Tensor) -> float:
    """Mellor et al.'s score on the Jacobians of the summed output w.r.t. each sequence's input
    embeddings: -sum over the eigenvalues v of their correlation matrix of log(v+k) + 1/(v+k)
    (eigenvalues below zero are round-off: a correlation matrix has none)."""
    embedded: list[torch.Tensor] = []

    def keep(_module, _args, output: torch.Tensor) -> None:
        output.retain_grad()
        embedded.append(output)

    handle = model.embedding.register_forward_hook(keep)
    try:
        model.zero_grad(set_to_none=True)
        _summed_output(model, tokens).backward()
    finally:
        handle.remove()
    jacobians = embedded[0].grad.flatten(1).double().numpy()
    eigenvalues = np.linalg.eigvalsh(np.corrcoef(jacobians)).clip(min=0.0)
    k = 1e-5
    return float(-np.sum(np.log(eigenvalues + k) + 1.0 / (eigenvalues + k)))


def attention_confidence(model: GPT2LM, tokens: torch.Tensor) -> float:
    """Voita et al.'s confidence: per layer, the mean over heads and queries of the largest
    attention weight; summed over layers."""
    maxima: list[float] = []
    handles = [
        block.attn.softmax.register_forward_hook(
            lambda _m, _a, maps: maxima.append(float(maps.amax(-1).mean()))
        )
        for block in model.blocks
    ]
    try:
        with torch.no_grad():
            model.hidden(tokens)
    finally:
        for handle in handles:
            handle.remove()
    return sum(maxima)


def num_parameters(model: GPT2LM, _tokens: torch.Tensor) -> float:
    return float(sum(p.numel() for p in model.parameters()))


def num_parameters_nonembedding(model: GPT2LM, _tokens: torch.Tensor) -> float:
    return float(sum(p.numel() for p in model.non_embedding_parameters()))


CLASSIC_PROXIES: dict[str, Proxy] = {
    "num_parameters": num_parameters,
    "num_parameters_nonembedding": num_parameters_nonembedding,
    "synflow": synflow,
    "logsynflow": logsynflow,
    "snip": snip,
    "grad_norm": grad_norm,
    "fisher": fisher,
    "grasp": grasp,
    "jacobian_covariance": jacobian_covariance,
    "head_importance": head_importance,
    "attention_confidence": attention_confidence,
}
