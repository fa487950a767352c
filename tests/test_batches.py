"""`mksap run --batch` and `mksap batches`: the real SDK over real HTTP to the fake server's
Message Batches endpoints, the real doit build on a copy of the examples."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mksap.bank import parse_targets
from mksap.batch.run import BatchOptions, merge_reports, run_batched, split
from mksap.build.runner import RunReport
from mksap.build.tasks import Build
from mksap.contracts.errors import ConfigError
from mksap.settings import load_settings
from tests.conftest import Workspace, load_json, summary_line

from .fakes.anthropic_server import FakeAnthropicServer, Reply
from .fakes.stage_answers import stage_responder

API_KEY = "sk-ant-batch-test-SECRET-9d2e"
POLL = ("--batch-poll", "0.05")


@pytest.fixture
def server() -> Iterator[FakeAnthropicServer]:
    with FakeAnthropicServer(responder=stage_responder()) as srv:
        yield srv


@pytest.fixture
def bws(ws: Workspace, server: FakeAnthropicServer, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """The workspace, talking to the fake server through the anthropic provider."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    monkeypatch.setenv("MKSAP_PROVIDER", "anthropic")
    return ws


def plain_calls(server: FakeAnthropicServer) -> list[dict[str, Any]]:
    return [r for r in server.requests if r["path"] == "/v1/messages"]


def submitted_ids(server: FakeAnthropicServer) -> list[str]:
    return [cid for batch in server.batches.created_ids for cid in batch]


def state(ws: Workspace) -> dict[str, Any]:
    return load_json(ws.cache / "batches" / "state.json")


def outputs(ws: Workspace) -> dict[str, Any]:
    """Every output question without its build time (the rest must not depend on the route)."""
    result = {}
    for qid in ws.qids():
        doc = load_json(ws.output_json(qid))
        doc["mksap"]["provenance"].pop("built_at", None)
        result[qid] = doc
    return result


def spawn_until_submitted(ws: Workspace, server: FakeAnthropicServer, *extra: str) -> subprocess.Popen[str]:
    """`mksap run --batch` as a child process, returned once its first batch is recorded."""
    proc = ws.spawn("run", "--batch", *POLL, *extra)
    deadline = time.monotonic() + 60
    state_file = ws.cache / "batches" / "state.json"
    while not (server.batches.created and state_file.exists() and state(ws)["batches"]):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no batch submitted:\n{proc.communicate()[1][-2000:]}")
        time.sleep(0.02)
    return proc


# -- the whole build through batches --------------------------------------------------------


def test_batch_run_builds_everything_then_a_plain_run_makes_no_call(
    bws: Workspace, server: FakeAnthropicServer
) -> None:
    result = bws.cli("run", "--batch", *POLL)
    assert result.code == 0, result.text
    assert summary_line(result.err).startswith(f"{len(bws.qids())} built, 0 up to date, 0 failed")
    assert all(bws.output_json(q).exists() for q in bws.qids())
    assert server.batches.created >= 3  # extraction, then keypoints, then cloze: rounds
    assert plain_calls(server) == []
    ids = submitted_ids(server)
    assert len(ids) == len(set(ids)), "a request was paid for twice"
    assert "batch round 1:" in result.err and "succeeded, 0 errored" in result.err
    assert "(batch):" in result.err and "est. $" in result.err  # usage priced as batch usage
    ledger = load_json(bws.build_dir / "usage.json")
    assert ledger["anthropic/claude-sonnet-4-6 (batch)"]["calls"] == len(ids)
    assert not (bws.cache / "batches" / "results").exists()  # every answer now in the LLM cache

    before = len(server.requests)
    again = bws.cli("run", "--force")
    assert again.code == 0, again.text
    assert len(server.requests) == before  # zero calls, zero batches: all from the cache
    assert "0 calls" in again.err

    for path in [*bws.cache.rglob("*"), *(bws.root / "home").rglob("*")]:
        if path.is_file():
            assert API_KEY.encode() not in path.read_bytes(), path
    assert API_KEY not in result.text + again.text


def test_batch_answers_match_their_requests_despite_random_order(
    bws: Workspace, server: FakeAnthropicServer
) -> None:
    """Results come back shuffled; matched by custom_id, they give the very outputs that
    direct calls give (a mix-up would put answers into the wrong questions)."""
    assert bws.cli("run", "--batch", *POLL).code == 0
    batched = outputs(bws)
    for folder in (bws.out, bws.cache, bws.root / "home" / ".cache"):
        subprocess.run(["rm", "-rf", str(folder)], check=True)
    direct = bws.cli("run")
    assert direct.code == 0, direct.text
    assert plain_calls(server)  # this time, one call per request
    assert outputs(bws) == batched


def test_an_invalid_batch_answer_is_never_cached_and_gets_its_repair_round(
    bws: Workspace, server: FakeAnthropicServer
) -> None:
    base = stage_responder()
    spoiled: list[str] = []

    def responder(body: dict[str, Any]) -> Reply:
        payload = json.loads(body["messages"][0]["content"])
        if len(body["messages"]) == 1 and "sentences" in payload and not spoiled:
            spoiled.append(body["messages"][0]["content"])
            return Reply.json_object({"statements": [{"not_a_statement": True}]})
        return base(body)

    server.responder = responder
    result = bws.cli("run", "--batch", *POLL)
    assert result.code == 0, result.text
    assert spoiled and plain_calls(server) == []
    items = [r["body"]["requests"] for r in server.requests if r["path"] == "/v1/messages/batches"]
    repairs = [i for batch in items for i in batch if len(i["params"]["messages"]) == 3]
    assert len(repairs) == 1 and repairs[0]["params"]["messages"][0]["content"] == spoiled[0]
    stats = json.loads(bws.cli("cache", "stats", "--json").out)["data"]
    # every request has one entry: the invalid answer is not among them, its request's entry is
    # the repaired answer (cached under both keys, so a rerun pays nothing)
    assert stats["entries"] == len(submitted_ids(server))
    calls = len(server.requests)
    assert bws.cli("run", "-q", "--force").code == 0 and len(server.requests) == calls


# -- interrupts and resume ------------------------------------------------------------------


def test_a_killed_run_resumes_polling_and_never_submits_twice(
    bws: Workspace, server: FakeAnthropicServer
) -> None:
    server.batches.polls_before_end = 10**6  # the first batch stays in progress
    proc = spawn_until_submitted(bws, server)
    proc.kill()  # SIGKILL: nothing gets to clean up
    proc.communicate()
    first = state(bws)["batches"][0]["id"]
    assert server.batches.created == 1

    server.batches.polls_before_end = 1  # a day later: it ends at the second poll
    result = bws.cli("run", "--batch", *POLL)
    assert result.code == 0, result.text
    assert f"batch {first}: ended" in result.err
    ids = submitted_ids(server)
    assert len(ids) == len(set(ids)), "the resumed run submitted the first batch's requests again"
    assert all(bws.output_json(q).exists() for q in bws.qids())
    assert [b["id"] for b in state(bws)["batches"]][0] == first
    assert all(b["fetched"] for b in state(bws)["batches"])


def test_answers_fetched_for_other_targets_wait_for_their_build(bws: Workspace, server: FakeAnthropicServer) -> None:
    server.batches.polls_before_end = 10**6
    proc = spawn_until_submitted(bws, server, "cv")
    proc.kill()
    proc.communicate()
    server.batches.polls_before_end = 0
    other = bws.cli("run", "en", "--batch", *POLL)  # collects cv's batch too, keeps its answers
    assert other.code == 0, other.text
    assert any((bws.cache / "batches" / "results").glob("*/*.json"))
    cv = bws.cli("run", "cv", "--batch", *POLL)
    assert cv.code == 0, cv.text
    ids = submitted_ids(server)
    assert len(ids) == len(set(ids)), "cv's answers were dropped and paid for again"
    assert not (bws.cache / "batches" / "results").exists()


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "term"])
def test_an_interrupt_while_waiting_keeps_the_batch_for_the_next_run(
    bws: Workspace, server: FakeAnthropicServer, sig: signal.Signals, code: int
) -> None:
    server.batches.polls_before_end = 10**6
    proc = spawn_until_submitted(bws, server)
    deadline = time.monotonic() + 60
    while not any(b.polls for b in list(server.batches.batches.values())):  # until it polls
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the run never polled its batch:\n{proc.communicate()[1][-2000:]}")
        time.sleep(0.02)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "`mksap run --batch` again collects them" in err
    assert state(bws)["batches"][0]["status"] == "in_progress"


# -- errored and expired items --------------------------------------------------------------


def fail_first_two(server: FakeAnthropicServer) -> list[str]:
    """The first batch item submitted errors and the second expires; returns their ids."""
    failed: list[str] = []

    def outcome(custom_id: str, params: dict[str, Any]) -> str | None:
        if len(failed) < 2 and custom_id not in failed:
            failed.append(custom_id)
            return "errored" if len(failed) == 1 else "expired"
        return None

    server.batches.outcome = outcome
    return failed


def test_errored_and_expired_items_fall_back_to_direct_calls(bws: Workspace, server: FakeAnthropicServer) -> None:
    failed = fail_first_two(server)
    result = bws.cli("run", "--batch", *POLL)
    assert result.code == 0, result.text
    assert "1 errored, 1 expired" in result.err
    assert len(plain_calls(server)) == 2  # exactly the two, at the normal price
    assert all(submitted_ids(server).count(cid) == 1 for cid in failed)  # not resubmitted
    assert all(bws.output_json(q).exists() for q in bws.qids())
    assert state(bws)["failures"] == {}


def test_errored_and_expired_items_are_reported_when_asked(bws: Workspace, server: FakeAnthropicServer) -> None:
    failed = fail_first_two(server)
    result = bws.cli("run", "--batch", *POLL, "--batch-failures", "report")
    assert result.code == 1, result.text
    assert plain_calls(server) == []
    lines = [line for line in result.err.splitlines() if line.startswith("FAILED ")]
    assert any("batch request errored (api_error: fake: this batch item errored)" in line for line in lines), lines
    assert any("batch request expired" in line for line in lines), lines
    # the two items' questions: three when one item is a clinical table two questions share
    assert 1 <= len(lines) <= 3

    server.batches.outcome = None  # a new run submits the reported ones again
    again = bws.cli("run", "--batch", *POLL)
    assert again.code == 0, again.text
    assert all(submitted_ids(server).count(cid) == 2 for cid in failed)
    assert plain_calls(server) == []


# -- mksap batches --------------------------------------------------------------------------


def test_batches_lists_ours_and_cancel_cancels_them(bws: Workspace, server: FakeAnthropicServer) -> None:
    assert "no batches" in bws.cli("batches", "--cache-dir", str(bws.cache)).out
    server.batches.polls_before_end = 10**6
    proc = spawn_until_submitted(bws, server)
    proc.kill()
    proc.communicate()
    batch_id = state(bws)["batches"][0]["id"]

    listed = bws.cli("batches", "--cache-dir", str(bws.cache))
    assert listed.code == 0, listed.text
    row = next(line for line in listed.out.splitlines() if line.startswith(batch_id))
    assert "in_progress" in row
    data = json.loads(bws.cli("batches", "--cache-dir", str(bws.cache), "--json").out)
    assert data["kind"] == "batches" and data["data"]["refreshed"] is True
    assert data["data"]["batches"][0]["id"] == batch_id

    wrong = bws.cli("batches", "cancel", "msgbatch_not_ours", "--cache-dir", str(bws.cache))
    assert wrong.code == 2 and "not a batch of this build" in wrong.err and batch_id in wrong.err
    canceled = bws.cli("batches", "cancel", "--cache-dir", str(bws.cache))
    assert canceled.code == 0, canceled.text
    assert f"cancel requested: {batch_id}" in canceled.out
    assert server.batches.batches[batch_id].status == "canceling"
    after = json.loads(bws.cli("batches", "--cache-dir", str(bws.cache), "--json").out)["data"]["batches"][0]
    assert after["status"] == "ended" and after["counts"]["canceled"] == after["requests"]

    # Canceled before this run: its requests are simply submitted again.
    server.batches.polls_before_end = 0
    result = bws.cli("run", "--batch", *POLL)
    assert result.code == 0, result.text
    first = server.batches.created_ids[0]
    assert all(submitted_ids(server).count(cid) == 2 for cid in first)


def test_a_cancel_during_a_run_stops_that_run(bws: Workspace, server: FakeAnthropicServer) -> None:
    server.batches.polls_before_end = 10**6
    proc = spawn_until_submitted(bws, server)
    assert bws.cli("batches", "cancel", "--cache-dir", str(bws.cache)).code == 0
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert "a batch was canceled meanwhile" in err
    assert server.batches.created == 1  # nothing resubmitted by the run that saw the cancel


# -- refusals and the pieces ----------------------------------------------------------------


def test_batch_mode_needs_the_anthropic_provider_and_the_cache(bws: Workspace) -> None:
    offline = bws.cli("run", "--batch", "--provider", "offline")
    assert offline.code == 2 and "--provider anthropic" in offline.err
    no_cache = bws.cli("run", "--batch", "--no-cache")
    assert no_cache.code == 2 and "--no-cache" in no_cache.err
    with pytest.raises(ConfigError, match="fallback, report"):
        BatchOptions(failures="sometimes")
    bad = bws.cli("run", "--batch", "--batch-failures", "sometimes")
    assert bad.code == 2 and "fallback, report" in bad.err


def test_rounds_are_capped_with_a_clear_message(bws: Workspace, server: FakeAnthropicServer) -> None:
    settings = load_settings({"data": bws.data, "out": bws.out, "cache_dir": bws.cache}).settings
    build = Build.open(settings, notice=lambda m: None)
    questions = parse_targets([], settings.data).discover(settings.data)
    notes: list[str] = []
    try:
        options = BatchOptions(poll_interval=0.05, max_rounds=2)
        report = run_batched(build, questions, jobs=4, quiet=True, options=options, notice=notes.append)
    finally:
        build.runtime.close()
    assert report.exit_code == 1
    assert any("stopped after 2 rounds" in n and "mksap run --batch" in n for n in notes), notes
    assert report.reasons and all(r.startswith("waiting for batch") for r in report.reasons.values())
    assert server.batches.created == 1  # the last round's requests are not submitted


def test_split_respects_the_request_and_size_limits() -> None:
    items = [{"custom_id": f"{i:064x}", "params": {"text": "x" * 100}} for i in range(10)]
    assert [len(c) for c in split(items, 4, 10**6)] == [4, 4, 2]
    size = len(json.dumps(items[0], separators=(",", ":"))) + 1
    assert [len(c) for c in split(items, 100, 3 * size)] == [3, 3, 3, 1]
    assert [len(c) for c in split(items[:1], 100, 10)] == [1]  # an oversized item still goes alone
    assert sum(split(items, 3, 5 * size), []) == items  # order kept, nothing lost


def test_merge_keeps_each_tasks_last_real_outcome() -> None:
    total = RunReport()
    merge_reports(total, RunReport(tasks={"critique:q": "built", "cloze:q": "failed"}, reasons={"cloze:q": "wait"}))
    merge_reports(total, RunReport(tasks={"critique:q": "up-to-date", "cloze:q": "built"}))
    assert total.tasks == {"critique:q": "built", "cloze:q": "built"} and total.reasons == {}
    assert total.exit_code == 0


def test_state_file_is_the_only_record_and_holds_no_prompt(bws: Workspace, server: FakeAnthropicServer) -> None:
    assert bws.cli("run", "--batch", *POLL).code == 0
    files = sorted(p.relative_to(bws.cache / "batches") for p in (bws.cache / "batches").rglob("*") if p.is_file())
    assert files == [Path("state.json")]
    text = (bws.cache / "batches" / "state.json").read_text()
    assert "critique" not in text.lower() and API_KEY not in text


# -- a create whose answer was lost -----------------------------------------------------------


@pytest.fixture
def lws(bws: Workspace) -> Workspace:
    """The batch workspace (the anthropic provider lists batches: a lost create is found)."""
    return bws


def spawn_until_stalled(ws: Workspace, server: FakeAnthropicServer) -> subprocess.Popen[str]:
    """`mksap run --batch` as a child, returned while its first create hangs in the fake API."""
    proc = ws.spawn("run", "--batch", *POLL)
    if not server.batches.stalled.wait(timeout=60) or proc.poll() is not None:
        proc.kill()
        pytest.fail(f"no create reached the API:\n{proc.communicate()[1][-2000:]}")
    return proc


def test_a_create_killed_in_flight_is_found_again_and_never_paid_twice(
    lws: Workspace, server: FakeAnthropicServer
) -> None:
    server.batches.stall_create = "after"  # the API makes the batch, its answer never arrives
    proc = spawn_until_stalled(lws, server)
    (pending,) = state(lws)["pending"]  # written before the create was sent
    keys = load_json(lws.cache / "batches" / "pending" / f"{pending['token']}.json")["keys"]
    assert state(lws)["batches"] == [] and sorted(keys) == sorted(server.batches.created_ids[0])
    proc.kill()  # SIGKILL inside the create
    proc.communicate()
    server.batches.release()
    (made,) = server.batches.batches

    listed = lws.cli("batches", "--cache-dir", str(lws.cache))  # ours already, for `mksap batches`
    assert listed.code == 0, listed.text
    assert any(line.startswith(made) for line in listed.out.splitlines()), listed.out
    assert f"made batch {made}" in listed.err

    server.batches.polls_before_end = 0
    result = lws.cli("run", "--batch", *POLL)
    assert result.code == 0, result.text
    assert f"made batch {made}; adopted, its answers will be used" in result.err
    ids = submitted_ids(server)
    assert len(ids) == len(set(ids)), "the requests of the lost create were paid for twice"
    after = state(lws)
    assert after["pending"] == [] and after["batches"][0]["id"] == made and after["batches"][0]["adopted"]
    assert not (lws.cache / "batches" / "pending").exists()
    assert all(lws.output_json(q).exists() for q in lws.qids())


@pytest.mark.parametrize("how", ["killed", "failed"])
def test_a_create_that_never_reached_the_api_is_sent_again_once(
    lws: Workspace, server: FakeAnthropicServer, how: str
) -> None:
    server.batches.stall_create = "before"  # lost before the API did anything
    proc = spawn_until_stalled(lws, server)
    if how == "killed":
        proc.kill()
        proc.communicate()
        server.batches.release()
    else:  # the API answers 500: the outcome of a create is unknown, so it is not retried
        server.batches.release()
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 2 and "not retried: it may have been done" in err, err[-2000:]
    assert len(state(lws)["pending"]) == 1 and server.batches.created == 0

    result = lws.cli("run", "--batch", *POLL)
    assert result.code == 0, result.text
    assert "never reached the API; its requests go out again" in result.err
    ids = submitted_ids(server)
    assert ids and len(ids) == len(set(ids))
    assert state(lws)["pending"] == []


def test_a_create_killed_in_flight_can_be_canceled_before_the_next_run(
    lws: Workspace, server: FakeAnthropicServer
) -> None:
    server.batches.polls_before_end = 10**6
    server.batches.stall_create = "after"
    proc = spawn_until_stalled(lws, server)
    proc.kill()
    proc.communicate()
    server.batches.release()
    (made,) = server.batches.batches
    canceled = lws.cli("batches", "cancel", made, "--cache-dir", str(lws.cache))
    assert canceled.code == 0, canceled.text
    assert f"cancel requested: {made}" in canceled.out
    assert server.batches.batches[made].status == "canceling"


def test_several_batches_that_could_be_the_lost_one_are_told_apart_by_their_results(tmp_path: Path) -> None:
    """Same size, same minute: only the results' custom_ids say which is ours; while they
    cannot tell (still processing), the run stops rather than pay twice."""
    import asyncio
    from datetime import UTC, datetime

    from mksap.batch.api import BatchCounts, BatchInfo, BatchItemResult
    from mksap.batch.pending import look_up
    from mksap.batch.state import BatchState, BatchStore, PendingCreate

    keys = [f"{i:064x}" for i in range(3)]
    store = BatchStore(tmp_path)
    st = BatchState()
    pending = PendingCreate.before_create(requests=3, round_no=1, provider="p", model="m")
    store.begin_create(st, pending, keys)
    now = datetime.now(UTC).isoformat(timespec="seconds")

    def info(batch_id: str, status: str) -> BatchInfo:
        return BatchInfo(id=batch_id, status=status, counts=BatchCounts(processing=3), created_at=now)  # type: ignore[arg-type]

    class API:
        def __init__(self, batches: list[BatchInfo], results: dict[str, list[str]]) -> None:
            self.batches, self.results = batches, results

        async def list_batches(self, since: str) -> list[BatchInfo]:
            return self.batches

        async def fetch_results(self, batch_id: str, on_item: Any) -> int:
            for cid in self.results[batch_id]:
                on_item(BatchItemResult(custom_id=cid, outcome="succeeded"))
            return len(self.results[batch_id])

    class Runtime:
        def call(self, coro: Any) -> Any:
            return asyncio.run(coro)

    theirs = [f"{i:064x}" for i in range(10, 13)]
    ended = API([info("b1", "ended"), info("b2", "ended")], {"b1": theirs, "b2": keys})
    assert look_up(ended, Runtime(), st, store, pending).found.id == "b2"  # type: ignore[arg-type, union-attr]
    running = API([info("b1", "in_progress"), info("b2", "in_progress")], {})
    lookup = look_up(running, Runtime(), st, store, pending)  # type: ignore[arg-type]
    assert lookup.found is None and [b.id for b in lookup.candidates] == ["b1", "b2"]
    assert "may have made any of b1, b2" in lookup.describe(pending)
    long_ago = "2020-01-01T00:00:00+00:00"
    old = API([BatchInfo(id="b0", status="ended", counts=BatchCounts(succeeded=3), created_at=long_ago)], {})
    assert look_up(old, Runtime(), st, store, pending).never_created  # type: ignore[arg-type]
