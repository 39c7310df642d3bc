"""Talking to an OpenAI-compatible chat-completions endpoint: profiles, keys, retries, cost.

Keys: a profile names the environment variable that holds its API key (``api_key_env``); the
key is read from there, or from the system keyring when the optional ``keyring`` package is
installed. It is never stored in a profile, the project, the cache or a log line. A key is sent
only to api.openai.com, or to another base URL whose profile sets ``send_key_to_custom_url``;
otherwise the client sends a placeholder (the openai client insists on some key). A key never
travels in clear text: it goes over plain http only to this machine (a local llama.cpp or vLLM
server); anywhere else the client refuses to start (``key_refusal``).

Decoding presets: a profile's ``decoding`` says how a request is sent and its answer read.
"project" (the default) sends the profile's temperature and max_tokens and reads the BLEU
anywhere in the answer; "llmas" follows llmas's gpt_scorer.py: max_tokens 25, no temperature
(the endpoint's default), and only an answer whose first word is a number counts, else the same
request is asked again (the asking is done by the prediction job, ``predict_stream``).

Retries are done here rather than by the openai client (whose own retries are off) so that each
one is logged and counted: 408, 409, 429, 5xx, timeouts, connection errors and an HTTP 200 whose
body is not a chat completion (a proxy's HTML page, broken JSON) are retried with exponential
backoff (honouring Retry-After) up to the profile's ``max_retries``. When several requests in a
row cannot connect at all, the endpoint is taken to be down: every request then fails at once
with ``EndpointUnreachable`` instead of trying again.
"""

from __future__ import annotations

import asyncio
import ipaddress
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
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}
# Requests in a row (each after its retries) that could not connect before the endpoint is
# taken to be down.
UNREACHABLE_AFTER = 5
# The most of an unreadable answer or body kept (in the job log): enough for any real answer,
# bounded against a proxy that sends megabytes.
KEPT_ANSWER_CHARS = 64 * 1024

PROJECT_DECODING = "project"
LLMAS_DECODING = "llmas"
LLMAS_MAX_TOKENS = 25  # gpt_scorer.py's ChatCompletion.create(..., max_tokens=25)
# llmas asks again until an answer starts with a number, without end: the bound stops a model
# that never answers with a number from being asked for ever (each ask is a paid request).
LLMAS_MAX_ASKS = 5
# What each preset does, in words (CLI help, the settings dialog's tooltip).
DECODINGS = {
    PROJECT_DECODING: "the profile's temperature and max tokens; the BLEU is read anywhere in "
    "the answer (a labelled number first; never a list marker or a number copied from the "
    "architecture); each answer is asked once",
    LLMAS_DECODING: f"llmas's gpt_scorer.py: max tokens {LLMAS_MAX_TOKENS} and the endpoint's "
    "default temperature (none is sent); the answer's first word must be a number, else the "
    f"same request is asked again, at most {LLMAS_MAX_ASKS} times in all",
}


class ProfileError(ValueError):
    """A profile that cannot be used: names the profile (and file) and the field at fault."""


class LLMRequestError(RuntimeError):
    """A request that failed for good (not retryable, or out of retries)."""

    def __init__(
        self, message: str, attempts: int, status: int | None = None, body: str = ""
    ) -> None:
        super().__init__(message)
        self.attempts, self.status = attempts, status
        self.body = body  # an unreadable body, bounded (``kept_text``); '' for other failures


class EndpointUnreachable(RuntimeError):
    """Several requests in a row could not connect: the endpoint is down, and every request
    of the client fails at once from now on (a job stops rather than trying each query)."""


class UnreadableBody(ValueError):
    """An HTTP 200 whose body is not a chat completion."""

    def __init__(self, message: str, body: str) -> None:
        super().__init__(message)
        self.body = body


def kept_text(text: str, limit: int = KEPT_ANSWER_CHARS) -> str:
    """``text`` whole up to ``limit`` characters, else cut there with a note of its length."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [cut at {limit:,} of {len(text):,} characters]"


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
    decoding: str = PROJECT_DECODING  # a key of DECODINGS

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
        if self.decoding not in DECODINGS:
            raise bad("decoding", " or ".join(map(repr, DECODINGS)))

    @property
    def sent_temperature(self) -> float | None:
        """The temperature a request carries; None: none is sent (the endpoint's default)."""
        return None if self.decoding == LLMAS_DECODING else self.temperature

    @property
    def sent_max_tokens(self) -> int:
        return LLMAS_MAX_TOKENS if self.decoding == LLMAS_DECODING else self.max_tokens

    @property
    def max_asks(self) -> int:
        """How many times one answer may be asked for while the answer rule rejects it."""
        return LLMAS_MAX_ASKS if self.decoding == LLMAS_DECODING else 1

    @property
    def is_openai(self) -> bool:
        return urlparse(self.base_url).hostname == OPENAI_HOST

    @property
    def predictor_name(self) -> str:
        """How predictions made with this profile are named in the store: ``model@profile``,
        and ``model@profile+llmas`` with the llmas preset, so that its predictions and
        evaluations stand beside the project preset's instead of replacing them."""
        preset = "" if self.decoding == PROJECT_DECODING else f"+{self.decoding}"
        return f"{self.model}@{self.name}{preset}"

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


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` is this machine (a name that means it, or a loopback address)."""
    if not host:
        return False
    if host.lower() in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def key_refusal(profile: LLMProfile) -> str | None:
    """Why the profile's key must not be sent to its base URL (None: it may be): a key goes
    over https, or over plain http to this machine only. The one rule of the client and of
    every place that says whether a key is sent."""
    url = urlparse(profile.base_url)
    if url.scheme == "https" or is_loopback(url.hostname):
        return None
    return (
        f"profile '{profile.name}': the API key would travel in clear text to "
        f"{profile.base_url}; use an https:// base URL (a key goes over plain http only to "
        "this machine: localhost, 127.0.0.1, ::1)"
    )


def request_api_key(profile: LLMProfile) -> str:
    """The key to send: the real one only to OpenAI or where the profile allows it, and only
    over https or to this machine (else ``ProfileError``, before any connection)."""
    if not (profile.is_openai or profile.send_key_to_custom_url):
        return PLACEHOLDER_KEY
    key = resolve_api_key(profile)
    if not key:
        if profile.is_openai:
            raise ProfileError(
                f"profile '{profile.name}': no API key; set the environment variable "
                f"{profile.api_key_env}"
            )
        return PLACEHOLDER_KEY
    if (refusal := key_refusal(profile)) is not None:
        raise ProfileError(refusal)
    return key


# --- the client ---------------------------------------------------------------------------------


@dataclass
class Usage:
    """What a client (or a job) spent. ``requests`` counts HTTP attempts, retries included;
    ``asked_again`` the answers the answer rule rejected at first (the same request was sent
    again), ``gave_up`` those it still rejected after the last ask."""

    requests: int = 0
    cache_hits: int = 0
    retries: int = 0
    failures: int = 0
    asked_again: int = 0
    gave_up: int = 0
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
    cache when one is given. ``log`` receives one line per retry, and one when the endpoint is
    taken to be down; a request that fails for good raises ``LLMRequestError`` (its caller
    reports it).
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
        self._connect_failures = 0  # requests in a row that could not connect
        self._unreachable: str | None = None  # why the endpoint is taken to be down

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

    async def complete(
        self, messages: list[dict[str, str]], sample: int = 0, again: bool = False
    ) -> Completion:
        """The answer to ``messages`` (sample ``sample`` of it), from the cache if it is there;
        ``again``: a new answer from the endpoint, which then replaces the cached one."""
        if self._openai is None or self._semaphore is None:
            raise RuntimeError("use the client inside 'async with LLMClient(...)'")
        p = self.profile
        key = cache_key(
            p.base_url, p.model, messages, p.sent_temperature, p.sent_max_tokens, sample
        )
        if not again and self.cache is not None and (hit := self.cache.get(key)) is not None:
            self.usage.cache_hits += 1
            return Completion(hit.text, hit.input_tokens, hit.output_tokens, 0.0, True, 0)
        (text, input_tokens, output_tokens), attempts = await self._send(messages)
        cost = p.cost(input_tokens, output_tokens)
        self.usage.input_tokens += input_tokens
        self.usage.output_tokens += output_tokens
        self.usage.cost += cost
        if self.cache is not None:
            self.cache.put(
                key, p.base_url, p.model, CachedAnswer(text, input_tokens, output_tokens)
            )
        return Completion(text, input_tokens, output_tokens, cost, False, attempts)

    async def _send(self, messages: list[dict[str, str]]) -> tuple[tuple[str, int, int], int]:
        """(answer text, input tokens, output tokens) and the attempts it took."""
        p = self.profile
        attempt = 0
        while True:
            attempt += 1
            async with self._semaphore:
                if self._unreachable is not None:
                    raise EndpointUnreachable(self._unreachable)
                self.usage.requests += 1
                try:
                    raw = await self._openai.chat.completions.with_raw_response.create(
                        model=p.model,
                        messages=messages,
                        max_tokens=p.sent_max_tokens,
                        **_sampling(p),
                    )
                    self._connect_failures = 0
                    return read_completion(raw.http_response), attempt
                except (openai.APIStatusError, openai.APIConnectionError, UnreadableBody) as exc:
                    error = exc
            status = getattr(error, "status_code", None)
            retryable = status is None or status in _RETRY_STATUS or status >= 500
            connected = not _failed_to_connect(error)
            if connected:
                self._connect_failures = 0
            if not retryable or attempt > p.max_retries:
                self.usage.failures += 1
                why = "not retryable" if not retryable else f"gave up after {_attempts(attempt)}"
                message = f"{self._where()}: {why}: {self._describe(error)}"
                if not connected:
                    self._note_connect_failure(error)
                body = error.body if isinstance(error, UnreadableBody) else ""
                raise LLMRequestError(message, attempt, status, body) from None
            delay = self._delay(attempt, error)
            self.usage.retries += 1
            self._log(
                f"{self._where()}: {self._describe(error)}; retry {attempt}/{p.max_retries} "
                f"in {delay:.2f} s"
            )
            await asyncio.sleep(delay)

    def _note_connect_failure(self, error: Exception) -> None:
        """Count a request that could not connect; enough in a row take the endpoint down."""
        self._connect_failures += 1
        if self._connect_failures < UNREACHABLE_AFTER or self._unreachable is not None:
            return
        self._unreachable = (
            f"cannot reach {self.profile.base_url}: {_root_cause(error)}; is the server running? "
            f"({self._connect_failures} requests in a row could not connect)"
        )
        self._log(self._unreachable)
        raise EndpointUnreachable(self._unreachable)

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
        if status:
            text = f"HTTP {status}: {error}"
        elif isinstance(error, UnreadableBody):
            text = str(error)
        else:  # the cause says more than "Connection error.": refused, timed out…
            cause = f" ({_root_cause(error)})" if error.__cause__ else ""
            text = f"{type(error).__name__}: {error}{cause}"
        if self._key != PLACEHOLDER_KEY:  # servers may echo the key in an error message
            text = text.replace(self._key, "[API key]")
        return text[:500]


def _sampling(profile: LLMProfile) -> dict[str, float]:
    """The request's sampling fields: none at all for the endpoint's default temperature."""
    temperature = profile.sent_temperature
    return {} if temperature is None else {"temperature": temperature}


def _attempts(count: int) -> str:
    return "1 attempt" if count == 1 else f"{count} attempts"


def _failed_to_connect(error: Exception) -> bool:
    """No connection at all (refused, reset, no route, DNS, connect timeout), as opposed to a
    server that answered, or that was too slow to answer."""
    if not isinstance(error, openai.APIConnectionError):
        return False
    if isinstance(error, openai.APITimeoutError):
        return "Connect" in type(error.__cause__).__name__  # ConnectTimeout, not ReadTimeout
    return True


def _root_cause(error: BaseException) -> str:
    """What the socket said, at the bottom of the chain ("Connection refused")."""
    while (inner := error.__cause__ or error.__context__) is not None:
        error = inner
    if isinstance(error, OSError) and error.errno and error.errno > 0:
        return os.strerror(error.errno)
    return str(error) or type(error).__name__


def read_completion(response: Any) -> tuple[str, int, int]:
    """(text, input tokens, output tokens) of an HTTP 200 ``response``; ``UnreadableBody``
    when its body is not a chat completion (a null content is an empty answer)."""
    body = response.text
    try:
        data = json.loads(body)
        text = data["choices"][0]["message"].get("content") or ""
        if not isinstance(text, str):
            raise TypeError(f"content is {type(text).__name__}")
    except (ValueError, LookupError, TypeError, AttributeError, RecursionError):
        kind = response.headers.get("content-type", "no content type")
        excerpt = " ".join(body[:200].split())
        raise UnreadableBody(
            f"HTTP 200 with a body that is not a chat completion ({kind}, {len(body):,} "
            f"characters): {excerpt!r}",
            kept_text(body),
        ) from None
    usage = data.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    return text, _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))


def _count(value: Any) -> int:
    """A token count as the server gave it; 0 when it gave none that makes sense."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
