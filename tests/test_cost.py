"""Knowing the bill before, and paying once: `mksap run --estimate`, `--max-cost`, `--limit` and
`--sample`, repaired answers cached under the original request, per-stage models. The real CLI
and doit build on a copy of the examples, the real SDK over real HTTP to the fake Messages API."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mksap.bank import Question
from mksap.build.session import RunRequest, build_targets, choose
from mksap.contracts.errors import ExitCode
from mksap.contracts.registry import Registry
from mksap.llm.cache import ResponseCache
from mksap.settings import load_settings
from tests.conftest import EXAMPLES, Workspace, hash_tree, load_json, planned_tasks

from .fakes.anthropic_server import FakeAnthropicServer, Reply
from .fakes.stage_answers import answer_for

API_KEY = "sk-ant-cost-test-SECRET-71c4"
MODEL = "claude-sonnet-4-6"
#: What the 15 examples ask for (dmvdx24101 has no key points; five questions carry a clinical table).
EXAMPLE_REQUESTS = {"critique": 15, "keypoints": 14, "tables": 5, "cloze": 15}


class Responder:
    """Answers like stage_answers; `malformed(body)` decides which first answers are not JSON.
    Keeps the (system, messages) of every call, to tell whether one was ever sent twice."""

    def __init__(self) -> None:
        self.malformed = lambda body: False
        self.sent: list[str] = []

    def __call__(self, body: dict[str, Any]) -> Reply:
        self.sent.append(json.dumps([body.get("model"), body.get("system"), body["messages"]], sort_keys=True))
        if len(body["messages"]) == 1 and self.malformed(body):
            return Reply.text("Sure! Here are the statements you asked for: {")
        return Reply.json_object(answer_for(json.loads(body["messages"][0]["content"])))


@pytest.fixture
def responder() -> Responder:
    return Responder()


@pytest.fixture
def server(responder: Responder) -> Iterator[FakeAnthropicServer]:
    with FakeAnthropicServer(responder=responder) as srv:
        yield srv


@pytest.fixture
def paid(ws: Workspace, server: FakeAnthropicServer, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """The workspace on the anthropic provider, talking to the fake server."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    monkeypatch.setenv("MKSAP_PROVIDER", "anthropic")
    monkeypatch.setenv("MKSAP_MODEL", MODEL)
    monkeypatch.setenv("MKSAP_LLM_CACHE_DIR", str(ws.root / "llm"))
    return ws


def messages_calls(server: FakeAnthropicServer) -> int:
    return len(message_bodies(server))


def message_bodies(server: FakeAnthropicServer, since: int = 0) -> list[dict[str, Any]]:
    """The bodies of the Messages requests (not the first-call check's model list)."""
    return [r["body"] for r in server.requests[since:] if r["path"] == "/v1/messages"]


def estimate_of(ws: Workspace, *targets: str, **request: Any) -> Any:
    """The CostEstimate of `mksap run --estimate` through the same core call the command makes."""
    settings = load_settings({"data": ws.data, "out": ws.out, "cache_dir": ws.cache}).settings
    run = RunRequest(targets=list(targets), estimate=True, **request)
    return build_targets(settings, run, registry=Registry.load(), notice=lambda m: None).estimate


def ledger(ws: Workspace) -> dict[str, Any]:
    return load_json(ws.build_dir / "usage.json")[f"anthropic/{MODEL}"]


def statements(ws: Workspace) -> dict[str, Any]:
    return {
        p.stem: [load_json(p).get(k) for k in ("true_statements", "table_statements", "rejected_statements")]
        for p in sorted(ws.out.glob("*/*/*.json"))
    }


def state_files(ws: Workspace) -> dict[str, str]:
    trees = {"cache": ws.cache, "out": ws.out, "data": ws.data, "llm": ws.root / "llm"}
    return {f"{name}/{k}": v for name, root in trees.items() if root.exists() for k, v in hash_tree(root).items()}


# -- the estimate ---------------------------------------------------------------------------


def minimums(server: FakeAnthropicServer, monkeypatch: pytest.MonkeyPatch, tokens: int) -> None:
    """The API's (the fake's) and mksap's minimum cacheable prefix for MODEL, whatever the
    prompts' length: the tests below do not depend on how long the instructions are."""
    server.min_cacheable = {MODEL: tokens}
    monkeypatch.setenv("MKSAP_ANTHROPIC_CACHE_MINIMUMS", json.dumps({MODEL: tokens}))


def test_the_estimate_sends_nothing_writes_nothing_and_counts_the_examples(
    paid: Workspace, server: FakeAnthropicServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    minimums(server, monkeypatch, 100_000)  # instructions below the minimum: no saving
    before = state_files(paid)
    result = paid.cli("run", "--estimate")
    assert result.code == 0, result.text
    assert server.requests == []  # not one request of any kind
    assert state_files(paid) == before and not paid.cache.exists() and not paid.out.exists()
    assert not (paid.root / "llm").exists()  # not even the LLM cache folder
    for stage, n in EXAMPLE_REQUESTS.items():
        assert re.search(rf"^{stage}\s+{n}\s+0\s", result.out, re.MULTILINE), result.out
    assert re.search(rf"^total\s+{sum(EXAMPLE_REQUESTS.values())}\s+0\s", result.out, re.MULTILINE)
    assert f"anthropic/{MODEL}" in result.out and "2026-11-01" in result.out
    assert "anthropic/claude-sonnet-4-6's minimum cacheable prefix 100,000: below it: not marked" in result.out

    estimate = estimate_of(paid)
    assert {s.stage: s.requests for s in estimate.stages} == EXAMPLE_REQUESTS
    model = estimate.models[0]
    assert model.plain_usd == pytest.approx(model.caching_usd)  # the prefix cannot be cached: no saving
    assert model.batch_usd == pytest.approx(model.plain_usd / 2)
    assert model.cache_write_tokens == model.cache_read_tokens == 0

    # the bill of the build it estimated: the same requests, dollars within 2x
    assert paid.cli("run", "-q").code == 0
    assert messages_calls(server) == sum(EXAMPLE_REQUESTS.values())
    bill = ledger(paid)
    assert 0.5 <= model.plain_usd / bill["cost_usd"] <= 2.0
    assert bill["cache_read_input_tokens"] == bill["cache_creation_input_tokens"] == 0
    assert not any("cache_control" in json.dumps(body["system"]) for body in message_bodies(server))


def test_where_the_instructions_reach_the_minimum_the_estimate_counts_the_saving(
    paid: Workspace, server: FakeAnthropicServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    minimums(server, monkeypatch, 100)  # every prompt is far longer than 100 tokens
    estimate = estimate_of(paid)
    model = estimate.models[0]
    assert model.caching_usd < 0.8 * model.plain_usd
    assert model.cache_write_tokens > 0 and model.cache_read_tokens > model.cache_write_tokens
    assert paid.cli("run", "-q").code == 0
    bill = ledger(paid)
    assert bill["cache_read_input_tokens"] > 0
    assert 0.5 <= model.caching_usd / bill["cost_usd"] <= 2.0


def test_an_in_place_estimate_leaves_the_question_files_alone(paid: Workspace, server: FakeAnthropicServer) -> None:
    before = state_files(paid)
    result = paid.cli("run", "--estimate", "--in-place", "--limit", "2")
    assert result.code == 0 and "estimate for 2 question(s)" in result.out, result.text
    assert state_files(paid) == before and server.requests == []


def test_after_a_build_the_estimate_finds_everything_up_to_date_or_cached(
    paid: Workspace, server: FakeAnthropicServer
) -> None:
    assert paid.cli("run", "-q").code == 0
    calls = messages_calls(server)
    before = state_files(paid)
    up_to_date = paid.cli("run", "--estimate")
    assert up_to_date.code == 0 and "task(s) are up to date" in up_to_date.out, up_to_date.text
    assert re.search(r"^total\s+0\s+0\s", up_to_date.out, re.MULTILINE), up_to_date.out
    forced = estimate_of(paid, force=True)
    assert forced.total().requests == 0 and forced.total().cached == sum(EXAMPLE_REQUESTS.values())
    assert messages_calls(server) == calls and state_files(paid) == before  # nothing sent, nothing written


def test_the_estimate_of_an_edited_prompt_counts_only_that_stage(
    paid: Workspace, server: FakeAnthropicServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert paid.cli("run", "-q").code == 0
    from mksap_plugins.stages import cloze
    from mksap_plugins.stages.prompts import Prompt, load_prompt

    edited = Prompt("cloze", "edited", load_prompt("cloze").text + "\nPrefer the most specific term.\n")
    monkeypatch.setattr(cloze, "load_prompt", lambda name: edited)
    estimate = estimate_of(paid)
    assert {s.stage: s.requests for s in estimate.stages if s.requests} == {"cloze": 15}


def test_a_missing_key_is_reported_and_nothing_is_sent(
    paid: Workspace, server: FakeAnthropicServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    result = paid.cli("run", "--estimate")
    assert result.code == 0, result.text
    assert "provider 'anthropic' is not ready: no API key: set ANTHROPIC_API_KEY" in result.out
    assert server.requests == []
    monkeypatch.setenv("MKSAP_PROVIDER", "auto")  # auto would pass anthropic over: say so
    auto = paid.cli("run", "--estimate")
    assert "would use 'offline' instead" in auto.out and "--estimate --provider anthropic" in auto.out
    assert "answered by a local provider: free" in auto.out


# -- the spending cap ---------------------------------------------------------------------------


def unique_bank(ws: Workspace, copies: int) -> None:
    """`copies` of every example under new ids, each critique with a sentence of its own, so
    every question makes requests of its own (clinical tables stay shared)."""
    shutil.rmtree(ws.data)
    n = 0
    for src in sorted(EXAMPLES.glob("*/*/*.json")):
        for _ in range(copies):
            n += 1
            qid = f"{src.stem[:-3]}{n:03d}"
            folder = ws.data / src.parent.parent.name / qid
            shutil.copytree(src.parent, folder)
            (folder / src.name).unlink()
            doc = load_json(src)
            doc["question_id"] = qid
            doc["critique"] += f" Guideline item {n} recommends reassessing the response to treatment periodically."
            (folder / f"{qid}.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")


def test_max_cost_stops_before_the_cap_with_16_in_flight_and_the_next_run_pays_nothing_twice(
    paid: Workspace, server: FakeAnthropicServer, responder: Responder, monkeypatch: pytest.MonkeyPatch
) -> None:
    unique_bank(paid, 3)
    server.latency = 0.3
    monkeypatch.setenv("MKSAP_JOBS", "32")
    monkeypatch.setenv("MKSAP_MAX_CONCURRENCY", "16")
    full = estimate_of(paid).dollars("plain")
    cap = round(full * 0.4, 4)
    capped = paid.cli("run", "-q", "--max-cost", str(cap))
    assert capped.code == ExitCode.COST_CAP == 4, capped.text
    assert server.max_in_flight == 16
    spent = ledger(paid)["cost_usd"]
    assert 0 < spent <= 1.25 * cap
    last = [line for line in capped.err.splitlines() if line.strip()]
    assert any(line.startswith("stopped at the cost cap: $") for line in last), capped.err
    assert not [line for line in last if "cost cap:" in line and line.startswith("FAILED")]  # one line, not one each
    first_run = set(responder.sent)
    responder.sent.clear()
    rest = paid.cli("run", "-q")
    assert rest.code == 0, rest.text
    assert responder.sent and not first_run & set(responder.sent)  # no request paid twice
    assert len(first_run) + len(responder.sent) == estimate_of(paid, force=True).total().cached


def test_max_cost_comes_from_config_and_an_unpriced_model_is_refused(
    paid: Workspace, server: FakeAnthropicServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    (paid.root / "mksap.toml").write_text("max_cost = 0.0001\n", encoding="utf-8")
    tiny = paid.cli("run", "-q")
    assert tiny.code == ExitCode.COST_CAP and messages_calls(server) == 0, tiny.text
    plain = paid.doit()  # plain doit ends the same way
    assert plain.code == ExitCode.COST_CAP and messages_calls(server) == 0, plain.text
    assert any(line.startswith("stopped at the cost cap: $") for line in plain.err.splitlines()), plain.err
    monkeypatch.setenv("MKSAP_MODEL", "llama3.1:8b")  # a local server's model: no list price
    unpriced = paid.cli("run", "-q")
    assert unpriced.code == ExitCode.ERROR and "max_cost needs the price of anthropic/llama3.1:8b" in unpriced.err
    batched = paid.cli("run", "-q", "--batch")
    assert batched.code == ExitCode.ERROR and "--batch with max_cost" in batched.err


# -- trying a few questions first ---------------------------------------------------------------


def test_limit_and_sample_pick_the_same_questions_every_time(ws: Workspace) -> None:
    def planned(*args: str) -> set[str]:
        result = ws.cli("run", "--dry-run", *args)
        assert result.code == 0, result.text
        return {name.split(":", 1)[1] for name in planned_tasks(result.out)}

    qids = ws.qids()
    assert planned("--limit", "3") == set(qids[:3]) == planned("--limit", "3")
    assert planned("cv", "--limit", "2") == {"cvcor25101", "cvmcq24101"}
    sample = planned("--sample", "6")
    assert len(sample) == 6 and planned("--sample", "6") == sample
    assert len({q[:2] for q in sample}) == 6  # one from each of the six systems
    assert ws.cli("run", "--dry-run", "--limit", "2", "--sample", "2").code == ExitCode.ERROR
    assert ws.cli("run", "--dry-run", "--sample", "0").code == ExitCode.ERROR


def test_sample_spreads_over_systems_in_proportion() -> None:
    sizes = (("cv", 40), ("en", 20), ("gi", 4))
    bank = [Question(s, f"{s}mcq24{i:03d}", Path("."), ()) for s, n in sizes for i in range(n)]
    picked = choose(bank, sample=8)
    assert picked == choose(list(bank), sample=8)
    by_system = {s: [q.qid for q in picked if q.system == s] for s in ("cv", "en", "gi")}
    assert {s: len(v) for s, v in by_system.items()} == {"cv": 5, "en": 2, "gi": 1}
    assert by_system["cv"] == ["cvmcq24004", "cvmcq24012", "cvmcq24020", "cvmcq24028", "cvmcq24036"]
    assert choose(bank, sample=500) == bank and choose(bank, limit=2) == bank[:2]


def test_estimate_of_a_sample(paid: Workspace, server: FakeAnthropicServer) -> None:
    result = paid.cli("run", "--estimate", "--sample", "4")
    assert result.code == 0 and "estimate for 4 question(s)" in result.out, result.text
    assert server.requests == []


# -- never pay twice ----------------------------------------------------------------------------


def test_a_forced_rerun_after_malformed_answers_makes_no_call_and_the_same_statements(
    paid: Workspace, server: FakeAnthropicServer, responder: Responder
) -> None:
    def every_third(body: dict[str, Any]) -> bool:
        return int(hashlib.sha256(body["messages"][0]["content"].encode()).hexdigest(), 16) % 3 == 0

    responder.malformed = every_third
    assert paid.cli("run", "-q").code == 0
    repairs = [body for body in message_bodies(server) if len(body["messages"]) == 3]
    assert len(repairs) >= 5  # a third of the first answers were repaired
    first, calls = statements(paid), messages_calls(server)
    forced = paid.cli("run", "-q", "--force")
    assert forced.code == 0, forced.text
    assert messages_calls(server) == calls  # zero calls
    assert statements(paid) == first


def test_the_repaired_answer_is_cached_under_the_original_request(
    paid: Workspace, server: FakeAnthropicServer, responder: Responder
) -> None:
    from mksap.contracts.provider import LLMRequest, Message, schema_of
    from mksap.contracts.stage import StageJob
    from mksap.contracts.statements import StatementDrafts
    from mksap.llm.runtime import ProviderRuntime

    settings = load_settings({"cache_dir": paid.cache}).settings
    cache = ResponseCache(settings.llm_cache_dir)
    runtime = ProviderRuntime(settings, Registry.load(), cache=cache)
    payload = {"educational_objective": "x", "sentences": [{"index": 0, "text": "Thiazides can cause hyponatremia."}]}
    request = LLMRequest(
        task="statements",
        system="Write statements.",
        messages=[Message(role="user", content=json.dumps(payload))],
        output_schema=schema_of(StatementDrafts),
        schema_name="StatementDrafts",
    )
    responder.malformed = lambda body: True
    job = StageJob(paid_question(), settings, {}, runtime.complete, {})
    try:
        repaired, _ = job.ask(request, StatementDrafts)
        again, response = job.ask(request, StatementDrafts)
    finally:
        runtime.close()
    assert messages_calls(server) == 2 and response.from_cache and again == repaired
    assert cache.get(request.key("anthropic", MODEL)) is not None


def paid_question() -> Question:
    return Question("np", "npmcq24101", Path("."), ())


# -- per-stage models ---------------------------------------------------------------------------


def test_a_stage_model_reaches_its_requests_fingerprint_usage_and_provenance(
    paid: Workspace, server: FakeAnthropicServer
) -> None:
    assert paid.cli("run", "-q").code == 0
    assert {body["model"] for body in message_bodies(server)} == {MODEL}
    (paid.root / "mksap.toml").write_text('[stages.cloze]\nmodel = "claude-haiku-4-5"\n', encoding="utf-8")
    plan = planned_tasks(paid.cli("run", "--dry-run").out)
    assert {name.split(":")[0] for name in plan} == {"cloze", "validate", "assemble"}
    assert all(reason == "config of stage cloze changed" for name, reason in plan.items() if name.startswith("cloze"))
    estimate = estimate_of(paid)
    assert [(m.model, m.stages, m.requests) for m in estimate.models] == [("claude-haiku-4-5", ["cloze"], 15)]
    mark = len(server.requests)
    rebuilt = paid.cli("run", "-q")
    assert rebuilt.code == 0, rebuilt.text
    sent = [(json.loads(body["messages"][0]["content"]), body["model"]) for body in message_bodies(server, mark)]
    assert sent and all(model == "claude-haiku-4-5" and "terms" in str(p) for p, model in sent)  # cloze only
    assert "anthropic/claude-haiku-4-5" in load_json(paid.build_dir / "usage.json")
    shutil.rmtree(paid.out)  # an output rewritten with this configuration records it
    shutil.rmtree(paid.cache)
    assert paid.cli("run", "-q").code == 0
    provenance = load_json(paid.output_json("cvmcq24101"))["mksap"]["provenance"]
    assert provenance["models"]["cloze"] == "anthropic/claude-haiku-4-5"
    assert provenance["models"]["critique"] == f"anthropic/{MODEL}"
    (paid.root / "mksap.toml").write_text('[stages.clozee]\nmodel = "claude-haiku-4-5"\n', encoding="utf-8")
    typo = paid.cli("run", "-q")
    assert typo.code == ExitCode.ERROR and "[stages.clozee] names no stage" in typo.err
