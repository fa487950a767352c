"""A stage's question to the model: an unusable answer gets exactly one repair round (the error
sent back), then the task fails with a one-line reason, and nothing invalid is cached.
Real SDK, real HTTP, the fake Messages API server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mksap.bank import Question
from mksap.contracts.errors import StageError
from mksap.contracts.provider import LLMRequest, Message, schema_of
from mksap.contracts.registry import Registry
from mksap.contracts.stage import StageJob
from mksap.contracts.statements import StatementDrafts
from mksap.llm.cache import ResponseCache
from mksap.llm.runtime import ProviderRuntime
from mksap.settings import Settings

from .fakes.anthropic_server import FakeAnthropicServer, Reply

VALID = {"statements": [{"statement": "Thiazides can cause hyponatremia.", "extra_field": None, "source_index": 0}]}


@pytest.fixture
def server() -> Iterator[FakeAnthropicServer]:
    with FakeAnthropicServer() as srv:
        yield srv


@pytest.fixture
def job(server: FakeAnthropicServer, tmp_path: Path) -> Iterator[StageJob]:
    settings = Settings(
        provider="anthropic",
        model="claude-sonnet-4-6",
        cache_dir=tmp_path / "c",
        llm_cache_dir=tmp_path / "llm",
    ).with_plugin_options("anthropic", api_key="sk-ant-test-key", base_url=server.url)
    runtime = ProviderRuntime(settings, Registry.load(), cache=ResponseCache(settings.llm_cache_dir))
    question = Question("np", "npmcq24001", tmp_path, ())
    yield StageJob(question=question, settings=settings, artifacts={}, llm=runtime.complete, provenance={})
    runtime.close()


def request() -> LLMRequest:
    return LLMRequest(
        task="statements",
        system="Write statements.",
        messages=[Message(role="user", content="Thiazide diuretics can cause hyponatremia.")],
        output_schema=schema_of(StatementDrafts),
        schema_name="StatementDrafts",
    )


def user_turns(server: FakeAnthropicServer) -> list[list[dict[str, str]]]:
    return [r["body"]["messages"] for r in server.requests if r["path"] == "/v1/messages"]


@pytest.mark.parametrize(
    "bad",
    [Reply.text("Sure! Here are the statements: ..."), Reply.truncated('{"statements": [{"statem'),
     Reply.json_object({"statements": "not a list"})],
    ids=["not-json", "cut-at-max-tokens", "wrong-schema"],
)
def test_one_repair_round_fixes_an_unusable_answer(job: StageJob, server: FakeAnthropicServer, bad: Reply) -> None:
    server.enqueue(bad, Reply.json_object(VALID))
    drafts, _ = job.ask(request(), StatementDrafts)
    assert drafts.statements[0].statement == "Thiazides can cause hyponatremia."
    first, repair = user_turns(server)
    assert len(first) == 1 and len(repair) == 3
    assert repair[1]["role"] == "assistant" and repair[2]["role"] == "user"
    assert "unusable" in repair[2]["content"]  # the error goes back to the model


def test_a_second_unusable_answer_fails_the_task_in_one_line_and_caches_nothing(
    job: StageJob, server: FakeAnthropicServer, tmp_path: Path
) -> None:
    server.enqueue(Reply.text("no JSON here"), Reply.text("still no JSON"))
    with pytest.raises(StageError) as failure:
        job.ask(request(), StatementDrafts)
    assert "\n" not in str(failure.value) and "after one repair round" in str(failure.value)
    assert len(user_turns(server)) == 2
    assert ResponseCache(tmp_path / "llm").stats().entries == 0
    # the same request later is asked again (not answered from a cache of the bad answer)
    server.enqueue(Reply.json_object(VALID))
    drafts, response = job.ask(request(), StatementDrafts)
    assert not response.from_cache and len(user_turns(server)) == 3
    assert json.loads(response.raw_text) == VALID
