"""A fake OpenAI Chat Completions server for tests (standard library only).

A real HTTP server on 127.0.0.1 with an OS-assigned port, so the official ``openai`` SDK can be
pointed at it unchanged (``base_url=server.base_url``, which ends in ``/v1``)::

    with FakeOpenAIServer(mode="json_mode") as server:
        server.enqueue(Reply.rate_limited(retry_after=0.1), Reply.json_object({"ok": True}))
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test-x")

Endpoints: ``GET /v1/models`` (404 when ``models`` is None) and ``POST /v1/chat/completions``
(non-streaming). ``mode`` is what the server does with ``response_format``, as real servers do:

  json_schema  accepts json_schema and json_object, and answers pure JSON (OpenAI, recent
               vLLM / llama.cpp / LM Studio)
  json_mode    rejects json_schema with a 400 naming it (``error_style``: llama.cpp's body by
               default), accepts json_object
  none         rejects any response_format (``error_style``: OpenAI's "unrecognized argument"
               body by default)
  ignore       accepts any response_format and ignores it: prose around the JSON (the llama-server
               bug where json_schema is silently not enforced)

Without a response_format, a model answers prose around the JSON, and only puts in the JSON it
was asked for when the schema is in the prompt (otherwise it just talks). Replies come from the
FIFO queue (:meth:`enqueue`), then from ``responder(body)`` (which may return None), then default
to an instance of the requested schema. Usage is ~4 characters a token; with
``prompt_caching=True`` a system prompt already answered once is reported as
``prompt_tokens_details.cached_tokens``, as OpenAI's automatic prefix caching does.

Rate limits (``rate_limit``, see ``rate_limit.py``): continuously refilled buckets of a minute's
worth of requests (and, with ``tpm``, tokens: the prompt at admission, the answer when sent); a
chat completion they cannot take gets a 429 ``rate_limit_exceeded`` with a whole-second
``retry-after``, and every chat completion answer carries OpenAI's ``x-ratelimit-limit-<kind> /
-remaining-<kind> / -reset-<kind>`` (a duration such as ``6m0s`` or ``20ms``) for each limit set.
The default key allows 1,000,000 requests a minute (no test reaches it); ``rate_limit=None``
sends no rate-limit headers (like a local server). ``server.refused`` holds the arrival time of
every request a limit refused.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from .rate_limit import ApiLimiter, Quota, RateLimit
from .stage_answers import answer_for

__all__ = ["FakeOpenAIServer", "RateLimit", "Reply", "stage_reply", "REJECTIONS", "UNLIMITED_KEY"]

#: The fake's default key: rate-limit headers on every chat completion, a limit no test reaches.
UNLIMITED_KEY = RateLimit(rpm=1_000_000)

Mode = Literal["json_schema", "json_mode", "none", "ignore"]

#: How real servers refuse a response_format they cannot do: (status, body) by error style.
#: llama.cpp / ik_llama (type json_schema refused, json_object offered), llama.cpp builds that
#: answer 500 for it, LM Studio (a bare string), vLLM (not nested under "error"), OpenAI's own
#: message for an argument it does not know.
REJECTIONS: dict[str, tuple[int, dict[str, Any]]] = {
    "llama.cpp": (400, {"error": {"code": 400, "type": "invalid_request_error",
                                  "message": 'response_format type must be one of "text" or "json_object", '
                                             "but got: json_schema"}}),
    "llama.cpp-500": (500, {"error": {"code": 500, "type": "server_error",
                                      "message": 'response_format type must be one of "text" or "json_object", '
                                                 "but got: json_schema"}}),
    "lmstudio": (400, {"error": "'response_format.type' must be 'json_schema' or 'text'"}),
    "vllm": (400, {"object": "error", "type": "BadRequestError", "param": None, "code": 400,
                   "message": "response_format json_schema is not supported by this server's guided decoding"}),
    "openai": (400, {"error": {"message": "Unrecognized request argument supplied: response_format",
                               "type": "invalid_request_error", "param": "response_format", "code": None}}),
}


def estimate_tokens(value: Any) -> int:
    if value in (None, "", [], {}):
        return 0
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return max(1, len(text) // 4)


def _error(status: int, message: str, err_type: str, code: str | None = None) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"message": message, "type": err_type, "param": None, "code": code}}


@dataclass(frozen=True)
class Reply:
    """One scripted answer. ``body`` set: sent verbatim with ``status`` (errors). Otherwise a chat
    completion: ``payload`` becomes the JSON text (wrapped in prose when the server does not
    constrain the answer), or ``content`` is sent verbatim."""

    status: int = 200
    body: Any = None
    payload: dict[str, Any] | None = None
    content: str | None = None
    finish_reason: str = "stop"
    refusal: str | None = None
    usage: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    @classmethod
    def json_object(cls, obj: dict[str, Any]) -> Reply:
        return cls(payload=obj)

    @classmethod
    def text(cls, s: str, finish_reason: str = "stop") -> Reply:
        """``s`` verbatim as the message content (e.g. malformed JSON)."""
        return cls(content=s, finish_reason=finish_reason)

    @classmethod
    def truncated(cls, partial: str = '{"statements": [{"statement": "AC') -> Reply:
        return cls.text(partial, finish_reason="length")

    @classmethod
    def error(cls, status: int, message: str, err_type: str = "invalid_request_error", *,
              code: str | None = None, headers: dict[str, str] | None = None) -> Reply:
        status, body = _error(status, message, err_type, code)
        return cls(status=status, body=body, headers=dict(headers or {}))

    @classmethod
    def rate_limited(cls, retry_after: float | None = None, *, reset_requests: str | None = None,
                     reset_tokens: str | None = None) -> Reply:
        """429 with OpenAI's ``x-ratelimit-*`` headers (the requests limit used up) and, when
        given, ``retry-after``."""
        headers = {
            "x-ratelimit-limit-requests": "60",
            "x-ratelimit-remaining-requests": "0" if reset_requests else "59",
            "x-ratelimit-reset-requests": reset_requests or "1s",
            "x-ratelimit-limit-tokens": "150000",
            "x-ratelimit-remaining-tokens": "0" if reset_tokens else "149000",
            "x-ratelimit-reset-tokens": reset_tokens or "6m0s",
        }
        if retry_after is not None:
            headers["retry-after"] = f"{retry_after:g}"
        return cls.error(429, "Rate limit reached for requests (fake)", "requests", code="rate_limit_exceeded",
                         headers=headers)

    @classmethod
    def server_error(cls) -> Reply:
        return cls.error(500, "The server had an error while processing your request.", "server_error")

    @classmethod
    def quota(cls) -> Reply:
        return cls.error(429, "You exceeded your current quota, please check your plan and billing details.",
                         "insufficient_quota", code="insufficient_quota")

    @classmethod
    def hang(cls, seconds: float, then: Reply | None = None) -> Reply:
        return replace(then or cls(), delay=seconds)


def stage_reply(body: dict[str, Any]) -> Reply | None:
    """A responder answering mksap's stage requests like a sensible model (the user message is
    the JSON payload the prompt was rendered from); None for anything else (the probe)."""
    first = next((m["content"] for m in body.get("messages", []) if m.get("role") == "user"), "")
    try:
        payload = json.loads(first)
    except ValueError:
        return None
    return Reply.json_object(answer_for(payload)) if isinstance(payload, dict) else None


def instance_of(schema: dict[str, Any], defs: dict[str, Any] | None = None) -> Any:
    """A small value valid for a simple JSON schema: what an enforcing server would produce."""
    defs = defs if defs is not None else schema.get("$defs", {})
    if "$ref" in schema:
        return instance_of(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if "enum" in schema:
        return schema["enum"][0]
    if "anyOf" in schema:
        return instance_of(schema["anyOf"][0], defs)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {k: instance_of(v, defs) for k, v in schema.get("properties", {}).items()}
    return {"array": [], "string": "x", "integer": 0, "number": 0, "boolean": False}.get(kind)


def reset_duration(seconds: float) -> str:
    """How OpenAI writes a reset: '20ms', '1.5s', '6m0s'."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    minutes, rest = divmod(seconds, 60)
    text = f"{rest:.3f}".rstrip("0").rstrip(".") + "s"
    return f"{int(minutes)}m{text}" if minutes else text


def _rate_headers(quotas: dict[str, Quota]) -> dict[str, str]:
    headers = {}
    for kind, q in quotas.items():
        if kind not in ("requests", "tokens"):  # OpenAI states no input/output limits apart
            continue
        headers |= {
            f"x-ratelimit-limit-{kind}": str(q.limit),
            f"x-ratelimit-remaining-{kind}": str(q.remaining),
            f"x-ratelimit-reset-{kind}": reset_duration(q.reset),
        }
    return headers


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    fake: FakeOpenAIServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the SDK's pool is exercised
    server: _HTTPServer

    def do_POST(self) -> None:  # noqa: N802
        self.server.fake._handle(self)

    do_GET = do_POST

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class FakeOpenAIServer:
    """Threaded fake of the Chat Completions API; see the module docstring."""

    def __init__(
        self,
        mode: Mode = "json_schema",
        *,
        responder: Callable[[dict[str, Any]], Reply | None] | None = None,
        latency: float = 0.0,
        models: list[str] | None = None,
        error_style: str | None = None,
        prompt_caching: bool = False,
        api_key: str | None = None,
        rate_limit: RateLimit | None = UNLIMITED_KEY,
    ) -> None:
        self.mode = mode
        self.limits = ApiLimiter(rate_limit) if rate_limit is not None else None
        self.refused: list[float] = []  # arrival times of the requests a rate limit refused (429)
        self.responder = responder
        self.latency = latency
        self.models = models
        self.error_style = error_style or ("openai" if mode == "none" else "llama.cpp")
        self.prompt_caching = prompt_caching
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []  # {"method", "path", "headers" (lower-case), "body", "t"}
        self.max_in_flight = 0
        self._in_flight = 0
        self._queue: deque[Reply] = deque()
        self._seen_systems: set[str] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("FakeOpenAIServer is not started")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def base_url(self) -> str:
        """What OPENAI_BASE_URL takes: the URL with its /v1."""
        return self.url + "/v1"

    def start(self) -> FakeOpenAIServer:
        self._stopping.clear()
        self._httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.fake = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def enqueue(self, *replies: Reply) -> None:
        """Queue replies for chat completions, used FIFO before the responder."""
        with self._lock:
            self._queue.extend(replies)

    def chat_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == "/v1/chat/completions"]

    # -- request handling (one thread per connection) ------------------------------------
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
            self.requests.append({"method": h.command, "path": path, "headers": headers, "body": body,
                                  "t": time.monotonic()})
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            status, obj, extra = self._answer(h.command, path, headers, body)
            data = json.dumps(obj).encode()
            h.send_response(status)
            h.send_header("content-type", "application/json")
            h.send_header("x-request-id", "req_" + uuid.uuid4().hex[:16])
            h.send_header("content-length", str(len(data)))
            for name, value in extra.items():
                h.send_header(name, value)
            h.end_headers()
            h.wfile.write(data)
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
            h.close_connection = True
        finally:
            with self._lock:
                self._in_flight -= 1

    def _answer(self, method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, Any, dict[str, str]]:
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            return (*_error(401, "You didn't provide an API key.", "invalid_request_error"), {})
        if self.api_key is not None and auth[7:] != self.api_key:
            return (*_error(401, f"Incorrect API key provided: {auth[7:]}.", "invalid_request_error",
                            "invalid_api_key"), {})
        if method == "GET" and path == "/v1/models" and self.models is not None:
            data = [{"id": m, "object": "model", "created": 1700000000, "owned_by": "fake"} for m in self.models]
            return 200, {"object": "list", "data": data}, {}
        if method != "POST" or path != "/v1/chat/completions":
            return (*_error(404, f"Not found: {method} {path}", "not_found_error"), {})
        if not isinstance(body, dict) or body.get("stream"):
            return (*_error(400, "the fake wants a non-streaming JSON body", "invalid_request_error"), {})
        if self.models is not None and body.get("model") not in self.models:
            return (*_error(404, f'model "{body.get("model")}" not found, try pulling it first', "api_error"), {})
        rejected = self._rejection(body.get("response_format"))
        if rejected is not None:
            return (*rejected, {})
        if self.limits is None:
            return self._completion(body)
        wait = self.limits.admit(input_tokens=estimate_tokens(body.get("messages")))
        if wait is not None:
            with self._lock:
                self.refused.append(time.monotonic())
            status, err = _error(429, "Rate limit reached for requests (fake)", "requests", "rate_limit_exceeded")
            return status, err, {**_rate_headers(self.limits.quotas()), "retry-after": f"{wait:g}"}
        status, obj, extra = self._completion(body)
        if status == 200 and isinstance(obj, dict):
            self.limits.charge_output(obj.get("usage", {}).get("completion_tokens", 0))
        return status, obj, {**_rate_headers(self.limits.quotas()), **extra}

    def _rejection(self, fmt: dict[str, Any] | None) -> tuple[int, Any] | None:
        kind = (fmt or {}).get("type")
        if kind in (None, "text"):
            return None
        if self.mode == "none" or (self.mode == "json_mode" and kind == "json_schema"):
            return REJECTIONS[self.error_style]
        return None

    def _completion(self, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            reply = self._queue.popleft() if self._queue else None
        if reply is None and self.responder is not None:
            try:
                reply = self.responder(body)
            except Exception as exc:  # surface test bugs instead of letting the SDK retry them
                return (*_error(500, f"fake responder raised {exc!r}", "server_error"), {"x-should-retry": "false"})
        fmt = body.get("response_format") or {}
        if reply is None:
            schema = fmt.get("json_schema", {}).get("schema") if fmt.get("type") == "json_schema" else None
            reply = Reply.json_object(instance_of(schema) if schema else {})
        if self.latency + reply.delay > 0:
            self._stopping.wait(self.latency + reply.delay)
        if reply.body is not None:
            return reply.status, reply.body, reply.headers
        messages = body.get("messages", [])
        text = reply.content if reply.payload is None else self._model_text(reply.payload, fmt, messages)
        return 200, self._chat_completion(body, text, reply), reply.headers

    def _model_text(self, payload: dict[str, Any], fmt: dict[str, Any], messages: list[dict[str, Any]]) -> str:
        constrained = fmt.get("type") in ("json_schema", "json_object") and self.mode != "ignore"
        if constrained:
            return json.dumps(payload)
        prompt = " ".join(str(m.get("content", "")) for m in messages)
        if fmt.get("type") is None and '"properties"' not in prompt and self.mode != "ignore":
            return "I read the source carefully. Each point is a fact worth remembering."  # no schema: no JSON
        return f"Sure! Here is the JSON you asked for:\n```json\n{json.dumps(payload, indent=1)}\n```\nAnything else?"

    def _chat_completion(self, body: dict[str, Any], text: str | None, reply: Reply) -> dict[str, Any]:
        messages = body.get("messages", [])
        system = next((m["content"] for m in messages if m.get("role") == "system"), "")
        with self._lock:
            cached = estimate_tokens(system) if self.prompt_caching and system in self._seen_systems else 0
            self._seen_systems.add(system)
        prompt = estimate_tokens(messages)
        usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": max(1, estimate_tokens(text)),
                                 "total_tokens": prompt + max(1, estimate_tokens(text))}
        if self.prompt_caching:
            usage["prompt_tokens_details"] = {"cached_tokens": cached}
        usage.update(reply.usage or {})
        message = {"role": "assistant", "content": text, "refusal": reply.refusal}
        return {
            "id": "chatcmpl-" + uuid.uuid4().hex[:24],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model"),
            "choices": [{"index": 0, "message": message, "finish_reason": reply.finish_reason, "logprobs": None}],
            "usage": usage,
        }
