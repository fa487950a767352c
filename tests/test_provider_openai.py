"""The openai provider: the real SDK over real HTTP against the fake Chat Completions server, in
each structured-output mode a real server has (enforced schema, JSON mode only, nothing, ignored)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mksap.contracts.errors import AnswerError, ProviderError, ProviderStopError
from mksap.contracts.provider import Capabilities, LLMRequest, LLMResponse, Message, Usage, schema_of
from mksap.contracts.registry import Registry
from mksap.contracts.statements import ClozeAnswer, StatementDrafts
from mksap.llm.probe import chain_lines, probe_providers
from mksap.llm.runtime import ProviderRuntime
from mksap.settings import Settings
from mksap_plugins.providers.openai_compat import (
    PRICES,
    PRICES_DATE,
    OpenAIProvider,
    first_json_object,
    strict_schema,
    wait_of,
)

from .conftest import Workspace, load_json, summary_line
from .fakes.openai_server import REJECTIONS, FakeOpenAIServer, Reply, stage_reply

T = TypeVar("T")
API_KEY = "sk-test-SECRET-9d2e6f0a4c"
MODEL = "qwen3:8b"
ANSWER = {"statements": [{"statement": "ACE inhibitors cause cough.", "extra_field": None, "source_index": 0}]}
FALLBACK = "no enforced JSON schema"
#: (server mode, the mode the provider ends in)
MODES = [("json_schema", "json_schema"), ("json_mode", "json_mode"), ("none", "prompted"), ("ignore", "prompted")]


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as srv:
        yield srv


def make_settings(server: FakeOpenAIServer | None, tmp_path: Path, **kw: Any) -> Settings:
    plugin = {"api_key": API_KEY, "base_url": server.base_url if server else None}
    for name in ("api_key", "base_url", "structured_output", "prices"):
        if name in kw:
            plugin[name] = kw.pop(name)
    values: dict[str, Any] = {
        "provider": "openai",
        "model": MODEL,
        "llm_cache_dir": tmp_path / "llm",
        "cache_dir": tmp_path / "cache",
        "call_timeout": 20.0,
        **kw,
    }
    return Settings(**values).with_plugin_options("openai", **plugin)


def make_request(text: str = "Critique: ACE inhibitors cause a dry cough.") -> LLMRequest:
    return LLMRequest(
        task="statements",
        system="You turn MKSAP critiques into atomic flashcard statements. " * 30,
        messages=[Message(role="user", content=text)],
        output_schema=schema_of(StatementDrafts),
        schema_name="StatementDrafts",
    )


def provider_for(settings: Settings, notices: list[str], cap: float = 0.05, **retry: Any) -> OpenAIProvider:
    provider = OpenAIProvider(settings)
    provider.bind_notice(notices.append)
    provider.retry.base, provider.retry.cap = 0.01, cap  # retry tests take milliseconds
    for name, value in retry.items():
        setattr(provider.retry, name, value)
    return provider


def run(settings: Settings, *requests: LLMRequest, notices: list[str] | None = None, cap: float = 0.05,
        probe: bool = False, **retry: Any) -> list[Any]:
    """Complete `requests` concurrently with one provider (after its probe, if asked); exceptions
    are returned, not raised. The probe's Capabilities come first when `probe`."""
    said = notices if notices is not None else []

    async def go() -> list[Any]:
        provider = provider_for(settings, said, cap, **retry)
        try:
            first = [await provider.probe()] if probe else []
            rest = await asyncio.gather(*(provider.complete(r) for r in requests), return_exceptions=True)
            return first + list(rest)
        finally:
            await provider.aclose()

    return asyncio.run(go())


async def closing(provider: OpenAIProvider, work: Awaitable[T]) -> T:
    try:
        return await work
    finally:
        await provider.aclose()


def one(settings: Settings, **kw: Any) -> Any:
    return run(settings, make_request(), **kw)[0]


def assert_no_key(exc: BaseException) -> None:
    assert API_KEY not in str(exc) and API_KEY not in repr(exc.args)


def system_of(body: dict[str, Any]) -> str:
    return next(m["content"] for m in body["messages"] if m["role"] == "system")


# -- the request, the answer, the usage ---------------------------------------------------------


def test_structured_output_request_shape_and_usage(tmp_path: Path) -> None:
    with FakeOpenAIServer(prompt_caching=True, api_key=API_KEY) as srv:
        srv.enqueue(Reply.json_object(ANSWER), Reply.json_object(ANSWER))
        settings = make_settings(srv, tmp_path)
        first, second = run(settings, make_request()) + run(settings, make_request())

    assert isinstance(first, LLMResponse) and first.data == ANSWER
    assert first.provider == "openai" and first.model == MODEL
    assert first.usage.input_tokens > 0 and first.usage.output_tokens > 0 and first.usage.cache_read_input_tokens == 0
    # the second call's system prompt was cached: counted as cache reads, not as input
    assert isinstance(second, LLMResponse) and second.usage.cache_read_input_tokens > 0
    assert second.usage.input_tokens == first.usage.input_tokens - second.usage.cache_read_input_tokens

    request = srv.chat_requests()[0]
    body = request["body"]
    assert request["headers"]["authorization"] == f"Bearer {API_KEY}"
    assert body["model"] == MODEL and body["max_tokens"] == 4096 and "temperature" not in body
    assert body["messages"][0] == {"role": "system", "content": make_request().system}  # schema not in the prompt
    assert body["messages"][1] == {"role": "user", "content": make_request().messages[0].content}
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["name"] == "StatementDrafts"
    schema = fmt["json_schema"]["schema"]
    draft = schema["$defs"]["StatementDraft"]
    assert schema["additionalProperties"] is False and draft["additionalProperties"] is False
    assert set(draft["required"]) == set(draft["properties"]) and "default" not in json.dumps(schema)


def test_strict_schema_closes_every_object_and_requires_every_property() -> None:
    schema = strict_schema(schema_of(ClozeAnswer))
    assert schema["additionalProperties"] is False and schema["required"] == ["items"]
    choice = schema["$defs"]["ClozeChoice"]
    assert choice["additionalProperties"] is False and choice["required"] == ["statement_id", "cloze_candidates"]
    assert schema_of(ClozeAnswer) != schema  # the shared schema is left alone


@pytest.mark.parametrize(("server_mode", "final"), MODES, ids=[m for m, _ in MODES])
def test_each_mode_builds_answers_valid_for_the_schema(tmp_path: Path, server_mode: str, final: str) -> None:
    notices: list[str] = []

    async def eight_at_once_then_one(provider: OpenAIProvider) -> list[LLMResponse]:
        first = await asyncio.gather(*(provider.complete(make_request(f"Critique {i}.")) for i in range(8)))
        return [*first, await provider.complete(make_request("The last one."))]

    with FakeOpenAIServer(server_mode, responder=lambda body: Reply.json_object(ANSWER), latency=0.05) as srv:
        provider = provider_for(make_settings(srv, tmp_path), notices)
        results = asyncio.run(closing(provider, eight_at_once_then_one(provider)))
        bodies = [r["body"] for r in srv.chat_requests()]
    assert all(StatementDrafts.model_validate(r.data) for r in results)
    # the step down is said once, not per question, and names what the server lacked
    assert len(notices) == (0 if final == "json_schema" else 1), notices
    last = bodies[-1]
    if final == "json_schema":
        assert len(bodies) == 9
    else:
        (line,) = notices
        assert FALLBACK in line and MODEL in line and "for the rest of this run: " in line
        assert '"StatementDraft"' in system_of(last)  # the schema went into the prompt
    assert last.get("response_format", {}).get("type") == {
        "json_schema": "json_schema", "json_mode": "json_object", "prompted": None}[final]


@pytest.mark.parametrize("style", sorted(REJECTIONS))
def test_a_rejected_mode_is_detected_from_each_server_error_shape(tmp_path: Path, style: str) -> None:
    notices: list[str] = []
    mode = "none" if style == "openai" else "json_mode"
    with FakeOpenAIServer(mode, error_style=style) as srv:
        settings = make_settings(srv, tmp_path)
        first = run(settings, make_request(), notices=notices)[0]
        kinds = [r["body"].get("response_format", {}).get("type") for r in srv.chat_requests()]
    assert isinstance(first, LLMResponse), first
    # never retried as a transient error (not even llama.cpp's 500): straight to the next mode
    assert kinds == (["json_schema", "json_object", None] if mode == "none" else ["json_schema", "json_object"])
    (line,) = notices
    assert "rejects it" in line and "json_schema" in line


def test_a_mode_named_in_config_is_where_the_run_starts(tmp_path: Path) -> None:
    notices: list[str] = []
    with FakeOpenAIServer("none", models=[MODEL], responder=lambda body: Reply.json_object(ANSWER)) as srv:
        settings = make_settings(srv, tmp_path, structured_output="prompted")
        caps, answer = run(settings, make_request(), notices=notices, probe=True)
        assert [(r["method"], r["path"]) for r in srv.requests] == [
            ("GET", "/v1/models"), ("POST", "/v1/chat/completions")]  # the probe made no test call
        assert "response_format" not in srv.chat_requests()[0]["body"]
    assert isinstance(caps, Capabilities) and caps.structured_output == "prompted"
    assert isinstance(answer, LLMResponse) and answer.data == ANSWER and notices == []


def test_reasoning_before_the_json_is_skipped(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.enqueue(Reply.text("<think>The critique says cough.</think>\n" + json.dumps(ANSWER)))
    notices: list[str] = []
    assert one(make_settings(server, tmp_path), notices=notices).data == ANSWER
    assert notices == []


# -- retries, deadline -------------------------------------------------------------------------


def test_429_retry_after_is_honoured(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.enqueue(Reply.rate_limited(retry_after=0.3), Reply.json_object(ANSWER))
    start = time.monotonic()
    result = one(make_settings(server, tmp_path), cap=5.0)
    assert isinstance(result, LLMResponse) and result.data == ANSWER
    assert len(server.chat_requests()) == 2 and time.monotonic() - start >= 0.3


def test_429_ratelimit_reset_is_honoured_without_retry_after(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.enqueue(Reply.rate_limited(reset_requests="400ms"), Reply.json_object(ANSWER))
    result = one(make_settings(server, tmp_path), cap=5.0)
    assert isinstance(result, LLMResponse)
    first, second = server.chat_requests()
    assert second["t"] - first["t"] >= 0.4  # the reset of the used-up limit, not the tiny backoff


def test_huge_retry_after_is_capped(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.enqueue(Reply.rate_limited(retry_after=3600), Reply.json_object(ANSWER))
    result = one(make_settings(server, tmp_path, call_timeout=5), cap=0.2)
    assert isinstance(result, LLMResponse), result
    first, second = server.chat_requests()
    assert second["t"] - first["t"] >= 0.2


def test_wait_of_reads_every_rate_limit_header() -> None:
    assert wait_of({"retry-after": "2"}) == 2.0
    assert wait_of({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    used_up = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1m30.5s",
               "x-ratelimit-remaining-tokens": "900", "x-ratelimit-reset-tokens": "6m0s"}
    assert wait_of(used_up) == 90.5  # the tokens limit is not the one used up
    assert wait_of({"x-ratelimit-reset-tokens": "20ms"}) == pytest.approx(0.02)
    assert 9 < (wait_of({"x-ratelimit-reset": str(int((time.time() + 10) * 1000))}) or 0) <= 10  # epoch ms
    assert wait_of({"x-ratelimit-reset-requests": "soon"}) is None and wait_of({}) is None


def test_server_error_then_success(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.enqueue(Reply.server_error(), Reply.json_object(ANSWER))
    assert isinstance(one(make_settings(server, tmp_path)), LLMResponse)
    assert len(server.chat_requests()) == 2


def test_retries_exhausted(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.enqueue(*[Reply.server_error()] * 3)
    error = one(make_settings(server, tmp_path), max_attempts=3)
    assert isinstance(error, ProviderError) and not isinstance(error, ProviderStopError)
    assert "3 attempts" in str(error) and "500" in str(error)
    assert len(server.chat_requests()) == 3
    assert_no_key(error)


def test_overall_deadline(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.enqueue(*[Reply.hang(5)] * 3)
    error = one(make_settings(server, tmp_path, call_timeout=0.5))
    assert isinstance(error, ProviderError) and "0.5 s" in str(error)
    assert len(server.chat_requests()) == 1


def test_connection_refused_is_retried_then_reported(tmp_path: Path) -> None:
    with FakeOpenAIServer() as srv:
        settings = make_settings(srv, tmp_path)
    error = one(settings, max_attempts=2)
    assert isinstance(error, ProviderError) and "connection failed" in str(error)
    assert_no_key(error)


def test_max_completion_tokens_is_used_when_the_server_asks(server: FakeOpenAIServer, tmp_path: Path) -> None:
    message = "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens'."
    server.enqueue(Reply.error(400, message), Reply.json_object(ANSWER))
    assert isinstance(one(make_settings(server, tmp_path)), LLMResponse)
    first, second = (r["body"] for r in server.chat_requests())
    assert "max_tokens" in first and second["max_completion_tokens"] == 4096 and "max_tokens" not in second


# -- unusable answers ---------------------------------------------------------------------------


def test_malformed_json(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.enqueue(Reply.text('{"statements": [{"statement": oops'), Reply.text("[1, 2]"))
    settings = make_settings(server, tmp_path)
    notices: list[str] = []
    broken, listed = one(settings, notices=notices), one(settings, notices=notices)
    assert isinstance(broken, AnswerError) and "not JSON" in str(broken)
    assert broken.raw_text == '{"statements": [{"statement": oops'
    assert isinstance(listed, AnswerError) and "not an object" in str(listed)
    assert notices == []  # broken JSON is a bad answer, not a sign the server ignores the schema


def test_truncated_answer(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.enqueue(Reply.truncated())
    error = one(make_settings(server, tmp_path))
    assert isinstance(error, AnswerError) and "max_tokens" in str(error)
    assert error.raw_text.startswith('{"statements"') and len(server.chat_requests()) == 1


def test_refusal(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.enqueue(Reply(content=None, refusal="I can't help with that."))
    error = one(make_settings(server, tmp_path))
    assert isinstance(error, AnswerError) and "refused" in str(error)


# -- errors that stop the provider, and the key --------------------------------------------------


def test_auth_error_stops_without_retry_and_never_shows_the_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with FakeOpenAIServer(api_key="sk-the-right-one") as srv:  # echoes the wrong key back, as OpenAI does
        error = one(make_settings(srv, tmp_path))
        assert len(srv.chat_requests()) == 1
    assert isinstance(error, ProviderStopError) and "OPENAI_API_KEY" in str(error) and "401" in str(error)
    assert_no_key(error)
    assert API_KEY not in caplog.text


def test_the_key_is_in_no_log_line_of_a_run(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with FakeOpenAIServer("json_mode", models=[MODEL]) as srv:
        srv.enqueue(Reply.rate_limited(retry_after=0.01), Reply.server_error())
        results = run(make_settings(srv, tmp_path), make_request(), probe=True)
    assert isinstance(results[-1], LLMResponse)
    assert caplog.records and API_KEY not in caplog.text


def test_quota_stops(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.enqueue(Reply.quota())
    error = one(make_settings(server, tmp_path))
    assert isinstance(error, ProviderStopError) and "quota" in str(error)
    assert len(server.chat_requests()) == 1


def test_a_model_the_server_does_not_have_stops(tmp_path: Path) -> None:
    with FakeOpenAIServer(models=["llama3.2:3b"]) as srv:
        error = one(make_settings(srv, tmp_path))
    assert isinstance(error, ProviderStopError) and "try pulling it first" in str(error) and "model" in str(error)


def test_missing_key_stops_before_any_request(server: FakeOpenAIServer, tmp_path: Path) -> None:
    error = one(make_settings(server, tmp_path, api_key=None))
    assert isinstance(error, ProviderStopError) and "OPENAI_API_KEY" in str(error)
    assert server.requests == []
    reason = OpenAIProvider.unready(make_settings(server, tmp_path, api_key=None))
    assert reason is not None and "any non-empty key" in reason and "OPENAI_BASE_URL" in reason


# -- cost ---------------------------------------------------------------------------------------


def test_unknown_models_are_unpriced_and_prices_are_dated(tmp_path: Path) -> None:
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000, cache_read_input_tokens=1_000_000)
    local = OpenAIProvider(make_settings(None, tmp_path, base_url="http://localhost:11434/v1"))
    assert local.estimate_cost(usage) is None  # every local model
    hosted = OpenAIProvider(make_settings(None, tmp_path, model="gpt-4o-2024-08-06", base_url=None))
    assert hosted.estimate_cost(usage) == pytest.approx(sum(PRICES["gpt-4o"]))
    renamed = OpenAIProvider(make_settings(None, tmp_path, model="gpt-4o", base_url="https://openrouter.ai/api/v1"))
    assert renamed.estimate_cost(usage) is None  # OpenAI's list prices are for OpenAI's API only
    priced = OpenAIProvider(make_settings(None, tmp_path, base_url="http://localhost:8000/v1",
                                          prices={MODEL: [0.1, 0.2, 0.01]}))
    assert priced.estimate_cost(usage) == pytest.approx(0.31)
    assert PRICES_DATE[:4].isdigit()


def test_a_run_of_a_local_model_reports_no_cost(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAIServer(responder=stage_reply) as srv:
        point_at(srv, ws, monkeypatch)
        result = ws.cli("run", "-q", "cvcor25101", "--provider", "openai", "--model", MODEL)
    assert result.code == 0, result.text
    usage = [line for line in result.err.splitlines() if line.startswith(f"openai/{MODEL}:")]
    assert usage and "est. $" not in usage[0] and "calls" in usage[0]


# -- capabilities -------------------------------------------------------------------------------


@pytest.mark.parametrize(("server_mode", "final"), MODES, ids=[m for m, _ in MODES])
def test_probe_names_what_each_server_lacks(tmp_path: Path, server_mode: str, final: str) -> None:
    notices: list[str] = []
    with FakeOpenAIServer(server_mode, models=["llama3.2:3b", MODEL], responder=stage_reply) as srv:
        caps, answer = run(make_settings(srv, tmp_path), make_request(json.dumps({"sentences": []})),
                           notices=notices, probe=True)
        kinds = [r["body"].get("response_format", {}).get("type") for r in srv.chat_requests()]
    assert isinstance(caps, Capabilities) and isinstance(answer, LLMResponse)
    assert caps.structured_output == final and caps.models == ["llama3.2:3b", MODEL]
    assert caps.batches is False and caps.prompt_caching is False
    why = [n for n in caps.notes if n.startswith(("response_format json_schema: ", "json_object: "))]
    assert (why == []) if final == "json_schema" else (why and "the server" in why[0]), caps.notes
    # the probe remembered the mode: the real call went straight to it, and nothing was said twice
    assert kinds[-1] == {"json_schema": "json_schema", "json_mode": "json_object", "prompted": None}[final]
    assert notices == []


def test_probe_notes_a_model_the_server_does_not_list(tmp_path: Path) -> None:
    with FakeOpenAIServer(models=["llama3.2:3b"]) as srv:
        (caps,) = run(make_settings(srv, tmp_path), probe=True)
    assert any("does not list model 'qwen3:8b'" in n and "llama3.2:3b" in n for n in caps.notes), caps.notes


def test_probe_without_a_models_endpoint(server: FakeOpenAIServer, tmp_path: Path) -> None:
    (caps,) = run(make_settings(server, tmp_path), probe=True)
    assert caps.models is None and any("lists no models" in n for n in caps.notes)
    assert caps.structured_output == "json_schema"


def test_probe_chain_gives_one_line_per_provider(tmp_path: Path) -> None:
    with FakeOpenAIServer("json_mode", models=[MODEL]) as srv:
        runtime = ProviderRuntime(make_settings(srv, tmp_path, provider="openai,offline"), Registry.load())
        try:
            lines = chain_lines(probe_providers(runtime))
        finally:
            runtime.close()
    openai_line, offline_line = lines
    assert openai_line.startswith("provider 'openai' (qwen3:8b):")
    assert "JSON mode" in openai_line and "lacks: enforced JSON schema, prompt caching, batch API" in openai_line
    assert "rejects it" in openai_line and "then 'offline'" in openai_line
    assert offline_line.startswith("provider 'offline':") and "locally" in offline_line


def test_probe_chain_reports_a_provider_it_cannot_reach(tmp_path: Path) -> None:
    with FakeOpenAIServer(api_key="sk-another") as srv:
        runtime = ProviderRuntime(make_settings(srv, tmp_path, provider="openai,offline"), Registry.load())
        try:
            first, _ = chain_lines(probe_providers(runtime))
        finally:
            runtime.close()
    assert "probe failed" in first and "authentication failed" in first and "then 'offline'" in first
    assert API_KEY not in first


def test_probe_chain_says_which_provider_is_not_ready_without_calling_it(tmp_path: Path) -> None:
    settings = Settings(provider="openai,anthropic,offline", model=MODEL, llm_cache_dir=tmp_path / "llm")
    runtime = ProviderRuntime(settings, Registry.load())
    try:
        lines = chain_lines(probe_providers(runtime))
    finally:
        runtime.close()
    assert [line.split(":")[0] for line in lines] == [
        "provider 'openai' (qwen3", "provider 'anthropic' (qwen3", "provider 'offline'"]
    assert "not ready: no API key: set OPENAI_API_KEY" in lines[0] and "then 'anthropic'" in lines[0]
    assert "not ready: no API key" in lines[1] and "then 'offline'" in lines[1]


def test_health_is_offline_and_says_how_the_mode_is_found(tmp_path: Path) -> None:
    lines = OpenAIProvider.health(make_settings(None, tmp_path, base_url="http://localhost:11434/v1"))
    assert lines[0] == "ok: API key set; calls go to http://localhost:11434/v1"
    assert lines[1].startswith("ok: structured output found on the first call") and "no batch API" in lines[1]
    assert OpenAIProvider.health(make_settings(None, tmp_path, api_key=None))[0].startswith("error: no API key")


# -- parsing ------------------------------------------------------------------------------------


def test_first_json_object_finds_the_answer_in_prose() -> None:
    text = 'Sure! {not json} Here it is:\n```json\n{"statements": [{"a": {"b": 1}}]}\n```\nand {"x": 2}'
    assert first_json_object(text) == {"statements": [{"a": {"b": 1}}]}
    assert first_json_object("no braces at all") is None and first_json_object("[1, {") is None


@given(st.text(alphabet=st.characters(blacklist_characters="{"), max_size=40),
       st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=4), st.text(max_size=40))
def test_first_json_object_recovers_any_object_after_any_prose(before: str, obj: dict[str, Any], after: str) -> None:
    assert first_json_object(before + json.dumps(obj) + after) == obj


# -- end to end: mksap run ----------------------------------------------------------------------


def point_at(server: FakeOpenAIServer, ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "OPENAI_ADMIN_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("MKSAP_LLM_CACHE_DIR", str(ws.root / "llm-cache"))


@pytest.mark.parametrize(("server_mode", "final"), MODES[:3], ids=[m for m, _ in MODES[:3]])
def test_mksap_run_builds_the_examples_in_each_mode(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch, server_mode: str, final: str
) -> None:
    with FakeOpenAIServer(server_mode, responder=stage_reply, models=[MODEL]) as srv:
        point_at(srv, ws, monkeypatch)
        result = ws.cli("run", "--provider", "openai", "--model", MODEL)
        calls = len(srv.chat_requests())
        again = ws.cli("run", "--provider", "openai", "--model", MODEL, "--force")
        assert len(srv.chat_requests()) == calls  # every answer came from the LLM cache
    assert result.code == 0, result.text
    assert " 0 failed" in summary_line(result.text)
    # once per run, not per question (mid-run, or in the probe's line when the run probes first)
    said = [line for line in result.err.splitlines() if "response_format json_schema: the server" in line]
    assert len(said) == (0 if final == "json_schema" else 1), said
    for qid in ws.qids():
        doc = load_json(ws.output_json(qid))
        assert doc["mksap"]["provenance"]["provider"] == "openai"
        statements = doc["true_statements"]["from_critique"]
        assert statements and all(c in s["statement"] for s in statements for c in s["cloze_candidates"])
    assert again.code == 0 and FALLBACK not in again.err
    assert API_KEY not in result.text + again.text


def test_a_provider_that_stops_hands_over_to_the_next_of_the_chain(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeOpenAIServer(api_key="sk-not-yours") as srv:
        point_at(srv, ws, monkeypatch)
        result = ws.cli("run", "-q", "cvcor25101", "--provider", "openai,offline", "--model", MODEL)
        # the key is refused by the check before the first call: no question's request is sent
        assert srv.chat_requests() == [] and srv.requests
    assert result.code == 0, result.text
    (line,) = [ln for ln in result.err.splitlines() if "stopped" in ln]
    assert "provider 'openai' stopped: its first-call check failed: openai authentication failed" in line
    assert "continuing on 'offline'" in line
    assert API_KEY not in result.text


def test_batch_is_refused_in_one_line(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAIServer() as srv:
        point_at(srv, ws, monkeypatch)
        result = ws.cli("run", "--batch", "--provider", "openai", "--model", MODEL)
        assert srv.requests == []
    assert result.code == 2, result.text
    (line,) = [ln for ln in result.err.splitlines() if "error" in ln]
    assert line.startswith("mksap: error: --batch needs a provider with a batch API") and "'openai'" in line
