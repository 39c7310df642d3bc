"""Round trip between Architecture and HAT's SubTransformer keys (YAML files, arch_info lines)."""

from __future__ import annotations

import json
from typing import Any

import yaml

from nasstudio.space.architecture import HAT_QKV_DIM, Architecture, ArchitectureError

# HAT key -> Architecture field, in the order HAT's configs list them.
HAT_LIST_KEYS = {
    "encoder-ffn-embed-dim-all-subtransformer": "encoder_ffn_dims",
    "encoder-self-attention-heads-all-subtransformer": "encoder_heads",
    "decoder-ffn-embed-dim-all-subtransformer": "decoder_ffn_dims",
    "decoder-self-attention-heads-all-subtransformer": "decoder_heads",
    "decoder-ende-attention-heads-all-subtransformer": "decoder_cross_heads",
    "decoder-arbitrary-ende-attn-all-subtransformer": "decoder_arbitrary_attn",
}
HAT_KEY_ORDER = (
    "encoder-embed-dim-subtransformer",
    "encoder-layer-num-subtransformer",
    "encoder-ffn-embed-dim-all-subtransformer",
    "encoder-self-attention-heads-all-subtransformer",
    "decoder-embed-dim-subtransformer",
    "decoder-layer-num-subtransformer",
    "decoder-ffn-embed-dim-all-subtransformer",
    "decoder-self-attention-heads-all-subtransformer",
    "decoder-ende-attention-heads-all-subtransformer",
    "decoder-arbitrary-ende-attn-all-subtransformer",
)
QKV_KEY = "qkv-dim"
# HAT's own configs always carry six entries per list; its code reads the first layer-num.
HAT_LIST_LENGTH = 6


class HatConfigError(ValueError):
    """A HAT SubTransformer config that cannot be read; ``key`` names the offending key."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


def to_hat_config(arch: Architecture, pad_to: int = 0) -> dict[str, Any]:
    """HAT keys in HAT's order; lists padded with their last value to ``pad_to`` entries."""
    config: dict[str, Any] = {}
    for key in HAT_KEY_ORDER:
        if key in HAT_LIST_KEYS:
            values = list(getattr(arch, HAT_LIST_KEYS[key]))
            config[key] = values + values[-1:] * max(0, pad_to - len(values))
        elif key.startswith("encoder-embed"):
            config[key] = arch.encoder_embed_dim
        elif key.startswith("decoder-embed"):
            config[key] = arch.decoder_embed_dim
        elif key.startswith("encoder-layer"):
            config[key] = arch.encoder_layers
        else:
            config[key] = arch.decoder_layers
    if arch.qkv_dim != HAT_QKV_DIM:
        config[QKV_KEY] = arch.qkv_dim
    return config


def from_hat_config(config: dict[str, Any]) -> Architecture:
    """Architecture from HAT keys; longer lists are cut to the layer count as HAT does.

    Keys that are not SubTransformer keys (training settings in a HAT YAML) are ignored.
    """
    missing = [key for key in HAT_KEY_ORDER if key not in config]
    if missing:
        raise HatConfigError(f"missing key {missing[0]!r}", missing[0])
    enc_layers = _int(config, "encoder-layer-num-subtransformer")
    dec_layers = _int(config, "decoder-layer-num-subtransformer")
    fields: dict[str, Any] = {
        "encoder_embed_dim": _int(config, "encoder-embed-dim-subtransformer"),
        "decoder_embed_dim": _int(config, "decoder-embed-dim-subtransformer"),
        "qkv_dim": _int(config, QKV_KEY) if QKV_KEY in config else HAT_QKV_DIM,
    }
    for key, name in HAT_LIST_KEYS.items():
        depth = enc_layers if key.startswith("encoder") else dec_layers
        values = config[key]
        if not isinstance(values, list) or not all(type(v) is int for v in values):
            raise HatConfigError(f"{key!r} must be a list of integers, got {values!r}", key)
        if len(values) < depth:
            raise HatConfigError(
                f"{key!r} has {len(values)} entries, the layer count is {depth}", key
            )
        fields[name] = values[:depth]
    try:
        return Architecture(**fields)
    except ArchitectureError as exc:
        raise HatConfigError(str(exc)) from None


def parse_arch_info(lines: list[str]) -> Architecture:
    """Architecture from llmas ``arch_info`` lines (``'encoder-layer-num-subtransformer: 6'``)."""
    try:  # fast path: the lines are JSON once joined into one object
        config = json.loads(
            "{" + ",".join('"{}":{}'.format(*ln.split(": ", 1)) for ln in lines) + "}"
        )
    except (json.JSONDecodeError, IndexError, AttributeError, TypeError):
        config = _parse_arch_info_lines(lines)
    return from_hat_config(config)


def _parse_arch_info_lines(lines: list[str]) -> dict[str, Any]:
    """Line by line, so that an error names the line at fault."""
    config: dict[str, Any] = {}
    for line in lines:
        if not isinstance(line, str):
            raise HatConfigError(f"expected a 'key: value' string, got {line!r}")
        key, sep, value = line.partition(":")
        if not sep:
            raise HatConfigError(f"expected 'key: value', got {line!r}")
        try:
            config[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            raise HatConfigError(
                f"cannot read the value of {key.strip()!r}: {value.strip()!r}", key.strip()
            ) from None
    return config


def to_arch_info(arch: Architecture) -> list[str]:
    return [f"{key}: {json.dumps(value)}" for key, value in to_hat_config(arch).items()]


def to_yaml(arch: Architecture) -> str:
    config = to_hat_config(arch, pad_to=HAT_LIST_LENGTH)
    return "".join(f"{key}: {json.dumps(value)}\n" for key, value in config.items())


def from_yaml(text: str) -> Architecture:
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise HatConfigError(f"not valid YAML: {exc}") from None
    if not isinstance(config, dict):
        raise HatConfigError("expected a mapping of HAT SubTransformer keys")
    return from_hat_config(config)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int(config: dict[str, Any], key: str) -> int:
    value = config[key]
    if not _is_int(value):
        raise HatConfigError(f"{key!r} must be an integer, got {value!r}", key)
    return value
