"""Readers for the zero-cost-proxy benchmarks: LTS GPT-2 archs files (one JSON object a line,
as in LiteTransformerSearch / LPZero's ``archs.jsonl``), per-architecture reference proxy
scores, and FlexiBERT's ``BERT_benchmark.json``.

A malformed file raises :class:`BenchmarkFormatError` naming the file, the line (or record)
and what was expected.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class BenchmarkFormatError(ValueError):
    """A benchmark file that does not have the expected format."""


@dataclass(frozen=True)
class GPT2Config:
    """One LTS GPT-2 decoder: per-layer head counts and FFN widths, adaptive embedding."""

    n_layer: int
    d_model: int
    n_head: tuple[int, ...]
    d_inner: tuple[int, ...]
    d_embed: int
    div_val: int
    cutoffs: tuple[int, ...]
    n_token: int
    n_positions: int
    tie_projs: tuple[bool, ...]

    @property
    def cluster_ends(self) -> tuple[int, ...]:
        """Vocabulary boundaries of the adaptive clusters, ending at ``n_token`` (cutoffs at
        or beyond the vocabulary, such as LTS's 199997 for a 50264-token vocabulary, drop)."""
        return (*(c for c in self.cutoffs if c < self.n_token), self.n_token)


@dataclass(frozen=True)
class GPT2Arch:
    """An archs-file row: its id, config, validation perplexity and the parameter counts
    the file states (``total``, ``nonembedding``, ...; empty when the file has none)."""

    arch_id: str
    config: GPT2Config
    valid_ppl: float
    params: Mapping[str, float]

    @property
    def ground_truth(self) -> float:
        """Higher is better: the negated validation perplexity."""
        return -self.valid_ppl


@dataclass(frozen=True)
class FlexiBertArch:
    """A FlexiBERT encoder: hidden size, its layers as stated (each checked to be a valid
    operation with positive sizes), and its GLUE scores."""

    arch_id: int
    hidden_size: int
    layers: tuple[Mapping[str, Any], ...]
    scores: Mapping[str, float]

    @property
    def ground_truth(self) -> float:
        return self.scores["glue"]


_GPT2_KEYS = ("n_layer", "d_model", "n_head", "d_inner", "d_embed", "div_val", "n_token")


def read_gpt2_archs(path: str | Path) -> list[GPT2Arch]:
    """Every architecture of an LTS GPT-2 archs file, in file order."""
    path = Path(path)
    archs = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                archs.append(_gpt2_row(line, f"{path}:{number}"))
    if not archs:
        raise BenchmarkFormatError(f"{path}: no architectures (expected one JSON object a line)")
    return archs


def _gpt2_row(line: str, where: str) -> GPT2Arch:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as error:
        raise BenchmarkFormatError(f"{where}: not JSON ({error.msg})") from None
    if not isinstance(row, dict):
        raise BenchmarkFormatError(f"{where}: expected a JSON object")
    config = _field(row, "model_config", dict, where)
    missing = [key for key in _GPT2_KEYS if key not in config]
    if missing:
        raise BenchmarkFormatError(f"{where}: model_config lacks {', '.join(missing)}")
    n_layer = _positive_int(config["n_layer"], "model_config.n_layer", where)
    n_head = _per_layer(config["n_head"], n_layer, "model_config.n_head", where)
    d_model = _positive_int(config["d_model"], "model_config.d_model", where)
    if any(d_model % heads for heads in n_head):
        raise BenchmarkFormatError(f"{where}: d_model {d_model} is not divisible by every n_head")
    n_token = _positive_int(config["n_token"], "model_config.n_token", where)
    cutoffs = tuple(config.get("cutoffs") or ())
    gpt2 = GPT2Config(
        n_layer=n_layer,
        d_model=d_model,
        n_head=n_head,
        d_inner=_per_layer(config["d_inner"], n_layer, "model_config.d_inner", where),
        d_embed=_positive_int(config["d_embed"], "model_config.d_embed", where),
        div_val=_positive_int(config["div_val"], "model_config.div_val", where),
        cutoffs=tuple(_positive_int(c, "model_config.cutoffs", where) for c in cutoffs),
        n_token=n_token,
        n_positions=_positive_int(config.get("tgt_len", 192), "model_config.tgt_len", where),
        tie_projs=tuple(bool(t) for t in config.get("tie_projs", ())),
    )
    ppl = _field(row, "ppl", dict, where)
    valid_ppl = _field(ppl, "valid_ppl", (int, float), where, "ppl.valid_ppl")
    params = row.get("params") or {}
    if not isinstance(params, dict):
        raise BenchmarkFormatError(f"{where}: params must be an object of counts")
    return GPT2Arch(str(_field(row, "id", (str, int), where)), gpt2, float(valid_ppl), params)


def _field(row: Mapping, key: str, kind, where: str, name: str | None = None) -> Any:
    if key not in row:
        raise BenchmarkFormatError(f"{where}: missing field {name or key}")
    value = row[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise BenchmarkFormatError(f"{where}: field {name or key} has the wrong type")
    return value


def _positive_int(value: Any, name: str, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise BenchmarkFormatError(f"{where}: {name} must be a positive integer, got {value!r}")
    return value


def _per_layer(values: Any, n_layer: int, name: str, where: str) -> tuple[int, ...]:
    if not isinstance(values, Sequence) or isinstance(values, str):
        raise BenchmarkFormatError(f"{where}: {name} must be a list of integers")
    if len(values) < n_layer:
        raise BenchmarkFormatError(f"{where}: {name} has {len(values)} values for {n_layer} layers")
    return tuple(_positive_int(v, name, where) for v in values[:n_layer])


def read_proxy_scores(path: str | Path) -> dict[str, dict[str, float]]:
    """Reference scores ``{proxy: {arch id: score}}`` (LPZero's reference_proxy_scores.json)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise BenchmarkFormatError(f"{path}:{error.lineno}: not JSON ({error.msg})") from None
    if not isinstance(data, dict):
        raise BenchmarkFormatError(f"{path}: expected an object {{proxy: {{arch id: score}}}}")
    scores = {}
    for proxy, per_arch in data.items():
        if not isinstance(per_arch, dict):
            raise BenchmarkFormatError(f"{path}: proxy {proxy!r} must map arch ids to scores")
        for arch_id, score in per_arch.items():
            if not isinstance(score, int | float) or isinstance(score, bool):
                raise BenchmarkFormatError(
                    f"{path}: proxy {proxy!r}, arch {arch_id!r}: score must be a number"
                )
        scores[proxy] = {str(k): float(v) for k, v in per_arch.items()}
    return scores


def read_flexibert(path: str | Path) -> list[FlexiBertArch]:
    """The completed architectures of FlexiBERT's BERT_benchmark.json, in file order."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise BenchmarkFormatError(f"{path}:{error.lineno}: not JSON ({error.msg})") from None
    if not isinstance(data, list):
        raise BenchmarkFormatError(f"{path}: expected a list of architecture records")
    return [_flexibert_row(row, f"{path}: record {i}") for i, row in enumerate(data)]


def _flexibert_row(row: Any, where: str) -> FlexiBertArch:
    if not isinstance(row, dict):
        raise BenchmarkFormatError(f"{where}: expected an object")
    scores = _field(row, "scores", dict, where)
    if "glue" not in scores:
        raise BenchmarkFormatError(f"{where}: scores lack 'glue'")
    hparams = _field(row, "hparams", dict, where)
    model = _field(hparams, "model_hparam_overrides", dict, where, "hparams.model_hparam_overrides")
    nas = _field(model, "nas_config", dict, where, "model_hparam_overrides.nas_config")
    layers = _field(nas, "encoder_layers", list, where, "nas_config.encoder_layers")
    hidden = _positive_int(model.get("hidden_size"), "hidden_size", where)
    for number, layer in enumerate(layers):
        _check_flexibert_layer(layer, hidden, f"{where}, encoder layer {number}")
    return FlexiBertArch(
        int(_field(row, "id", int, where)),
        hidden,
        tuple(layers),
        {k: float(v) for k, v in scores.items()},
    )


# FlexiBERT's operations and the parameters each takes (DSC: a convolution kernel size).
FLEXIBERT_OPERATIONS = {"SA": ("SDP", "WMA"), "LT": ("DFT", "DCT"), "DSC": int}
_FLEXIBERT_SIZES = ("num_operation_heads", "feed_forward_dimension", "num_feed_forward")


def _check_flexibert_layer(layer: Any, hidden: int, where: str) -> None:
    if not isinstance(layer, dict):
        raise BenchmarkFormatError(f"{where}: expected an object")
    operation = layer.get("operation_type")
    if operation not in FLEXIBERT_OPERATIONS:
        raise BenchmarkFormatError(
            f"{where}: operation_type must be one of {', '.join(FLEXIBERT_OPERATIONS)}, "
            f"got {operation!r}"
        )
    parameter, allowed = layer.get("operation_parameter"), FLEXIBERT_OPERATIONS[operation]
    if allowed is int:
        _positive_int(parameter, "operation_parameter (kernel size)", where)
    elif parameter not in allowed:
        raise BenchmarkFormatError(
            f"{where}: operation_parameter of {operation} must be {' or '.join(allowed)}, "
            f"got {parameter!r}"
        )
    for key in _FLEXIBERT_SIZES:
        _positive_int(layer.get(key), key, where)
    if hidden % layer["num_operation_heads"]:
        raise BenchmarkFormatError(
            f"{where}: hidden_size {hidden} is not divisible by num_operation_heads"
        )
