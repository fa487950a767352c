"""The anthropic provider: the real SDK over real HTTP against the fake Messages API server."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mksap.contracts.errors import AnswerError, ProviderError, ProviderStopError
from mksap.contracts.provider import LLMRequest, LLMResponse, Message, Usage
from mksap.contracts.registry import Registry
from mksap.contracts.statements import StatementDrafts
from mksap.llm.runtime import ProviderRuntime
from mksap.settings import Settings
from mksap_plugins.providers.anthropic import AnthropicProvider, strict_schema
from mksap_plugins.providers.anthropic_prices import MIN_CACHEABLE_DATE, PRICES_DATE, estimate_cost

from .fakes.anthropic_server import FakeAnthropicServer, Reply

API_KEY = "sk-ant-test-SECRET-5f3c9a1e7b"
MODEL = "claude-sonnet-4-6"  # 4-5 is deprecated: the SDK warns on every call
#: ~2,400 tokens: clear of claude-sonnet-4-6's minimum cacheable prefix (2,048) by the count's margin
SYSTEM = "You turn MKSAP critiques into atomic flashcard statements. " * 160
SHORT_SYSTEM = "You turn MKSAP critiques into atomic flashcard statements. " * 40  # ~600 tokens
ANSWER = {
    "statements": [
        {"statement": "ACE inhibitors cause cough.", "extra_field": None, "source_index": 0}
    ]
}


@pytest.fixture
def server() -> Iterator[FakeAnthropicServer]:
    with FakeAnthropicServer() as srv:
        yield srv


PLUGIN_OPTIONS = ("api_key", "base_url", "prices", "prices_date", "cache_minimums")


def make_settings(server: FakeAnthropicServer, tmp_path: Path, **kw: Any) -> Settings:
    values: dict[str, Any] = {
        "api_key": API_KEY,
        "base_url": server.url,
        "model": MODEL,
        "llm_cache_dir": tmp_path / "llm",
        "cache_dir": tmp_path / "cache",
        "call_timeout": 20.0,
        **kw,
    }
    options = {k: values.pop(k) for k in PLUGIN_OPTIONS if k in values}
    return Settings(**values).with_plugin_options("anthropic", **options)


def make_request(text: str = "Critique: ACE inhibitors cause a dry cough.") -> LLMRequest:
    return LLMRequest(
        task="statements",
        system=SYSTEM,
        messages=[Message(role="user", content=text)],
        output_schema=StatementDrafts.model_json_schema(),
        schema_name="StatementDrafts",
    )


def fast(provider: AnthropicProvider, cap: float = 0.05) -> AnthropicProvider:
    """Shrink the retry waits so retry tests take milliseconds."""
    provider.retry.base = 0.01
    provider.retry.cap = cap
    return provider


def run(settings: Settings, *requests: LLMRequest, cap: float = 0.05, **attrs: Any) -> list[Any]:
    """Complete `requests` concurrently with one provider; exceptions are returned, not raised."""

    async def go() -> list[Any]:
        provider = fast(AnthropicProvider(settings), cap)
        for name, value in attrs.items():
            setattr(provider.retry, name, value)
        try:
            return await asyncio.gather(
                *(provider.complete(r) for r in requests), return_exceptions=True
            )
        finally:
            await provider.aclose()

    return asyncio.run(go())


def one(settings: Settings, **kw: Any) -> Any:
    return run(settings, make_request(), **kw)[0]


def assert_no_key(exc: BaseException) -> None:
    assert API_KEY not in str(exc)
    assert API_KEY not in repr(exc.args)


# -- success path -----------------------------------------------------------------------------


def test_structured_output_usage_and_request_shape(
    server: FakeAnthropicServer, tmp_path: Path
) -> None:
    server.enqueue(Reply.json_object(ANSWER), Reply.json_object(ANSWER))
    settings = make_settings(server, tmp_path)
    first, second = one(settings), one(settings)

    assert isinstance(first, LLMResponse)
    assert first.data == ANSWER and StatementDrafts.model_validate(first.data)
    assert first.provider == "anthropic" and first.model == MODEL
    assert first.usage.input_tokens > 0 and first.usage.output_tokens > 0
    assert first.usage.cache_creation_input_tokens > 0 and first.usage.cache_read_input_tokens == 0
    # the second call reads the cached system prefix
    assert isinstance(second, LLMResponse)
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    assert second.usage.cache_creation_input_tokens == 0

    body = server.requests[0]["body"]
    assert body["model"] == MODEL and body["max_tokens"] == 4096
    assert "temperature" not in body
    assert body["system"] == [
        {"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}
    ]
    assert body["messages"] == [{"role": "user", "content": make_request().messages[0].content}]
    fmt = body["output_config"]["format"]
    assert fmt["type"] == "json_schema"
    schema = fmt["schema"]
    assert schema["additionalProperties"] is False
    assert all(d["additionalProperties"] is False for d in schema["$defs"].values())
    assert server.requests[0]["headers"].get("x-stainless-retry-count", "0") == "0"


def test_strict_schema_closes_every_object() -> None:
    schema = strict_schema(StatementDrafts.model_json_schema())
    assert schema["additionalProperties"] is False
    assert schema["$defs"]["StatementDraft"]["additionalProperties"] is False


def test_estimate_cost_for_known_and_unknown_models() -> None:
    usage = Usage(
        input_tokens=1_000_000,
        output_tokens=1_000_000,
        cache_creation_input_tokens=1_000_000,
        cache_read_input_tokens=1_000_000,
    )
    assert estimate_cost("claude-sonnet-4-5", usage) == pytest.approx(3 + 15 + 3.75 + 0.30)
    assert estimate_cost("claude-haiku-4-5-20251001", usage) == pytest.approx(1 + 5 + 1.25 + 0.10)
    assert estimate_cost("llama3.1:8b", usage) is None
    assert PRICES_DATE == "2026-11-01"


# -- retries ----------------------------------------------------------------------------------


def test_429_retry_after_is_honoured_then_success(
    server: FakeAnthropicServer, tmp_path: Path
) -> None:
    server.enqueue(Reply.rate_limited(retry_after=0.3), Reply.json_object(ANSWER))
    start = time.monotonic()
    result = one(make_settings(server, tmp_path), cap=5.0)
    elapsed = time.monotonic() - start
    assert isinstance(result, LLMResponse) and result.data == ANSWER
    assert len(server.requests) == 2
    assert elapsed >= 0.3  # waited as told, not the (tiny) backoff


def test_huge_retry_after_is_capped(server: FakeAnthropicServer, tmp_path: Path) -> None:
    server.enqueue(Reply.rate_limited(retry_after=3600), Reply.json_object(ANSWER))
    result = one(make_settings(server, tmp_path, call_timeout=5), cap=0.2)
    # waiting the hour asked for would have run into the 5 s call deadline and failed the call
    assert isinstance(result, LLMResponse), result
    first, second = server.requests
    assert second["t"] - first["t"] >= 0.2  # it waited the cap, not the (tiny) backoff


@pytest.mark.parametrize("failure", [Reply.overloaded(), Reply.server_error()], ids=["529", "500"])
def test_transient_error_then_success(
    server: FakeAnthropicServer, tmp_path: Path, failure: Reply
) -> None:
    server.enqueue(failure, Reply.json_object(ANSWER))
    result = one(make_settings(server, tmp_path))
    assert isinstance(result, LLMResponse) and result.data == ANSWER
    assert len(server.requests) == 2


def test_retries_exhausted(server: FakeAnthropicServer, tmp_path: Path) -> None:
    server.enqueue(*[Reply.overloaded()] * 3)
    error = one(make_settings(server, tmp_path), max_attempts=3)
    assert isinstance(error, ProviderError) and not isinstance(error, ProviderStopError)
    assert "3 attempts" in str(error) and "529" in str(error)
    assert len(server.requests) == 3
    assert_no_key(error)


def test_overall_deadline(server: FakeAnthropicServer, tmp_path: Path) -> None:
    server.enqueue(*[Reply.hang(5)] * 3)
    error = one(make_settings(server, tmp_path, call_timeout=0.5))
    assert isinstance(error, ProviderError) and "0.5 s" in str(error)
    # the deadline cut the first (hanging) attempt short: no retry was ever sent
    assert len(server.requests) == 1
    assert_no_key(error)


def test_connection_refused_is_retried_then_reported(tmp_path: Path) -> None:
    with FakeAnthropicServer() as srv:
        url = srv.url
    settings = Settings(model=MODEL, llm_cache_dir=tmp_path / "llm").with_plugin_options(
        "anthropic", api_key=API_KEY, base_url=url
    )
    error = run(settings, make_request(), max_attempts=2)[0]
    assert isinstance(error, ProviderError) and "connection failed" in str(error)
    assert_no_key(error)


# -- answers that are not usable --------------------------------------------------------------


def test_malformed_answer(server: FakeAnthropicServer, tmp_path: Path) -> None:
    server.enqueue(Reply.text("Sure! Here are the statements: {oops"))
    error = one(make_settings(server, tmp_path))
    assert isinstance(error, AnswerError) and "not JSON" in str(error)
    assert error.raw_text == "Sure! Here are the statements: {oops"
    assert_no_key(error)


def test_json_that_is_not_an_object(server: FakeAnthropicServer, tmp_path: Path) -> None:
    server.enqueue(Reply.text("[1, 2]"))
    error = one(make_settings(server, tmp_path))
    assert isinstance(error, AnswerError) and error.raw_text == "[1, 2]"


def test_truncated_answer(server: FakeAnthropicServer, tmp_path: Path) -> None:
    server.enqueue(Reply.truncated('{"statements": [{"statement": "AC'))
    error = one(make_settings(server, tmp_path))
    assert isinstance(error, AnswerError) and "max_tokens" in str(error)
    assert error.raw_text.startswith('{"statements"')
    assert len(server.requests) == 1


def test_refusal(server: FakeAnthropicServer, tmp_path: Path) -> None:
    server.enqueue(Reply.text("", stop_reason="refusal"))
    error = one(make_settings(server, tmp_path))
    assert isinstance(error, AnswerError) and "refused" in str(error)


# -- errors that stop the provider ------------------------------------------------------------


def test_auth_error_stops_without_retry(server: FakeAnthropicServer, tmp_path: Path) -> None:
    server.enqueue(Reply.error(401, "authentication_error", f"invalid x-api-key {API_KEY}"))
    error = one(make_settings(server, tmp_path))
    assert isinstance(error, ProviderStopError) and "ANTHROPIC_API_KEY" in str(error)
    assert len(server.requests) == 1
    assert_no_key(error)


def test_spend_limit_stops_without_retry(server: FakeAnthropicServer, tmp_path: Path) -> None:
    server.enqueue(Reply.spend_limit(headers={"retry-after": "1"}))
    error = one(make_settings(server, tmp_path))
    assert isinstance(error, ProviderStopError) and "limit" in str(error)
    assert len(server.requests) == 1
    assert_no_key(error)


def test_low_credit_400_stops(server: FakeAnthropicServer, tmp_path: Path) -> None:
    message = "Your credit balance is too low to access the Anthropic API."
    server.enqueue(Reply.error(400, "invalid_request_error", message))
    error = one(make_settings(server, tmp_path))
    assert isinstance(error, ProviderStopError)
    assert len(server.requests) == 1


def test_bad_request_is_reported_not_retried(server: FakeAnthropicServer, tmp_path: Path) -> None:
    server.enqueue(Reply.error(400, "invalid_request_error", "max_tokens: too large"))
    error = one(make_settings(server, tmp_path))
    assert isinstance(error, ProviderError) and not isinstance(error, ProviderStopError)
    assert "max_tokens: too large" in str(error) and "400" in str(error)
    assert len(server.requests) == 1
    assert_no_key(error)


def test_missing_key_stops_before_any_request(server: FakeAnthropicServer, tmp_path: Path) -> None:
    settings = make_settings(server, tmp_path, api_key=None)
    error = one(settings)
    assert isinstance(error, ProviderStopError)
    assert "ANTHROPIC_API_KEY" in str(error) and "--provider offline" in str(error)
    assert server.requests == []


# -- concurrency and the runtime --------------------------------------------------------------


def test_concurrent_calls_overlap(tmp_path: Path) -> None:
    with FakeAnthropicServer(latency=0.3, responder=lambda body: Reply.json_object(ANSWER)) as srv:
        settings = make_settings(srv, tmp_path, max_concurrency=32)
        requests = [make_request(f"Critique number {i}.") for i in range(32)]
        results = run(settings, *requests)
        assert all(isinstance(r, LLMResponse) for r in results), results
        assert srv.max_in_flight == 32  # all of them were at the server at once
        assert len(srv.requests) == 32


def test_runtime_merges_identical_calls_in_flight(tmp_path: Path) -> None:
    with FakeAnthropicServer(latency=0.5, responder=lambda body: Reply.json_object(ANSWER)) as srv:
        settings = make_settings(srv, tmp_path, provider="anthropic")
        runtime = ProviderRuntime(settings, Registry.load())
        results: list[LLMResponse] = []
        barrier = threading.Barrier(2)

        def worker() -> None:
            barrier.wait()
            results.append(runtime.complete(make_request(), StatementDrafts.model_validate))

        threads = [threading.Thread(target=worker) for _ in range(2)]
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=20)
        finally:
            runtime.close()
        assert len(results) == 2 and all(r.data == ANSWER for r in results)
        # one message call (after the first-call check's model list)
        assert [r["path"] for r in srv.requests] == ["/v1/models", "/v1/messages"]
        totals = runtime.totals[("anthropic", MODEL)]
        assert totals.calls == 1 and totals.merged == 1


# -- prompt caching under the API's minimum cacheable prefix ----------------------------------


def sdk_call(server: FakeAnthropicServer, model: str, system_text: str) -> Any:
    import anthropic

    system = [{"type": "text", "text": system_text, "cache_control": {"type": "ephemeral"}}]

    async def call() -> Any:
        async with anthropic.AsyncAnthropic(base_url=server.url, api_key=API_KEY) as client:
            message = await client.messages.create(
                model=model, max_tokens=64, system=system, messages=[{"role": "user", "content": "Hi."}]
            )
            return message.usage

    return asyncio.run(call())


def test_the_fake_caches_a_marked_prefix_only_from_the_models_minimum(server: FakeAnthropicServer) -> None:
    # ~600 tokens marked on claude-sonnet-4-6 (minimum 2,048): neither written nor read, billed as input
    short = [sdk_call(server, MODEL, SHORT_SYSTEM) for _ in range(2)]
    assert all(u.cache_creation_input_tokens == 0 and u.cache_read_input_tokens == 0 for u in short)
    assert short[0].input_tokens > len(SHORT_SYSTEM) // 4
    # ~2,400 tokens reach it: written once, then read
    long = [sdk_call(server, MODEL, SYSTEM) for _ in range(2)]
    assert long[0].cache_creation_input_tokens > 2048 and long[0].cache_read_input_tokens == 0
    assert long[1].cache_read_input_tokens == long[0].cache_creation_input_tokens
    # the same ~2,400 tokens are below Haiku 4.5's 4,096: nothing cached, the request succeeds
    haiku = [sdk_call(server, "claude-haiku-4-5-20251001", SYSTEM) for _ in range(2)]
    assert all(u.cache_creation_input_tokens == 0 and u.cache_read_input_tokens == 0 for u in haiku)
    assert server.minimum_for("claude-sonnet-4-6") == 2048 and server.minimum_for("some-local-model") == 1024


def test_the_fake_can_be_told_to_cache_anything() -> None:
    with FakeAnthropicServer(min_cacheable=0) as srv:
        first, second = (sdk_call(srv, MODEL, SHORT_SYSTEM) for _ in range(2))
    assert first.cache_creation_input_tokens > 0 and second.cache_read_input_tokens > 0


def test_instructions_below_the_minimum_are_not_marked_and_save_nothing(
    server: FakeAnthropicServer, tmp_path: Path
) -> None:
    server.enqueue(Reply.json_object(ANSWER), Reply.json_object(ANSWER))
    settings = make_settings(server, tmp_path)
    short = make_request().model_copy(update={"system": SHORT_SYSTEM})
    first, second = run(settings, short, short)
    assert server.requests[0]["body"]["system"] == [{"type": "text", "text": SHORT_SYSTEM}]  # no cache_control
    for usage in (first.usage, second.usage):
        assert usage.cache_creation_input_tokens == usage.cache_read_input_tokens == 0
    provider = AnthropicProvider(settings)
    assert provider.min_cacheable_tokens() == 2048 and provider.cached_prefix_tokens(short) == 0
    assert not provider.marks_prefix(short)
    assert provider.cached_prefix_tokens(make_request()) == len(SYSTEM) // 4
    # ~2,100 tokens by a 4-characters-a-token count: it may or may not reach 2,048 with the
    # API's tokenizer, so it is marked (free if too short) but no saving is counted for it
    close = make_request().model_copy(update={"system": "x" * 4 * 2100})
    assert provider.marks_prefix(close) and provider.cached_prefix_tokens(close) == 0


def test_minimums_are_dated_and_overridable(server: FakeAnthropicServer, tmp_path: Path) -> None:
    assert MIN_CACHEABLE_DATE == "2026-11-01"
    for model, minimum in [("claude-haiku-4-5-20251001", 4096), ("claude-opus-4-6", 4096), ("qwen3:32b", 1024)]:
        assert AnthropicProvider(make_settings(server, tmp_path, model=model)).min_cacheable_tokens() == minimum
    # a configured minimum wins: mksap then marks the prefix, but the API (the fake) still
    # applies its own rule, so the usage shows no saving
    settings = make_settings(server, tmp_path, cache_minimums={MODEL: 512})
    assert AnthropicProvider(settings).min_cacheable_tokens() == 512
    server.enqueue(Reply.json_object(ANSWER))
    (answer,) = run(settings, make_request().model_copy(update={"system": SHORT_SYSTEM}))
    assert server.requests[0]["body"]["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert answer.usage.cache_creation_input_tokens == 0


def test_an_unusable_answer_is_billed_and_counted(server: FakeAnthropicServer, tmp_path: Path) -> None:
    server.enqueue(Reply.text("Sure! {oops"))
    settings = make_settings(server, tmp_path, provider="anthropic")
    runtime = ProviderRuntime(settings, Registry.load())
    try:
        with pytest.raises(AnswerError) as failure:
            runtime.complete(make_request(), StatementDrafts.model_validate)
    finally:
        runtime.close()
    assert isinstance(failure.value.usage, Usage) and failure.value.usage.input_tokens > 0
    totals = runtime.totals[("anthropic", MODEL)]
    assert totals.calls == 1 and totals.failures == 1 and totals.usage == failure.value.usage
