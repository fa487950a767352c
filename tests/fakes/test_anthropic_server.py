"""Self-test: the official ``anthropic`` SDK talks to FakeAnthropicServer unchanged."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest
from anthropic.types import Message, MessageParam, TextBlock, TextBlockParam, ToolUseBlock

from .anthropic_server import SPEND_LIMIT_MESSAGE, FakeAnthropicServer, Reply

API_KEY = "sk-test-fake-0123456789"
MODEL = "claude-test-model"
SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}, "score": {"type": "integer"}},
    "required": ["answer", "score"],
    "additionalProperties": False,
}
SYSTEM: list[TextBlockParam] = [
    {"type": "text", "text": "You write quiz items. " * 200, "cache_control": {"type": "ephemeral"}}
]
MESSAGES: list[MessageParam] = [{"role": "user", "content": "Give me an answer."}]


def text_of(msg: Message) -> str:
    block = msg.content[0]
    assert isinstance(block, TextBlock)
    return block.text


_clients: list[anthropic.Anthropic] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _clients:
        _clients.pop().close()


@pytest.fixture
def server() -> Iterator[FakeAnthropicServer]:
    with FakeAnthropicServer() as srv:
        yield srv


def sync_client(server: FakeAnthropicServer, **kw: object) -> anthropic.Anthropic:
    """A sync SDK client pointed at ``server`` (closed after the test)."""
    client = anthropic.Anthropic(base_url=server.url, api_key=API_KEY, **kw)
    _clients.append(client)
    return client


def test_structured_output_and_prompt_cache_accounting(server: FakeAnthropicServer) -> None:
    obj = {"answer": "B", "score": 3}
    server.enqueue(Reply.json_object(obj), Reply.json_object(obj))

    async def call() -> Message:
        async with anthropic.AsyncAnthropic(base_url=server.url, api_key=API_KEY) as client:
            return await client.messages.create(
                model=MODEL,
                max_tokens=512,
                system=SYSTEM,
                messages=MESSAGES,
                output_config={"format": {"type": "json_schema", "schema": SCHEMA}},
            )

    first = asyncio.run(call())
    assert first.type == "message" and first.role == "assistant" and first.model == MODEL
    assert first.id.startswith("msg_") and first.stop_reason == "end_turn"
    assert json.loads(text_of(first)) == obj
    u1 = first.usage
    assert u1.input_tokens > 0 and u1.output_tokens > 0
    assert u1.cache_creation_input_tokens and u1.cache_creation_input_tokens > 0
    assert u1.cache_read_input_tokens == 0

    second = asyncio.run(call())
    assert json.loads(text_of(second)) == obj
    assert second.usage.cache_read_input_tokens == u1.cache_creation_input_tokens
    assert second.usage.cache_creation_input_tokens == 0

    body = server.requests[0]["body"]
    assert server.requests[0]["path"] == "/v1/messages"
    assert body["output_config"]["format"]["schema"] == SCHEMA
    assert body["system"][0]["cache_control"] == {"type": "ephemeral"}


def test_forced_tool_use_returns_tool_use_block(server: FakeAnthropicServer) -> None:
    obj = {"answer": "C", "score": 5}
    server.enqueue(Reply.json_object(obj))
    msg = sync_client(server).messages.create(
        model=MODEL,
        max_tokens=256,
        messages=MESSAGES,
        tools=[{"name": "record_item", "description": "Record it", "input_schema": SCHEMA}],
        tool_choice={"type": "tool", "name": "record_item"},
    )
    block = msg.content[0]
    assert isinstance(block, ToolUseBlock)
    assert block.name == "record_item" and block.input == obj
    assert block.id.startswith("toolu_") and msg.stop_reason == "tool_use"


def test_rate_limit_retry_honours_retry_after(server: FakeAnthropicServer) -> None:
    # 0.8 s: longer than any first backoff of the SDK's own (at most 0.5 s), so the gap
    # between the two requests shows which one it waited
    server.enqueue(Reply.rate_limited(retry_after=0.8), Reply.json_object({"ok": True}))
    msg = sync_client(server, max_retries=2).messages.create(
        model=MODEL, max_tokens=64, messages=MESSAGES
    )
    assert json.loads(text_of(msg)) == {"ok": True}
    first, second = server.requests
    assert second["headers"]["x-stainless-retry-count"] == "1"
    assert second["t"] - first["t"] >= 0.8  # waited the header's 0.8 s, not its default backoff


def test_auth_and_spend_limit_errors(server: FakeAnthropicServer) -> None:
    server.enqueue(Reply.auth_error())
    with pytest.raises(anthropic.AuthenticationError) as auth:
        sync_client(server).messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
    assert auth.value.status_code == 401 and auth.value.request_id

    server.enqueue(Reply.spend_limit())
    with pytest.raises(anthropic.RateLimitError) as spend:
        sync_client(server, max_retries=0).messages.create(
            model=MODEL, max_tokens=64, messages=MESSAGES
        )
    assert "reached your specified API usage limits" in str(spend.value)
    assert spend.value.body["error"]["message"] == SPEND_LIMIT_MESSAGE  # type: ignore[index]
    assert len(server.requests) == 2  # no retries for either


def test_other_errors_and_unknown_path(server: FakeAnthropicServer) -> None:
    server.enqueue(Reply.overloaded(), Reply.server_error())
    client = sync_client(server, max_retries=0)
    with pytest.raises(anthropic.OverloadedError):
        client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
    with pytest.raises(anthropic.InternalServerError):
        client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
    with pytest.raises(anthropic.NotFoundError):
        client.get("/v1/files", cast_to=object)
    assert [m.id for m in client.models.list()][:1] == ["claude-sonnet-4-6"]  # what a first-call check asks
    assert client.messages.count_tokens(model=MODEL, messages=MESSAGES).input_tokens > 0


def test_concurrent_requests_overlap() -> None:
    async def main(server: FakeAnthropicServer) -> list[Message]:
        async with anthropic.AsyncAnthropic(base_url=server.url, api_key=API_KEY) as client:
            calls = [
                client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
                for _ in range(16)
            ]
            return await asyncio.gather(*calls)

    with FakeAnthropicServer(latency=0.2) as server:
        results = asyncio.run(main(server))
    assert len(results) == 16 and len(server.requests) == 16
    assert server.max_in_flight == 16  # all sixteen were being answered at once


def test_cache_is_created_by_concurrent_cold_requests_then_read() -> None:
    async def main(server: FakeAnthropicServer, n: int) -> list[Message]:
        async with anthropic.AsyncAnthropic(base_url=server.url, api_key=API_KEY) as client:
            calls = [
                client.messages.create(model=MODEL, max_tokens=64, system=SYSTEM, messages=MESSAGES)
                for _ in range(n)
            ]
            return await asyncio.gather(*calls)

    with FakeAnthropicServer(latency=0.1) as server:
        cold = asyncio.run(main(server, 4))  # all in flight before any reply: no cache yet
        warm = asyncio.run(main(server, 2))
    assert all(m.usage.cache_creation_input_tokens for m in cold)
    assert all(m.usage.cache_read_input_tokens == 0 for m in cold)
    assert all(m.usage.cache_read_input_tokens for m in warm)
    assert all(m.usage.cache_creation_input_tokens == 0 for m in warm)


def test_responder_truncation_hang_and_key_only_in_headers() -> None:
    seen: list[dict[str, Any]] = []

    def responder(body: dict[str, Any]) -> Reply:
        seen.append(body)
        return Reply.truncated('{"answer": "A", "sco')

    with FakeAnthropicServer(responder=responder) as server:
        msg = sync_client(server).messages.create(model=MODEL, max_tokens=8, messages=MESSAGES)
        assert msg.stop_reason == "max_tokens" and text_of(msg) == '{"answer": "A", "sco'
        assert seen and seen[0]["max_tokens"] == 8

        server.enqueue(Reply.text("not json at all"))
        msg = sync_client(server).messages.create(model=MODEL, max_tokens=8, messages=MESSAGES)
        assert text_of(msg) == "not json at all" and msg.stop_reason == "end_turn"

        server.enqueue(Reply.hang(2.0))
        with pytest.raises(anthropic.APITimeoutError):
            sync_client(server, max_retries=0, timeout=0.3).messages.create(
                model=MODEL, max_tokens=8, messages=MESSAGES
            )

        # The key travels only in headers (x-api-key or Authorization: Bearer), never in a body.
        for req in server.requests:
            assert API_KEY not in json.dumps(req["body"])
            auth = req["headers"].get("x-api-key") or req["headers"].get("authorization", "")
            assert API_KEY in auth


def test_message_batches_create_poll_results_cancel_and_list(server: FakeAnthropicServer) -> None:
    server.responder = lambda body: Reply.json_object({"echo": body["messages"][0]["content"]})
    server.batches.polls_before_end = 1
    server.batches.outcome = lambda custom_id, params: {"c": "errored", "d": "expired"}.get(custom_id)
    client = sync_client(server)
    requests = [
        {"custom_id": cid, "params": {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": cid}]}}
        for cid in "abcdef"
    ]
    batch = client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    assert batch.id.startswith("msgbatch_") and batch.processing_status == "in_progress"
    assert batch.request_counts.processing == 6 and batch.results_url is None
    assert client.messages.batches.retrieve(batch.id).processing_status == "in_progress"  # poll 1
    ended = client.messages.batches.retrieve(batch.id)  # poll 2 > polls_before_end
    assert ended.processing_status == "ended" and ended.results_url and ended.ended_at
    counts = ended.request_counts
    assert (counts.succeeded, counts.errored, counts.expired, counts.processing) == (4, 1, 1, 0)

    lines = list(client.messages.batches.results(batch.id))
    assert sorted(line.custom_id for line in lines) == list("abcdef")
    assert [line.custom_id for line in lines] != list("abcdef")  # out of submission order
    by_id = {line.custom_id: line.result for line in lines}
    succeeded = by_id["a"]
    assert succeeded.type == "succeeded" and json.loads(text_of(succeeded.message)) == {"echo": "a"}
    assert by_id["c"].type == "errored" and by_id["d"].type == "expired"
    assert server.batches.created == 1 and server.batches.created_ids == [list("abcdef")]
    assert not [r for r in server.requests if r["path"] == "/v1/messages"]  # items are not plain calls

    other = client.messages.batches.create(requests=requests[:2])  # type: ignore[arg-type]
    canceling = client.messages.batches.cancel(other.id)
    assert canceling.processing_status == "canceling" and canceling.cancel_initiated_at
    canceled = client.messages.batches.retrieve(other.id)
    assert canceled.processing_status == "ended" and canceled.request_counts.canceled == 2
    assert [b.id for b in client.messages.batches.list()] == [other.id, batch.id]  # newest first


def test_message_batches_reject_bad_custom_ids(server: FakeAnthropicServer) -> None:
    client = sync_client(server, max_retries=0)
    params = {"model": MODEL, "max_tokens": 8, "messages": MESSAGES}
    with pytest.raises(anthropic.BadRequestError):
        client.messages.batches.create(requests=[{"custom_id": "x" * 65, "params": params}])  # type: ignore[list-item]
    with pytest.raises(anthropic.BadRequestError):
        client.messages.batches.create(
            requests=[{"custom_id": "same", "params": params}, {"custom_id": "same", "params": params}]  # type: ignore[list-item]
        )
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve("msgbatch_nope")
    assert server.batches.created == 0
