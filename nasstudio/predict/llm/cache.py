"""A SQLite cache of LLM answers, so that asking the same question again sends no request.

An answer is keyed by endpoint, model, the rendered messages, temperature, max_tokens and the
sample index (samples of one question are separate entries). Only successful answers are kept;
the API key is never part of a key or a row.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import platformdirs

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    base_url TEXT NOT NULL,
    model TEXT NOT NULL,
    text TEXT NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    created_at REAL NOT NULL
)
"""


def default_cache_path() -> Path:
    return Path(platformdirs.user_cache_dir("nasstudio", appauthor=False)) / "llm_cache.sqlite"


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    text: str
    input_tokens: int
    output_tokens: int


def cache_key(
    base_url: str,
    model: str,
    messages: list[dict[str, str]],
    temperature: float | None,  # None: none sent (the endpoint's default)
    max_tokens: int,
    sample: int,
) -> str:
    payload = [base_url.rstrip("/"), model, messages, temperature, max_tokens, sample]
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class ResponseCache:
    """Thread-safe; one connection guarded by a lock (lookups are sub-millisecond)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        # A cache: losing the last answers to a power cut costs a request again, and no commit
        # waits for the disk on the event loop that asks.
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(_SCHEMA)

    def get(self, key: str) -> CachedAnswer | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT text, input_tokens, output_tokens FROM answers WHERE key = ?", (key,)
            ).fetchone()
        return CachedAnswer(*row) if row else None

    def put(self, key: str, base_url: str, model: str, answer: CachedAnswer) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    base_url,
                    model,
                    answer.text,
                    answer.input_tokens,
                    answer.output_tokens,
                    time.time(),
                ),
            )

    def clear(self) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM answers")

    def close(self) -> None:
        with self._lock:
            self._conn.close()
