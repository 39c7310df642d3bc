"""A small OpenAI-compatible chat-completions server for tests and benchmarks.

It listens on 127.0.0.1 (a free port), answers POST /v1/chat/completions (non-streaming, with
``usage``) with a deterministic BLEU-like score computed from the last architecture in the last
user message, and can be told to misbehave: HTTP errors, slow answers, other text, bodies that
are not chat completions (``RawBody``: an HTML page, broken JSON), a connection closed without an
answer (``DROP``). It counts requests, the most requests in flight at once, and records the
Authorization headers (of every POST it gets, in ``seen``). It also answers as an HTTP proxy
would (``HTTP_PROXY`` set to its ``root_url``), for requests to any host.

    with FakeLLMServer(delay=0.2) as server:
        profile = LLMProfile("test", base_url=server.base_url, model="fake")
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

# Only lines whose value is a number or a list of numbers: definitions also start with HAT keys.
_KEY_LINE = re.compile(r"^([a-z-]+-subtransformer): (-?\d+|\[[-\d, ]*\])$", re.MULTILINE)


@dataclass(frozen=True)
class RawBody:
    """A fault: HTTP 200 with this body and content type instead of a chat completion."""

    content_type: str
    body: str


HTML_PAGE = RawBody(
    "text/html", "<html><head><title>502 Bad Gateway</title></head><body>proxy</body></html>"
)
BROKEN_JSON = RawBody("application/json", '{"id": "chatcmpl-1", "choices": [{"message": ')


class Drop:
    """A fault: the connection is closed without an answer."""


DROP = Drop()


def fake_bleu(config: dict[str, Any]) -> float:
    """A smooth, deterministic stand-in for BLEU: bigger models score higher, with saturation."""
    enc_dim = config.get("encoder-embed-dim-subtransformer", 512)
    dec_dim = config.get("decoder-embed-dim-subtransformer", 512)
    dec_layers = config.get("decoder-layer-num-subtransformer", 1)
    ffn = config.get("encoder-ffn-embed-dim-all-subtransformer", [2048])
    heads = config.get("decoder-ende-attention-heads-all-subtransformer", [4])
    score = (
        20.0
        + 2.0 * (enc_dim / 640)
        + 1.5 * (dec_dim / 640)
        + 0.6 * min(dec_layers, 4)
        + 0.5 * (sum(ffn) / len(ffn) / 3072)
        + 0.1 * (sum(heads) / len(heads))
    )
    return round(score, 2)


def query_config(messages: list[dict[str, str]]) -> dict[str, Any]:
    """HAT keys of the last architecture in the last user message (the query)."""
    user = [m["content"] for m in messages if m.get("role") == "user"]
    text = user[-1] if user else ""
    config: dict[str, Any] = {}
    for key, value in _KEY_LINE.findall(text):
        config[key] = json.loads(value)  # later blocks overwrite earlier ones: the query wins
    return config


class FakeLLMServer:
    """Configure by attributes: ``delay`` (seconds per answer), ``faults`` (a queue of HTTP
    status codes, answer texts, ``RawBody`` or ``DROP`` served before normal answers),
    ``reply`` (a function of the messages returning the answer text; ``reply_in_turn`` scripts
    answers per query)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.faults: deque[int | str | RawBody | Drop] = deque()
        self.reply: Callable[[list[dict[str, str]]], str] = lambda m: (
            f"{fake_bleu(query_config(m))}"
        )
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.authorizations: list[str] = []
        self.bodies: list[dict[str, Any]] = []
        self.seen: list[tuple[str, str]] = []  # (path, Authorization) of every POST
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        # A short poll interval so that stop() returns at once.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    @property
    def root_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeLLMServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset_counts(self) -> None:
        with self._lock:
            self.requests = self.max_in_flight = 0
            self.authorizations.clear()
            self.bodies.clear()
            self.seen.clear()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the openai client expects
            disable_nagle_algorithm = True  # else small replies wait for delayed ACKs (40 ms)

            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    server.seen.append((self.path, self.headers.get("Authorization", "")))
                # A proxied request names the whole URL: its path is what is routed.
                if urlsplit(self.path).path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                with server._lock:
                    server.requests += 1
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    server.authorizations.append(self.headers.get("Authorization", ""))
                    server.bodies.append(body)
                    fault = server.faults.popleft() if server.faults else None
                try:
                    if server.delay:
                        time.sleep(server.delay)
                    if isinstance(fault, int):
                        error = {"message": f"injected {fault}", "type": "test", "code": fault}
                        self._send(fault, {"error": error}, {"Retry-After": "0"})
                        return
                    if isinstance(fault, Drop):
                        self.close_connection = True
                        return
                    if isinstance(fault, RawBody):
                        self._send_bytes(200, fault.body.encode(), fault.content_type)
                        return
                    text = fault if isinstance(fault, str) else server.reply(body["messages"])
                    self._send(200, _completion(body, text))
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _send(
                self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                self._send_bytes(status, json.dumps(payload).encode(), "application/json", headers)

            def _send_bytes(
                self,
                status: int,
                data: bytes,
                content_type: str,
                headers: dict[str, str] | None = None,
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the default 5 refuses connections under a burst of clients


def _completion(body: dict[str, Any], text: str) -> dict[str, Any]:
    prompt_chars = sum(len(m.get("content", "")) for m in body.get("messages", []))
    prompt_tokens, completion_tokens = prompt_chars // 4 + 1, len(text) // 4 + 1
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "fake"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def add_wmt_architectures(project, measured: int = 8, unmeasured: int = 4, seed: int = 0) -> tuple:
    """Sample HAT-WMT architectures into task wmt14ende; the first ``measured`` get a
    ``bleu_valid`` measurement near ``fake_bleu``. Returns (measured ids, unmeasured ids)."""
    import random

    from nasstudio.space import get_space, to_arch_info
    from nasstudio.store import BLEU_VALID, KNOWN_TASKS, Measurement

    task = project.ensure_task(KNOWN_TASKS["wmt14ende"])
    archs = get_space(task.space).sample_many(measured + unmeasured, seed)
    project.add_architectures(task.name, archs, origin="test")
    rng = random.Random(seed)
    project.add_measurements(
        Measurement(
            a.id,
            task.name,
            BLEU_VALID,
            fake_bleu(_config(to_arch_info(a))) + rng.uniform(-0.5, 0.5),
            "test",
        )
        for a in archs[:measured]
    )
    return [a.id for a in archs[:measured]], [a.id for a in archs[measured:]]


def _config(arch_info: list[str]) -> dict[str, Any]:
    return {k: json.loads(v) for k, v in (line.split(": ", 1) for line in arch_info)}


def write_seedarchs(folder, task: str, archs, bleu, splits) -> None:
    """An llmas seedarchs folder: ``splits`` maps a seed to (train, test) indices of ``archs``,
    whose measured ``valid_BLEU`` is ``bleu`` (same index)."""
    from pathlib import Path

    from nasstudio.space import to_arch_info

    for seed, indices in splits.items():
        where = Path(folder) / str(seed) / task
        where.mkdir(parents=True, exist_ok=True)
        for name, chosen in zip(("train.jsonl", "test.jsonl"), indices, strict=True):
            lines = [
                json.dumps(
                    {
                        "scratch": {
                            "arch_info": to_arch_info(archs[i]),
                            "valid_BLEU": bleu[i],
                            "test_BLEU": bleu[i],
                            "overall_latency": 100.0,
                            "total_flops": 3e9,
                        }
                    }
                )
                for i in chosen
            ]
            (where / name).write_text("\n".join(lines) + "\n")


def reply_by_architecture(answers) -> Callable[[list[dict[str, str]]], str]:
    """A ``reply`` that answers each queried architecture (a key of ``answers``) its text."""
    from nasstudio.space import to_arch_info

    by_config = {
        json.dumps(_config(to_arch_info(a)), sort_keys=True): text for a, text in answers.items()
    }
    return lambda messages: by_config[json.dumps(query_config(messages), sort_keys=True)]


def reply_in_turn(*texts: str) -> Callable[[list[dict[str, str]]], str]:
    """A ``reply`` that answers each distinct query ``texts`` in turn, the last one from then on
    (e.g. a chatty answer first, then a number), whatever order concurrent queries come in."""
    asked: dict[str, int] = {}
    lock = threading.Lock()

    def reply(messages: list[dict[str, str]]) -> str:
        query = json.dumps(messages, sort_keys=True)
        with lock:
            turn = asked[query] = asked.get(query, -1) + 1
        return texts[min(turn, len(texts) - 1)]

    return reply
