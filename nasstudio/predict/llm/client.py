"""Talking to an OpenAI-compatible chat-completions endpoint: profiles, keys, retries, cost.

Keys: a profile names the environment variable that holds its API key (``api_key_env``); the
key is read from there, or from the system keyring when the optional ``keyring`` package is
installed. It is never stored in a profile, the project, the cache or a log line. A key is sent
only to api.openai.com, or to another base URL whose profile sets ``send_key_to_custom_url``;
otherwise the client sends a placeholder (the openai client insists on some key).

Retries are done here rather than by the openai client (whose own retries are off) so that each
one is logged and counted: 408, 409, 429, 5xx, timeouts and connection errors are retried with
exponential backoff (honouring Retry-After) up to the profile's ``max_retries``.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from contextlib import suppress
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import openai
import platformdirs

from nasstudio.predict.llm.cache import CachedAnswer, ResponseCache, cache_key

OPENAI_BASE_URL = "https://api.openai.com/v1"
OPENAI_HOST = "api.openai.com"
PLACEHOLDER_KEY = "not-needed"
KEYRING_SERVICE = "nasstudio"
_RETRY_STATUS = {408, 409, 429}


class ProfileError(ValueError):
    """A profile that cannot be used: names the profile (and file) and the field at fault."""


class LLMRequestError(RuntimeError):
    """A request that failed for good (not retryable, or out of retries)."""

    def __init__(self, message: str, attempts: int, status: int | None = None) -> None:
        super().__init__(message)
        self.attempts, self.status = attempts, status


@dataclass(frozen=True, slots=True)
class LLMProfile:
    """One endpoint and model with its sampling, limits and prices. Holds no key."""

    name: str
    base_url: str = OPENAI_BASE_URL
    model: str = "gpt-4o-mini"
    temperature: float = 0.0
    max_tokens: int = 16
    timeout: float = 60.0
    concurrency: int = 4
    max_retries: int = 3
    price_input_per_1k: float = 0.0  # currency units per 1,000 input (prompt) tokens
    price_output_per_1k: float = 0.0
    api_key_env: str = "OPENAI_API_KEY"
    send_key_to_custom_url: bool = False

    def __post_init__(self) -> None:
        def bad(field: str, expected: str) -> ProfileError:
            value = getattr(self, field)
            return ProfileError(f"profile '{self.name}': {field} must be {expected}, got {value!r}")

        if not self.name.strip():
            raise ProfileError("a profile needs a name")
        if urlparse(self.base_url).scheme not in ("http", "https"):
            raise bad("base_url", "an http(s) URL")
        if not self.model.strip():
            raise bad("model", "a model name")
        checks = (
            ("temperature", 0 <= self.temperature <= 2, "between 0 and 2"),
            ("max_tokens", self.max_tokens >= 1, "1 or more"),
            ("timeout", self.timeout > 0, "positive (seconds)"),
            ("concurrency", self.concurrency >= 1, "1 or more"),
            ("max_retries", self.max_retries >= 0, "0 or more"),
            ("price_input_per_1k", self.price_input_per_1k >= 0, "0 or more"),
            ("price_output_per_1k", self.price_output_per_1k >= 0, "0 or more"),
        )
        for field, ok, expected in checks:
            if not ok:
                raise bad(field, expected)
        if not self.api_key_env.strip():
            raise bad("api_key_env", "the name of an environment variable")

    @property
    def is_openai(self) -> bool:
        return urlparse(self.base_url).hostname == OPENAI_HOST

    @property
    def predictor_name(self) -> str:
        """How predictions made with this profile are named in the store."""
        return f"{self.model}@{self.name}"

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (
            input_tokens * self.price_input_per_1k + output_tokens * self.price_output_per_1k
        ) / 1000

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str = "profile") -> LLMProfile:
        if not isinstance(data, dict):
            raise ProfileError(f"{where}: expected an object, got {data!r}")
        known = {f.name for f in fields(cls)}
        for key in data:
            if "key" in key.lower() and key != "api_key_env" and key not in known:
                raise ProfileError(
                    f"{where}: '{key}' looks like an API key; profiles never hold keys: "
                    "put the key in the environment variable named by api_key_env"
                )
            if key not in known:
                raise ProfileError(f"{where}: unknown field '{key}'; known are {sorted(known)}")
        if "name" not in data:
            raise ProfileError(f"{where}: missing field 'name'")
        try:
            return cls(**data)
        except TypeError as exc:
            raise ProfileError(f"{where}: {exc}") from None


DEFAULT_PROFILES = (
    LLMProfile("openai"),
    LLMProfile(
        "local",
        base_url="http://127.0.0.1:8080/v1",
        model="local",
        concurrency=1,
        api_key_env="NASSTUDIO_LOCAL_LLM_KEY",
    ),
)


def default_profiles_path() -> Path:
    return Path(platformdirs.user_config_dir("nasstudio", appauthor=False)) / "llm_profiles.json"


class ProfileStore:
    """Profiles kept as JSON (``{"profiles": [...]}``); the built-in ones when there is none."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_profiles_path()

    def load(self) -> dict[str, LLMProfile]:
        profiles = {p.name: p for p in DEFAULT_PROFILES}
        if not self.path.exists():
            return profiles
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ProfileError(f"{self.path}: cannot read the profiles: {exc}") from None
        items = data.get("profiles") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise ProfileError(f'{self.path}: expected {{"profiles": [...]}}')
        for i, item in enumerate(items):
            profile = LLMProfile.from_json(item, f"{self.path}: profiles[{i}]")
            profiles[profile.name] = profile
        return profiles

    def get(self, name: str) -> LLMProfile:
        profiles = self.load()
        if name not in profiles:
            raise ProfileError(f"no LLM profile '{name}' in {self.path}; known: {sorted(profiles)}")
        return profiles[name]

    def save(self, profile: LLMProfile) -> None:
        """Add or replace ``profile`` (written atomically)."""
        profiles = self.load()
        profiles[profile.name] = profile
        self._write(profiles)

    def delete(self, name: str) -> None:
        profiles = self.load()
        profiles.pop(name, None)
        self._write(profiles)

    def _write(self, profiles: dict[str, LLMProfile]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"profiles": [p.to_json() for p in profiles.values()]}, indent=2)
        scratch = self.path.with_suffix(".tmp")
        scratch.write_text(text + "\n", encoding="utf-8")
        scratch.replace(self.path)


# --- keys ---------------------------------------------------------------------------------------


def resolve_api_key(profile: LLMProfile) -> str | None:
    """The key from the environment variable ``profile.api_key_env``, else the keyring."""
    key = os.environ.get(profile.api_key_env)
    if key:
        return key
    try:
        import keyring
    except ImportError:
        return None
    try:
        return keyring.get_password(KEYRING_SERVICE, profile.api_key_env)
    except Exception:  # keyring backends raise their own types, e.g. with no Secret Service
        return None


def save_api_key(profile: LLMProfile, key: str) -> None:
    """Keep ``key`` in the system keyring under the profile's ``api_key_env`` name."""
    try:
        import keyring
    except ImportError:
        raise ProfileError(
            f"the keyring package is not installed: set the environment variable "
            f"{profile.api_key_env} instead"
        ) from None
    keyring.set_password(KEYRING_SERVICE, profile.api_key_env, key)


def request_api_key(profile: LLMProfile) -> str:
    """The key to send: the real one only to OpenAI or where the profile allows it."""
    if not (profile.is_openai or profile.send_key_to_custom_url):
        return PLACEHOLDER_KEY
    key = resolve_api_key(profile)
    if key:
        return key
    if profile.is_openai:
        raise ProfileError(
            f"profile '{profile.name}': no API key; set the environment variable "
            f"{profile.api_key_env}"
        )
    return PLACEHOLDER_KEY


# --- the client ---------------------------------------------------------------------------------


@dataclass
class Usage:
    """What a client (or a job) spent. ``requests`` counts HTTP attempts, retries included."""

    requests: int = 0
    cache_hits: int = 0
    retries: int = 0
    failures: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0


@dataclass(frozen=True, slots=True)
class Completion:
    """One answer. ``cost`` is what this call cost (0 when served from the cache)."""

    text: str
    input_tokens: int
    output_tokens: int
    cost: float
    cached: bool
    attempts: int


class LLMClient:
    """``async with LLMClient(profile) as client: await client.complete(messages)``.

    At most ``profile.concurrency`` requests are in flight at once; answers go through the
    cache when one is given. ``log`` receives one line per retry and failure.
    """

    def __init__(
        self,
        profile: LLMProfile,
        cache: ResponseCache | None = None,
        log: Callable[[str], None] | None = None,
        retry_base_delay: float = 1.0,
        retry_max_delay: float = 30.0,
    ) -> None:
        self.profile = profile
        self.cache = cache
        self.usage = Usage()
        self._log = log or (lambda line: None)
        self._base_delay, self._max_delay = retry_base_delay, retry_max_delay
        self._key = request_api_key(profile)
        self._openai: openai.AsyncOpenAI | None = None
        self._semaphore: asyncio.Semaphore | None = None

    async def __aenter__(self) -> LLMClient:
        # Created here, inside the running loop, so the connection pool belongs to that loop.
        self._openai = openai.AsyncOpenAI(
            api_key=self._key,
            base_url=self.profile.base_url,
            timeout=self.profile.timeout,
            max_retries=0,
        )
        self._semaphore = asyncio.Semaphore(self.profile.concurrency)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._openai is not None:
            await self._openai.close()
            self._openai = None

    async def complete(self, messages: list[dict[str, str]], sample: int = 0) -> Completion:
        """The answer to ``messages`` (sample ``sample`` of it), from the cache if it is there."""
        if self._openai is None or self._semaphore is None:
            raise RuntimeError("use the client inside 'async with LLMClient(...)'")
        p = self.profile
        key = cache_key(p.base_url, p.model, messages, p.temperature, p.max_tokens, sample)
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            self.usage.cache_hits += 1
            return Completion(hit.text, hit.input_tokens, hit.output_tokens, 0.0, True, 0)
        response, attempts = await self._send(messages)
        if not response.choices:
            self.usage.failures += 1
            raise LLMRequestError(f"{self._where()}: the answer has no choices", attempts)
        text = response.choices[0].message.content or ""
        usage = response.usage
        input_tokens = usage.prompt_tokens if usage else 0
        output_tokens = usage.completion_tokens if usage else 0
        cost = p.cost(input_tokens, output_tokens)
        self.usage.input_tokens += input_tokens
        self.usage.output_tokens += output_tokens
        self.usage.cost += cost
        if self.cache is not None:
            self.cache.put(
                key, p.base_url, p.model, CachedAnswer(text, input_tokens, output_tokens)
            )
        return Completion(text, input_tokens, output_tokens, cost, False, attempts)

    async def _send(self, messages: list[dict[str, str]]) -> tuple[Any, int]:
        p = self.profile
        attempt = 0
        while True:
            attempt += 1
            async with self._semaphore:
                self.usage.requests += 1
                try:
                    response = await self._openai.chat.completions.create(
                        model=p.model,
                        messages=messages,
                        temperature=p.temperature,
                        max_tokens=p.max_tokens,
                    )
                    return response, attempt
                except (openai.APIStatusError, openai.APIConnectionError) as exc:
                    error = exc
            status = getattr(error, "status_code", None)
            retryable = status is None or status in _RETRY_STATUS or status >= 500
            if not retryable or attempt > p.max_retries:
                self.usage.failures += 1
                why = "not retryable" if not retryable else f"gave up after {attempt} attempts"
                message = f"{self._where()}: {why}: {self._describe(error)}"
                self._log(message)
                raise LLMRequestError(message, attempt, status) from None
            delay = self._delay(attempt, error)
            self.usage.retries += 1
            self._log(
                f"{self._where()}: {self._describe(error)}; retry {attempt}/{p.max_retries} "
                f"in {delay:.2f} s"
            )
            await asyncio.sleep(delay)

    def _delay(self, attempt: int, error: Exception) -> float:
        delay = self._base_delay * 2 ** (attempt - 1)
        response = getattr(error, "response", None)
        retry_after = response.headers.get("retry-after") if response is not None else None
        with suppress(ValueError):  # Retry-After may be an HTTP date: then keep the backoff
            delay = max(delay, float(retry_after or 0))
        return min(delay, self._max_delay)

    def _where(self) -> str:
        return f"{self.profile.base_url} ({self.profile.model})"

    def _describe(self, error: Exception) -> str:
        status = getattr(error, "status_code", None)
        text = f"HTTP {status}: {error}" if status else f"{type(error).__name__}: {error}"
        if self._key != PLACEHOLDER_KEY:  # servers may echo the key in an error message
            text = text.replace(self._key, "[API key]")
        return text[:500]
