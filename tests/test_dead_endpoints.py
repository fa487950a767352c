"""Dead endpoints stop early, and a cache that cannot store stops the spending: the first-call
check, the circuit breaker, and a full LLM-cache disk, over real HTTP and a real joblib cache."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import types
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from mksap.contracts.errors import ExitCode, ProviderError, RunStopError
from mksap.contracts.provider import LLMRequest, LLMResponse, Message, Provider
from mksap.contracts.registry import Registry
from mksap.llm.breaker import CircuitBreaker, failure_kind
from mksap.llm.cache import ResponseCache
from mksap.llm.retry import RetryPolicy
from mksap.llm.runtime import ProviderRuntime
from mksap.settings import Settings
from mksap_plugins.providers import anthropic as anthropic_plugin

from .conftest import Workspace
from .fakes.anthropic_server import FakeAnthropicServer, Reply

API_KEY = "sk-ant-test-DEAD-0c1d2e3f"
MODEL = "claude-sonnet-4-6"


def request(i: int) -> LLMRequest:
    return LLMRequest(
        task="statements",
        system="Turn the critique into statements.",
        messages=[Message(role="user", content=f"critique {i}")],
        output_schema={"type": "object"},
        schema_name="Answer",
    )


# -- the breaker itself ------------------------------------------------------------------------


def test_failure_kind_ignores_what_varies_between_calls() -> None:
    a = "anthropic (m): gave up after 6 attempts; last: HTTP 500 api_error: Internal server error"
    b = "anthropic (m): gave up after 4 attempts; last: HTTP 503 api_error: Internal server error"
    assert failure_kind(a) == failure_kind(b) == "HTTP # api_error: Internal server error"
    assert failure_kind("anthropic (m): no answer within 120 s") != failure_kind(a)


def test_the_breaker_opens_on_a_run_of_one_kind_and_an_answer_resets_it() -> None:
    breaker = CircuitBreaker(threshold=3)
    assert breaker.failed("x: no answer within 5 s") is None
    assert breaker.failed("x: no answer within 5 s") is None
    breaker.answered()  # the endpoint is alive after all
    assert breaker.failed("x: no answer within 5 s") is None
    assert breaker.failed("x: connection failed") is None  # another kind starts a new run
    assert breaker.failed("x: connection failed") is None
    reason = breaker.failed("x: connection failed")
    assert reason is not None and "3 calls in a row" in reason and "connection failed" in reason


# -- the runtime, with providers of our own ----------------------------------------------------


class FailingProvider(Provider):
    """A paid provider whose endpoint is down: every call fails after its retries."""

    name = "down"
    calls: ClassVar[int] = 0

    async def complete(self, request: LLMRequest) -> LLMResponse:
        type(self).calls += 1
        await asyncio.sleep(0.01)
        raise ProviderError("down: gave up after 6 attempts; last: HTTP 503 overloaded")


class AnsweringProvider(Provider):
    """A paid provider that answers every call."""

    name = "up"
    calls: ClassVar[int] = 0

    async def complete(self, request: LLMRequest) -> LLMResponse:
        type(self).calls += 1
        return LLMResponse(data={"n": request.messages[0].content}, raw_text="{}", provider=self.name, model=self.model)


def runtime_for(
    tmp_path: Path, provider: str, notices: list[str], *, cache: ResponseCache | None = None, **settings: Any
) -> ProviderRuntime:
    module = types.ModuleType("dead_endpoint_providers")
    module.register_providers = lambda register: [register(FailingProvider), register(AnsweringProvider)]  # type: ignore[attr-defined]
    registry = Registry()
    registry.add_module(module, "tests")
    s = Settings(provider=provider, cache_dir=tmp_path / "c", llm_cache_dir=tmp_path / "llm", rpm=0, tpm=0, **settings)
    return ProviderRuntime(s, registry, cache=cache, notice=notices.append)


def complete_all(runtime: ProviderRuntime, n: int, workers: int = 8) -> list[Any]:
    def one(i: int) -> Any:
        try:
            return runtime.complete(request(i))
        except Exception as e:  # noqa: BLE001 - the test inspects each outcome
            return e

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, range(n)))


def test_a_dead_provider_is_stopped_after_a_few_calls_and_the_rest_fail_at_once(tmp_path: Path) -> None:
    FailingProvider.calls = 0
    notices: list[str] = []
    runtime = runtime_for(tmp_path, "down", notices, breaker_failures=4, max_concurrency=2)
    try:
        outcomes = complete_all(runtime, 60)
    finally:
        runtime.close()
    # the breaker opens at the 4th failure; the calls already in flight then still end
    assert 4 <= FailingProvider.calls <= 4 + 2
    stopped = [o for o in outcomes if isinstance(o, RunStopError)]
    assert len(stopped) >= 60 - 6 and all("no provider left to answer: 'down'" in str(o) for o in stopped)
    assert runtime.stop_reason is not None and "4 calls in a row failed the same way" in runtime.stop_reason
    (line,) = [n for n in notices if "stopped" in n]
    assert line.startswith("provider 'down' stopped: 4 calls in a row") and line.endswith("no provider left")


def test_the_next_provider_of_the_chain_takes_over_when_the_breaker_opens(tmp_path: Path) -> None:
    FailingProvider.calls = AnsweringProvider.calls = 0
    notices: list[str] = []
    runtime = runtime_for(tmp_path, "down,up", notices, breaker_failures=3, max_concurrency=1)
    try:
        outcomes = complete_all(runtime, 20, workers=1)
    finally:
        runtime.close()
    assert FailingProvider.calls == 3
    # the request whose failure opened the breaker is answered by the next provider too
    assert [type(o).__name__ for o in outcomes[:2]] == ["ProviderError", "ProviderError"]
    assert all(isinstance(o, LLMResponse) and o.provider == "up" for o in outcomes[2:])
    assert runtime.stop_reason is None
    assert any("provider 'down' stopped" in n and "continuing on 'up'" in n for n in notices)


def test_answers_that_cannot_be_cached_stop_the_spending(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk under the LLM cache (the kernel's own ENOSPC, from /dev/full, under joblib's
    real store code): the answer in hand is used, the run sends nothing more, and says why."""
    from joblib import _store_backends

    real_open = _store_backends.FileSystemStoreBackend._open_item

    def full_disk(path: str, mode: str) -> Any:
        if "output.pkl" in path and "w" in mode:
            return open("/dev/full", "wb")  # noqa: SIM115 - handed to joblib, which closes it
        return real_open(path, mode)

    monkeypatch.setattr(_store_backends.FileSystemStoreBackend, "_open_item", staticmethod(full_disk))
    AnsweringProvider.calls = 0
    notices: list[str] = []
    cache = ResponseCache(tmp_path / "llm")
    runtime = runtime_for(tmp_path, "up", notices, cache=cache)
    try:
        first = runtime.complete(request(1))
        with pytest.raises(RunStopError, match="disk full") as info:
            runtime.complete(request(2))
    finally:
        runtime.close()
    assert isinstance(first, LLMResponse) and AnsweringProvider.calls == 1
    assert "LLM cache: cannot store answers in" in str(info.value) and "No space left on device" in str(info.value)
    assert "nothing is paid for twice" in str(info.value)
    assert notices[-1] == runtime.stop_reason and sum("LLM cache" in n for n in notices) == 1


# -- over real HTTP, through the anthropic provider --------------------------------------------


class _Always500(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hits: ClassVar[list[str]] = []

    def _answer(self) -> None:
        type(self).hits.append(f"{self.command} {self.path}")
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        body = json.dumps({"type": "error", "error": {"type": "api_error", "message": "Internal server error"}})
        data = body.encode()
        self.send_response(500)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture
def always_500() -> Iterator[str]:
    _Always500.hits = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Always500)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def silent() -> Iterator[str]:
    """A server that accepts connections and never says a word."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def point_at(url: str, ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", url)
    monkeypatch.setenv("MKSAP_PROVIDER", "anthropic")
    monkeypatch.setenv("MKSAP_MODEL", MODEL)
    monkeypatch.setenv("MKSAP_LLM_CACHE_DIR", str(ws.root / "llm"))


def test_a_server_that_always_answers_500_ends_the_run_in_seconds_with_one_line(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch, always_500: str
) -> None:
    point_at(always_500, ws, monkeypatch)
    before = {p: p.read_bytes() for p in ws.data.rglob("*") if p.is_file()}
    result = ws.cli("run")
    assert result.code == ExitCode.ERROR, result.text
    # the first-call check (2 tries of the model list) found it; no question's request was sent
    assert _Always500.hits == ["GET /v1/models?limit=1"] * 2
    (stop,) = [ln for ln in result.err.splitlines() if ln.startswith("stopped: ")]
    assert "its first-call check failed" in stop and "HTTP 500 api_error: Internal server error" in stop
    assert not [ln for ln in result.text.splitlines() if ln.startswith("FAILED ")], "one line, not one per question"
    assert "Traceback" not in result.text and API_KEY not in result.text
    # the local stages still built every question
    assert all(ws.artifact(qid, "nlp").is_file() for qid in ws.qids())
    assert {p: p.read_bytes() for p in ws.data.rglob("*") if p.is_file()} == before


def test_plain_doit_ends_the_same_way(ws: Workspace, monkeypatch: pytest.MonkeyPatch, always_500: str) -> None:
    point_at(always_500, ws, monkeypatch)
    result = ws.doit()
    assert result.code == ExitCode.ERROR, result.text
    assert [ln for ln in result.err.splitlines() if ln.startswith("stopped: ")]
    assert not [ln for ln in result.err.splitlines() if ln.startswith("FAILED ")]
    assert "Traceback" not in result.text and API_KEY not in result.text


def test_a_silent_server_fails_the_check_instead_of_every_call_timing_out(
    tmp_path: Path, silent: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(anthropic_plugin, "PROBE_TIMEOUT", 0.5)
    settings = Settings(
        provider="anthropic", model=MODEL, cache_dir=tmp_path / "c", llm_cache_dir=tmp_path / "llm", call_timeout=60
    ).with_plugin_options("anthropic", api_key=API_KEY, base_url=silent)
    notices: list[str] = []
    runtime = ProviderRuntime(settings, Registry.load(), notice=notices.append)
    try:
        outcomes = complete_all(runtime, 6)
    finally:
        runtime.close()
    # every request ended by the check's 0.5 s, none waited its 60 s call_timeout
    assert all(isinstance(o, RunStopError) for o in outcomes)
    assert all("its first-call check failed" in str(o) and "no answer within 0.5 s" in str(o) for o in outcomes)


def test_an_endpoint_that_dies_mid_run_trips_the_breaker(tmp_path: Path) -> None:
    """The model list answers (the check passes), then every message is a 500: after
    `breaker_failures` calls the provider is stopped and the rest are not sent."""
    with FakeAnthropicServer(responder=lambda body: Reply.error(500, "api_error", "Internal server error")) as srv:
        settings = Settings(
            provider="anthropic",
            model=MODEL,
            cache_dir=tmp_path / "c",
            llm_cache_dir=tmp_path / "llm",
            breaker_failures=3,
            max_concurrency=2,
            rpm=0,
            tpm=0,
        ).with_plugin_options("anthropic", api_key=API_KEY, base_url=srv.url)
        notices: list[str] = []
        runtime = ProviderRuntime(settings, Registry.load(), notice=notices.append)
        (provider,) = runtime.providers()
        provider.retry = RetryPolicy(max_attempts=2, base=0.01, cap=0.01)  # type: ignore[attr-defined]
        try:
            outcomes = complete_all(runtime, 40, workers=4)
        finally:
            runtime.close()
        messages = [r for r in srv.requests if r["path"] == "/v1/messages"]
    # 3 failed calls of 2 attempts each, plus what was in flight when the breaker opened
    assert 6 <= len(messages) <= (3 + 2) * 2
    assert sum(isinstance(o, RunStopError) for o in outcomes) >= 40 - 5
    assert any("provider 'anthropic' stopped: 3 calls in a row" in n for n in notices)


# -- `mksap doctor --probe` shows what a run's check finds -------------------------------------


def test_doctor_probe_names_a_dead_endpoint(ws: Workspace, monkeypatch: pytest.MonkeyPatch, always_500: str) -> None:
    point_at(always_500, ws, monkeypatch)
    result = ws.cli("doctor", "--probe")
    assert result.code == ExitCode.FAILED, result.text
    (line,) = [ln for ln in result.out.splitlines() if "probe anthropic" in ln]
    assert line.split()[0] == "error" and "HTTP 500 api_error: Internal server error" in line
    assert _Always500.hits == ["GET /v1/models?limit=1"] * 2 and API_KEY not in result.text


def test_doctor_probe_says_what_a_json_mode_server_lacks(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    from .fakes.openai_server import FakeOpenAIServer

    with FakeOpenAIServer("json_mode", models=["llama3.1:8b"]) as srv:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-local-test")
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        monkeypatch.setenv("MKSAP_MODEL", "llama3.1:8b")
        result = ws.cli("doctor", "--probe", "--provider", "openai", "--json")
    assert result.code == ExitCode.OK, result.text
    (check,) = [c for c in json.loads(result.out)["data"]["checks"] if c["topic"] == "probe openai"]
    assert check["status"] == "ok" and "JSON mode" in check["message"]
    assert "lacks: enforced JSON schema, prompt caching, batch API" in check["message"]
