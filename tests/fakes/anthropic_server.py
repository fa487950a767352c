"""A fake Anthropic Messages API server for tests (standard library only).

It is a real HTTP server on 127.0.0.1 with an OS-assigned port, so the official
``anthropic`` SDK can be pointed at it unchanged::

    with FakeAnthropicServer(latency=0.05) as server:
        server.enqueue(Reply.rate_limited(retry_after=0.1), Reply.json_object({"ok": True}))
        client = anthropic.Anthropic(base_url=server.url, api_key="sk-test-x")
        msg = client.messages.create(model="m", max_tokens=100, messages=[...])

Supported: ``POST /v1/messages`` (non-streaming), ``POST /v1/messages/count_tokens``, ``GET
/v1/models`` (``MODELS``, one page; what a run's first-call check asks) and the
Message Batches endpoints under ``/v1/messages/batches`` (see ``batch_endpoints.py``; script
them through ``server.batches``: processing delay, per-item errored/expired, creation count).
Every other path answers 404 with an Anthropic-style error body; ``stream=true``
answers 400. Replies come from the FIFO queue (:meth:`FakeAnthropicServer.enqueue`),
then from ``responder(request_body)``, then default to ``Reply.json_object({})``.

Usage accounting is approximate (about 4 characters per token). Prompt caching follows
the real API's rules: a request carrying a ``cache_control`` marker whose tools + system
prefix reaches the model's minimum cacheable length (``min_cacheable``: 2,048 tokens for
claude-sonnet-4-6, 4,096 for Haiku 4.5 and Opus 4.5/4.6, ...; ``DEFAULT_MIN_CACHEABLE`` for
a model not listed) reports that prefix as ``cache_creation_input_tokens`` until a response
for the same prefix has been sent, and as ``cache_read_input_tokens`` afterwards; like the
real API, requests that arrive while the first one is still in flight also pay for cache
creation. A marked prefix below the minimum is neither written nor read: the request
succeeds and the prefix is billed as ordinary input. ``min_cacheable=0`` caches any marked
prefix (the old behaviour of this fake, which the real API never had).

Rate limits (``rate_limit``, see ``rate_limit.py``) work like the real API's: token buckets of a
minute's worth of requests (and, when set, input and output tokens) refilled continuously; a
``/v1/messages`` request they cannot take gets a 429 ``rate_limit_error`` with a whole-second
``retry-after``, and every ``/v1/messages`` answer carries ``anthropic-ratelimit-<kind>-limit /
-remaining / -reset`` (an RFC 3339 time) for each limit set, plus ``anthropic-ratelimit-tokens-*``
(the tighter token limit) when a token limit is set. Requests and input are as admission left
them, output as the answer is sent. The default is a key of 1,000,000 requests a minute, which
no test reaches; ``rate_limit=None`` sends no rate-limit headers at all (like a local server).
``server.refused`` holds the arrival time of every request a limit refused.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .batch_endpoints import FakeBatches
from .rate_limit import ApiLimiter, Quota, RateLimit

__all__ = [
    "DEFAULT_MIN_CACHEABLE",
    "MIN_CACHEABLE",
    "SPEND_LIMIT_MESSAGE",
    "UNLIMITED_KEY",
    "FakeAnthropicServer",
    "RateLimit",
    "Reply",
    "estimate_tokens",
]

#: The API's minimum cacheable prefix by model family (tokens), as published and observed in
#: November 2026; kept apart from the provider's own table on purpose: this is the "API".
MIN_CACHEABLE: dict[str, int] = {
    "claude-opus-5": 512,
    "claude-fable-5": 512,
    "claude-mythos-5": 512,
    "claude-opus-4-7": 4096,
    "claude-opus-4-6": 4096,
    "claude-opus-4-5": 4096,
    "claude-haiku-4-5": 4096,
    "claude-sonnet-4-6": 2048,
    "claude-3-5-haiku": 2048,
    "claude-3-haiku": 2048,
}
DEFAULT_MIN_CACHEABLE = 1024
#: The fake's default key: rate-limit headers on every answer, a limit no test reaches.
UNLIMITED_KEY = RateLimit(rpm=1_000_000)

RATE_LIMIT_MESSAGE = "Number of request tokens has exceeded your per-minute rate limit (fake)."
SPEND_LIMIT_MESSAGE = (
    "You have reached your specified API usage limits. "
    "You will regain access on 2099-01-01 at 00:00 UTC."
)


def estimate_tokens(value: Any) -> int:
    """Rough token count of a string or JSON-able value (~4 chars/token; 0 when empty)."""
    if value in (None, "", [], {}):
        return 0
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return max(1, len(text) // 4)


def _new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


def _error_body(err_type: str, message: str, error_code: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"type": err_type, "message": message}
    if error_code is not None:
        error["details"] = {"error_code": error_code}
    return {"type": "error", "error": error}


def _has_cache_control(value: Any) -> bool:
    if isinstance(value, dict):
        return "cache_control" in value or any(_has_cache_control(v) for v in value.values())
    return isinstance(value, list) and any(_has_cache_control(v) for v in value)


@dataclass(frozen=True)
class Reply:
    """One scripted HTTP answer. Build it with the classmethods below.

    ``body`` set: sent verbatim with ``status`` (used for errors). ``body`` None:
    a Messages response is built from the request: ``payload`` becomes the JSON
    text (or a ``tool_use`` input when the request forces a tool), otherwise
    ``content_text`` is sent as a text block. ``usage`` overrides computed fields.
    """

    status: int = 200
    body: dict[str, Any] | None = None
    payload: dict[str, Any] | None = None
    content_text: str = ""
    stop_reason: str | None = None  # None: "tool_use" for tool blocks, else "end_turn"
    usage: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # extra seconds to sleep before answering (on top of latency)
    raw: bytes | None = None  # sent verbatim instead of ``body`` (e.g. JSONL)
    content_type: str = "application/json"

    @classmethod
    def json_object(
        cls,
        obj: dict[str, Any],
        *,
        usage: dict[str, Any] | None = None,
        stop_reason: str | None = None,
    ) -> Reply:
        """200 whose text is ``json.dumps(obj)``, or a ``tool_use`` block if a tool is forced."""
        return cls(payload=obj, usage=usage, stop_reason=stop_reason)

    @classmethod
    def text(cls, s: str, stop_reason: str = "end_turn") -> Reply:
        """200 with a single text block holding ``s`` verbatim (e.g. malformed JSON)."""
        return cls(content_text=s, stop_reason=stop_reason)

    @classmethod
    def truncated(cls, partial_text: str = '{"partial": ') -> Reply:
        """200 cut off by ``max_tokens`` (stop_reason ``"max_tokens"``)."""
        return cls(content_text=partial_text, stop_reason="max_tokens")

    @classmethod
    def error(
        cls,
        status: int,
        err_type: str,
        message: str,
        headers: dict[str, str] | None = None,
        *,
        error_code: str | None = None,
    ) -> Reply:
        """Error whose body is ``{"type":"error","error":{"type":err_type,"message":message}}``.

        ``error_code`` adds ``error.details.error_code`` (the SDK maps some codes to subclasses).
        """
        body = _error_body(err_type, message, error_code)
        return cls(status=status, body=body, headers=dict(headers or {}))

    @classmethod
    def rate_limited(cls, retry_after: float | None = None) -> Reply:
        """429 rate_limit_error; sets ``retry-after`` and ``retry-after-ms`` when given."""
        headers = {}
        if retry_after is not None:
            headers["retry-after"] = f"{retry_after:g}"
            headers["retry-after-ms"] = str(int(retry_after * 1000))
        return cls.error(429, "rate_limit_error", RATE_LIMIT_MESSAGE, headers)

    @classmethod
    def overloaded(cls) -> Reply:
        """529 overloaded_error."""
        return cls.error(529, "overloaded_error", "Overloaded")

    @classmethod
    def server_error(cls) -> Reply:
        """500 api_error."""
        return cls.error(500, "api_error", "Internal server error")

    @classmethod
    def auth_error(cls) -> Reply:
        """401 authentication_error."""
        return cls.error(401, "authentication_error", "invalid x-api-key")

    @classmethod
    def spend_limit(cls, headers: dict[str, str] | None = None) -> Reply:
        """429 "usage limits reached"; the SDK raises a ``RateLimitError`` subclass."""
        code = "enforced_spend_limit_reached"
        return cls.error(429, "rate_limit_error", SPEND_LIMIT_MESSAGE, headers, error_code=code)

    @classmethod
    def hang(cls, seconds: float, then: Reply | None = None) -> Reply:
        """Sleep ``seconds`` before sending ``then`` (default ``json_object({})``)."""
        return replace(then or cls.json_object({}), delay=seconds)


#: What ``GET /v1/models`` lists.
MODELS = ("claude-sonnet-4-6", "claude-haiku-4-5", "claude-opus-4-6")


def _model_page() -> dict[str, Any]:
    data = [
        {"type": "model", "id": m, "display_name": m, "created_at": "2026-01-01T00:00:00Z"} for m in MODELS
    ]
    return {"data": data, "has_more": False, "first_id": MODELS[0], "last_id": MODELS[-1]}


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    fake: FakeAnthropicServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so the SDK's connection pool is exercised
    server: _HTTPServer

    def do_POST(self) -> None:  # noqa: N802
        self.server.fake._handle(self)

    do_GET = do_PUT = do_DELETE = do_PATCH = do_POST

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class FakeAnthropicServer:
    """Threaded fake of the Anthropic Messages API; see the module docstring."""

    def __init__(
        self,
        responder: Callable[[dict[str, Any]], Reply] | None = None,
        latency: float | Callable[[], float] = 0.0,
        min_cacheable: int | dict[str, int] | None = None,
        rate_limit: RateLimit | None = UNLIMITED_KEY,
    ) -> None:
        self.responder = responder
        self.latency = latency
        self.min_cacheable = MIN_CACHEABLE if min_cacheable is None else min_cacheable
        self.limits = ApiLimiter(rate_limit) if rate_limit is not None else None
        self.refused: list[float] = []  # arrival times of the requests a rate limit refused (429)
        self.requests: list[dict[str, Any]] = []  # {"path", "headers" (lower-case), "body", "t" (arrival, monotonic)}
        self.max_in_flight = 0
        self._in_flight = 0
        self._queue: deque[Reply] = deque()
        self.batches = FakeBatches(self._batch_item)
        self._cached_prefixes: set[str] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def in_flight(self) -> int:
        """Requests being answered right now."""
        return self._in_flight

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321`` (only valid once started)."""
        if self._httpd is None:
            raise RuntimeError("FakeAnthropicServer is not started")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> FakeAnthropicServer:
        self._stopping.clear()
        self._httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.fake = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-anthropic",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; requests still sleeping are woken and answered at once."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeAnthropicServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def enqueue(self, *replies: Reply) -> None:
        """Queue replies, used FIFO (in request-arrival order) before the responder."""
        with self._lock:
            self._queue.extend(replies)

    # -- request handling (runs on one thread per connection) --------------------------

    def _handle(self, h: _Handler) -> None:
        length = int(h.headers.get("content-length") or 0)
        raw = h.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in h.headers.items()}
        path = h.path.split("?", 1)[0]
        with self._lock:
            self.requests.append({"path": path, "headers": headers, "body": body, "t": time.monotonic()})
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            reply, cache_key = self._answer(h.command, path, headers, body)
            data = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
            h.send_response(reply.status)
            h.send_header("content-type", reply.content_type)
            h.send_header("request-id", _new_id("req_"))
            h.send_header("content-length", str(len(data)))
            for name, value in reply.headers.items():
                h.send_header(name, value)
            h.end_headers()
            h.wfile.write(data)
            h.wfile.flush()
            if cache_key is not None:  # the prefix is readable from cache once a reply is out
                with self._lock:
                    self._cached_prefixes.add(cache_key)
        except (BrokenPipeError, ConnectionResetError):  # client gave up (e.g. timeout test)
            h.close_connection = True
        finally:
            with self._lock:
                self._in_flight -= 1

    def _answer(
        self, method: str, path: str, headers: dict[str, str], body: Any
    ) -> tuple[Reply, str | None]:
        """The reply to send (with ``body`` filled in) and the prompt-cache key it creates."""
        if path == "/v1/messages/batches" or path.startswith("/v1/messages/batches/"):
            if not self._authorised(headers):
                return Reply.error(401, "authentication_error", "x-api-key header is required"), None
            status, obj, raw, ctype = self.batches.handle(method, path, body, self.url)
            return Reply(status=status, body=obj, raw=raw, content_type=ctype), None
        if method == "GET" and path == "/v1/models":
            if not self._authorised(headers):
                return Reply.error(401, "authentication_error", "x-api-key header is required"), None
            return Reply(body=_model_page()), None
        if method != "POST" or path not in ("/v1/messages", "/v1/messages/count_tokens"):
            return Reply.error(404, "not_found_error", f"Not found: {method} {path}"), None
        if not isinstance(body, dict):
            return Reply.error(400, "invalid_request_error", "Body is not a JSON object"), None
        if not self._authorised(headers):
            return Reply.error(401, "authentication_error", "x-api-key header is required"), None
        prefix_tokens = estimate_tokens(body.get("tools")) + estimate_tokens(body.get("system"))
        message_tokens = estimate_tokens(body.get("messages"))
        if path.endswith("/count_tokens"):
            return Reply(body={"input_tokens": prefix_tokens + message_tokens}), None
        if body.get("stream"):
            return Reply.error(400, "invalid_request_error", "The fake does not stream"), None
        if self.limits is None:
            return self._message_reply(body)
        wait = self.limits.admit(input_tokens=self._counted_input(body))
        admitted = self.limits.quotas()
        if wait is not None:
            with self._lock:
                self.refused.append(time.monotonic())
            refusal = Reply.error(429, "rate_limit_error", RATE_LIMIT_MESSAGE, {"retry-after": f"{wait:g}"})
            return self._with_rate_headers(refusal, admitted, admitted), None
        reply, cache_key = self._message_reply(body)
        if reply.status == 200 and reply.body is not None:
            self.limits.charge_output(reply.body.get("usage", {}).get("output_tokens", 0))
        return self._with_rate_headers(reply, admitted, self.limits.quotas()), cache_key

    def _counted_input(self, body: dict[str, Any]) -> int:
        """The input tokens the rate limit counts: all but prompt-cache reads."""
        prefix = estimate_tokens(body.get("tools")) + estimate_tokens(body.get("system"))
        cached = _has_cache_control(body) and prefix >= self.minimum_for(body.get("model"))
        key = json.dumps([body.get("tools"), body.get("system")], sort_keys=True)
        with self._lock:
            hit = cached and key in self._cached_prefixes
        return estimate_tokens(body.get("messages")) + (0 if hit else prefix)

    @staticmethod
    def _with_rate_headers(reply: Reply, admitted: dict[str, Quota], sent: dict[str, Quota]) -> Reply:
        """`reply` with the anthropic-ratelimit-* headers (its own headers win)."""
        now = datetime.now(UTC)
        quotas = {k: q for k, q in admitted.items() if k in ("requests", "input_tokens")}
        quotas |= {k: q for k, q in sent.items() if k == "output_tokens"}
        tokens = [q for k, q in quotas.items() if k != "requests"]
        if tokens:
            quotas["tokens"] = min(tokens, key=lambda q: q.remaining / q.limit)
        headers = {}
        for kind, q in quotas.items():
            name = f"anthropic-ratelimit-{kind.replace('_', '-')}"
            reset = (now + timedelta(seconds=q.reset)).isoformat(timespec="seconds").replace("+00:00", "Z")
            headers |= {f"{name}-limit": str(q.limit), f"{name}-remaining": str(q.remaining), f"{name}-reset": reset}
        return replace(reply, headers={**headers, **reply.headers})

    def minimum_for(self, model: Any) -> int:
        """The shortest prefix (tokens) this fake caches for ``model``."""
        if isinstance(self.min_cacheable, int):
            return self.min_cacheable
        family = re.sub(r"(-\d{8}|-latest)$", "", str(model or ""))
        return self.min_cacheable.get(family, DEFAULT_MIN_CACHEABLE)

    @staticmethod
    def _authorised(headers: dict[str, str]) -> bool:
        return bool(headers.get("x-api-key")) or "bearer " in headers.get("authorization", "").lower()

    def _batch_item(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """One batch item, answered like ``/v1/messages`` (queue, then responder), no latency."""
        reply, cache_key = self._message_reply(params, sleep=False)
        if cache_key is not None:
            with self._lock:
                self._cached_prefixes.add(cache_key)
        return reply.status, reply.body or {}

    def _message_reply(self, body: dict[str, Any], *, sleep: bool = True) -> tuple[Reply, str | None]:
        """A Messages API answer to ``body`` from the queue or the responder."""
        prefix_tokens = estimate_tokens(body.get("tools")) + estimate_tokens(body.get("system"))
        message_tokens = estimate_tokens(body.get("messages"))
        with self._lock:
            reply = self._queue.popleft() if self._queue else None
        if reply is None:
            try:
                reply = self.responder(body) if self.responder else Reply.json_object({})
            except Exception as exc:  # surface test bugs instead of letting the SDK retry them
                err = Reply.error(500, "api_error", f"fake responder raised {exc!r}")
                return replace(err, headers={"x-should-retry": "false"}), None
        # marked, and long enough: below the model's minimum the API caches nothing, silently
        cached = _has_cache_control(body) and prefix_tokens >= self.minimum_for(body.get("model"))
        cache_key = json.dumps([body.get("tools"), body.get("system")], sort_keys=True)
        with self._lock:
            cache_hit = cache_key in self._cached_prefixes

        latency = self.latency() if callable(self.latency) else self.latency
        if sleep and latency + reply.delay > 0:
            self._stopping.wait(latency + reply.delay)
        if reply.body is not None:
            return reply, None

        tool = self._forced_tool(body)
        out_text = reply.content_text if reply.payload is None else json.dumps(reply.payload)
        block: dict[str, Any] = {"type": "text", "text": out_text}
        if reply.payload is not None and tool is not None:
            block = {"type": "tool_use", "id": _new_id("toolu_"), "name": tool}
            block["input"] = reply.payload
        created = prefix_tokens if cached and not cache_hit else 0
        read = prefix_tokens if cached and cache_hit else 0
        usage: dict[str, Any] = {
            "input_tokens": message_tokens + (0 if cached else prefix_tokens),
            "output_tokens": max(1, estimate_tokens(out_text)),
            "cache_creation_input_tokens": created,
            "cache_read_input_tokens": read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": created,
                "ephemeral_1h_input_tokens": 0,
            },
            "service_tier": "standard",
            **(reply.usage or {}),
        }
        default_stop = "tool_use" if block["type"] == "tool_use" else "end_turn"
        message = {
            "id": _new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": body.get("model"),
            "content": [block],
            "stop_reason": reply.stop_reason or default_stop,
            "stop_sequence": None,
            "usage": usage,
        }
        return replace(reply, body=message), (cache_key if cached else None)

    @staticmethod
    def _forced_tool(body: dict[str, Any]) -> str | None:
        """Name of the tool the request forces (``tool_choice`` "tool", or "any" with one tool)."""
        choice, tools = body.get("tool_choice") or {}, body.get("tools") or []
        if choice.get("type") == "tool":
            return str(choice.get("name"))
        if choice.get("type") == "any" and len(tools) == 1:
            return str(tools[0].get("name"))
        return None
