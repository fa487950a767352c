"""Concurrency that follows the rate limit: the pieces of `mksap.llm.limits` alone, then the real
providers (official SDKs, real HTTP) through the runtime against the fake APIs' rate limits.

Timing assertions are loose on purpose: the machine is small and shared. They check behaviour
(no storm of 429s, pacing near the stated limit, the window following the headers), not speed.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mksap.build.progress import LogProgress
from mksap.contracts.provider import LLMRequest, Message
from mksap.contracts.registry import Registry
from mksap.llm.limits import (
    PACE,
    START_WINDOW,
    ConcurrencyWindow,
    Cost,
    ProviderLimits,
    RateLimiter,
    RateReport,
    in_flight_line,
)
from mksap.llm.retry import duration, seconds_until
from mksap.llm.runtime import ProviderRuntime
from mksap.settings import Settings

from .fakes import anthropic_server, openai_server
from .fakes.rate_limit import RateLimit

API_KEY = "sk-test-SECRET-adaptive-31f0"


def anthropic_headers(**kinds: tuple[int, int]) -> dict[str, str]:
    reset = (datetime.now(UTC) + timedelta(seconds=30)).isoformat(timespec="seconds").replace("+00:00", "Z")
    headers = {}
    for kind, (limit, remaining) in kinds.items():
        name = f"anthropic-ratelimit-{kind.replace('_', '-')}"
        headers |= {f"{name}-limit": str(limit), f"{name}-remaining": str(remaining), f"{name}-reset": reset}
    return headers


def request(i: int = 0, system: str = "You write flashcards.") -> LLMRequest:
    return LLMRequest(
        task="statements",
        system=system,
        messages=[Message(role="user", content=f"Question {i}: ACE inhibitors cause cough.")],
        output_schema={"type": "object"},
        schema_name="Answer",
        max_tokens=64,
    )


# -- headers ----------------------------------------------------------------------------------


def test_anthropic_headers_give_each_limit_and_drop_the_repeated_tokens_limit() -> None:
    headers = anthropic_headers(requests=(50, 49), input_tokens=(30_000, 27_000), output_tokens=(8_000, 400))
    headers |= anthropic_headers(tokens=(8_000, 400))  # the tighter of input and output, repeated
    report = RateReport.from_headers(headers)
    assert set(report.quotas) == {"requests", "input_tokens", "output_tokens"}
    assert report.quotas["requests"].limit == 50 and report.quotas["requests"].remaining == 49
    reset = report.quotas["input_tokens"].reset
    assert reset is not None and 25 <= reset <= 31  # an RFC 3339 time, read as seconds from now
    assert report.headroom(Cost(1, 1000, 400)) and not report.headroom(Cost(1, 1000, 401))  # output: 400 left


def test_anthropic_tokens_headers_alone_are_a_combined_limit() -> None:
    report = RateReport.from_headers(anthropic_headers(requests=(1000, 990), tokens=(80_000, 70_000)))
    assert set(report.quotas) == {"requests", "tokens"} and report.headroom(Cost(990, 70_000, 0))


def test_openai_headers_with_duration_resets() -> None:
    headers = {
        "x-ratelimit-limit-requests": "500",
        "x-ratelimit-remaining-requests": "499",
        "x-ratelimit-reset-requests": "120ms",
        "x-ratelimit-limit-tokens": "150000",
        "x-ratelimit-remaining-tokens": "149000",
        "x-ratelimit-reset-tokens": "6m0s",
        "retry-after": "2",
    }
    report = RateReport.from_headers(headers)
    assert report.quotas["requests"].reset == pytest.approx(0.12)
    assert report.quotas["tokens"].reset == pytest.approx(360.0)
    assert report.quotas["tokens"].limit == 150_000 and report.retry_after == 2.0
    assert not report.headroom(Cost(500))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("6m0s", 360.0), ("20ms", 0.02), ("1s", 1.0), ("1h2m3.5s", 3723.5), ("1.5", 1.5), ("soon", None), ("", None)],
)
def test_durations(text: str, seconds: float | None) -> None:
    assert duration(text) == (pytest.approx(seconds) if seconds is not None else None)


def test_reset_times() -> None:
    assert seconds_until("2000-01-01T00:00:00Z") == 0.0  # in the past: now
    soon = seconds_until((datetime.now(UTC) + timedelta(seconds=90)).isoformat())
    assert soon is not None and 85 <= soon <= 91
    assert seconds_until("not a time") is None and seconds_until(None) is None


def test_missing_or_garbled_headers_state_no_limit() -> None:
    assert RateReport.from_headers({}).quotas == {}
    assert not RateReport.from_headers({}).headroom(Cost())
    garbled = {
        "anthropic-ratelimit-requests-limit": "many",
        "anthropic-ratelimit-requests-remaining": "3",
        "x-ratelimit-limit-requests": "0",
        "x-ratelimit-remaining-requests": "0",
        "anthropic-ratelimit-input-tokens-limit": "1000",  # no remaining: not a quota
    }
    assert RateReport.from_headers(garbled).quotas == {}


# -- the window -------------------------------------------------------------------------------


def test_window_grows_by_one_up_to_the_ceiling_and_halves_once_a_round() -> None:
    async def scenario() -> None:
        window = ConcurrencyWindow(ceiling=10, start=8)
        for _ in range(5):
            window.widen()
        assert window.limit == 10  # never above the ceiling
        tickets = [await window.acquire() for _ in range(10)]
        window.halve(tickets[0])
        window.halve(tickets[5])  # the same round of calls: no second halving
        assert window.limit == 5 and window.in_flight == 10  # the calls in flight finish as they will
        for _ in tickets:
            window.release()
        newer = await window.acquire()
        window.halve(newer)  # a call admitted after the halving: a new round
        assert window.limit == 2
        for _ in range(3):
            window.halve(None)
        assert window.limit == 1  # never below one

    asyncio.run(scenario())


def test_window_holds_calls_until_a_slot_frees_or_it_widens() -> None:
    async def scenario() -> list[str]:
        window = ConcurrencyWindow(ceiling=4, start=1)
        order: list[str] = []
        await window.acquire()

        async def wait(name: str) -> None:
            await window.acquire()
            order.append(name)

        tasks = [asyncio.create_task(wait(n)) for n in ("b", "c")]
        await asyncio.sleep(0.01)
        assert order == [] and window.in_flight == 1
        window.widen()
        await asyncio.sleep(0.01)
        assert order == ["b"]
        window.release()
        await asyncio.gather(*tasks)
        return order

    assert asyncio.run(scenario()) == ["b", "c"]


def test_a_cancelled_waiter_gives_its_slot_back() -> None:
    async def scenario() -> int:
        window = ConcurrencyWindow(ceiling=1, start=1)
        await window.acquire()
        waiter = asyncio.create_task(window.acquire())
        await asyncio.sleep(0.01)
        waiter.cancel()
        await asyncio.sleep(0.01)
        window.release()
        return window.in_flight

    assert asyncio.run(scenario()) == 0


# -- one provider's limits --------------------------------------------------------------------


def limits(ceiling: int = 256, rpm: int = 0, tpm: int = 0, adaptive: bool = True) -> ProviderLimits:
    return ProviderLimits(ceiling, rpm, tpm, adaptive=adaptive)


def call(lim: ProviderLimits, headers: dict[str, str], *, refused: bool = False, hold: int = 0, after: int = 0) -> None:
    """One call through `lim` whose answer has `headers`, with `hold` others sent before it and
    `after` others sent after it in flight when the answer comes."""

    async def other() -> None:
        async with lim.admit(request()):
            await asyncio.sleep(0.05)

    async def scenario() -> None:
        others = [asyncio.create_task(other()) for _ in range(hold)]
        await asyncio.sleep(0.01)
        async with lim.admit(request()):
            others += [asyncio.create_task(other()) for _ in range(after)]
            await asyncio.sleep(0.01)
            lim.observe(headers, refused)
        await asyncio.gather(*others)

    asyncio.run(scenario())


def test_an_adaptive_provider_starts_low_and_a_fixed_one_at_the_ceiling() -> None:
    assert limits().window.limit == START_WINDOW
    assert limits(adaptive=False).window.limit == 256
    assert limits(ceiling=4).window.limit == 4


def test_headroom_widens_only_a_full_window() -> None:
    lim = limits()
    roomy = anthropic_headers(requests=(4000, 3990))
    call(lim, roomy, hold=2)  # 3 of 8 in flight: the window is not what holds calls back
    assert lim.window.limit == START_WINDOW
    call(lim, roomy, hold=START_WINDOW - 1)
    assert lim.window.limit == START_WINDOW + 1
    call(lim, anthropic_headers(requests=(4000, START_WINDOW)), hold=START_WINDOW)  # no room for another round
    assert lim.window.limit == START_WINDOW + 1


def test_a_429_halves_the_window_and_pauses_new_calls() -> None:
    lim = limits()
    call(lim, {**anthropic_headers(requests=(60, 0)), "retry-after": "7"}, refused=True)
    assert lim.window.limit == START_WINDOW // 2 and lim.refusals == 1
    assert 0 < lim.rates._resume_at - time.monotonic() <= 7  # held for its retry-after, no longer


def test_answers_without_rate_limit_headers_leave_the_window_alone() -> None:
    lim = limits()
    call(lim, {"content-type": "application/json"}, hold=START_WINDOW - 1)
    assert lim.window.limit == START_WINDOW
    assert not any(b.limited for b in lim.rates.buckets.values())  # nothing learnt: no pacing


def test_the_rates_follow_the_headers_and_the_users_caps_stay_caps() -> None:
    learnt = RateLimiter(rpm=0, tpm=0)
    learnt.learn(RateReport.from_headers(anthropic_headers(requests=(1200, 1000), output_tokens=(90_000, 80_000))))
    requests = learnt.buckets["requests"]
    assert requests.rate == pytest.approx(1200 * PACE / 60) and requests.capacity == 1200
    assert requests.level == pytest.approx(1000, abs=1)  # the server's bucket, not a full one
    assert learnt.buckets["output_tokens"].rate == pytest.approx(90_000 * PACE / 60)
    assert not learnt.buckets["input_tokens"].limited  # not stated: not limited

    capped = RateLimiter(rpm=600, tpm=0)
    capped.learn(RateReport.from_headers(anthropic_headers(requests=(4000, 4000))))
    assert capped.buckets["requests"].rate == pytest.approx(10.0)  # the user's 600 a minute binds


def test_the_level_counts_calls_sent_after_the_one_answered() -> None:
    lim = limits()
    call(lim, anthropic_headers(requests=(1000, 500)), hold=2, after=3)  # the server had not seen the 3 yet
    assert lim.rates.buckets["requests"].level == pytest.approx(497, abs=1.5)


def test_settling_corrects_the_estimate_with_the_usage() -> None:
    rates = RateLimiter(rpm=0, tpm=60_000)
    before = rates.buckets["tokens"].level
    expected, used = Cost(1, 1000, 500), Cost(1, 200, 100)
    rates.charge(expected)
    rates.settle(expected, used)
    assert rates.buckets["tokens"].level == pytest.approx(before - 300, abs=5)


def test_the_progress_line_shows_calls_in_flight() -> None:
    lim = limits()
    fixed = ProviderLimits(256, 0, 0, adaptive=False, local=True)
    assert in_flight_line([fixed]) is None  # local calls are not shown
    assert in_flight_line([lim, fixed]) == f"0 in flight (limit {START_WINDOW})"
    out = io.StringIO()
    progress = LogProgress(out, every=0.0)
    progress.start(10, gauge=lambda: "37 in flight (limit 40)")
    progress.update(3, 0)
    assert "3/10 tasks, 0 failed, 37 in flight (limit 40)," in out.getvalue()


# -- the fake APIs' own limits ----------------------------------------------------------------


def post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, str]]:
    data = json.dumps(body).encode()
    req = urllib.request.Request(url, data, {"content-type": "application/json", "x-api-key": "k"})
    try:
        with urllib.request.urlopen(req, timeout=10) as answer:
            return answer.status, {k.lower(): v for k, v in answer.headers.items()}
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}


def test_the_fake_messages_api_refuses_past_its_limit_with_retry_after_and_headers() -> None:
    body = {"model": "m", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    with anthropic_server.FakeAnthropicServer(rate_limit=RateLimit(rpm=60, input_tpm=100_000)) as server:
        server.limits.leave(2)
        first, headers = post(server.url + "/v1/messages", body)
        assert first == 200 and headers["anthropic-ratelimit-requests-remaining"] == "1"
        assert "anthropic-ratelimit-output-tokens-limit" not in headers  # no output limit set: not stated
        assert headers["anthropic-ratelimit-input-tokens-limit"] == "100000"
        assert headers["anthropic-ratelimit-tokens-limit"] == "100000"
        assert post(server.url + "/v1/messages", body)[0] == 200
        refused, headers = post(server.url + "/v1/messages", body)
        assert refused == 429 and float(headers["retry-after"]) >= 1
        assert headers["anthropic-ratelimit-requests-remaining"] == "0"
        assert len(server.refused) == 1
        time.sleep(1.1)  # continuous refill: one request a second at 60 a minute
        assert post(server.url + "/v1/messages", body)[0] == 200


def test_the_fake_messages_api_can_send_no_rate_limit_headers() -> None:
    body = {"model": "m", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    with anthropic_server.FakeAnthropicServer(rate_limit=None) as server:
        status, headers = post(server.url + "/v1/messages", body)
    assert status == 200 and not [k for k in headers if "ratelimit" in k]


# -- end to end: runtime, provider, SDK, HTTP, fake API ---------------------------------------


def runtime_for(provider: str, base_url: str, tmp_path: Path, **settings: Any) -> ProviderRuntime:
    values: dict[str, Any] = {"model": "claude-sonnet-4-6", "call_timeout": 30.0, **settings}
    s = Settings(provider=provider, cache_dir=tmp_path / "c", llm_cache_dir=tmp_path / "llm", **values)
    s = s.with_plugin_options(provider, api_key=API_KEY, base_url=base_url)
    return ProviderRuntime(s, Registry.load())


def complete_all(runtime: ProviderRuntime, n: int, threads: int = 64) -> None:
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda i: runtime.complete(request(i)), range(n)))


def messages(server: anthropic_server.FakeAnthropicServer) -> list[float]:
    return sorted(r["t"] for r in server.requests if r["path"] == "/v1/messages")


def test_the_anthropic_provider_paces_at_the_limit_without_a_storm_of_429s(tmp_path: Path) -> None:
    import anthropic  # noqa: F401  (~1.4 s, before the clock of the limit starts)

    answer = anthropic_server.Reply.json_object({"ok": True})
    limit = RateLimit(rpm=2400)  # 40 a second, a minute's worth of burst: drained below
    with anthropic_server.FakeAnthropicServer(responder=lambda b: answer, latency=0.2, rate_limit=limit) as server:
        runtime = runtime_for("anthropic", server.url, tmp_path)
        server.limits.leave(12)  # the steady state of a busy key: a dozen requests left
        try:
            complete_all(runtime, 160)
        finally:
            runtime.close()
        stamps = messages(server)
    assert len(server.refused) <= 2  # at most the jitter of the first round: no storm
    assert len(stamps) == 160 + len(server.refused)
    steady = stamps[60:]  # the dozen left (and what refilled while the client started) are spent
    rate = (len(steady) - 1) / (steady[-1] - steady[0]) * 60
    print(f"steady rate {rate:.0f} a minute, {len(server.refused)} refused")
    assert 600 <= rate <= 2400 * 1.1  # paced at the limit; on a busy machine at least a quarter of it
    limits = runtime._limits[("anthropic", "claude-sonnet-4-6")]
    assert limits.rates.learnt["requests"] == 2400 and limits.refusals == len(server.refused)


def test_a_429_from_the_api_halves_the_window_and_the_call_is_retried(tmp_path: Path) -> None:
    answer = anthropic_server.Reply.json_object({"ok": True})
    with anthropic_server.FakeAnthropicServer(responder=lambda b: answer, latency=0.1) as server:
        server.enqueue(anthropic_server.Reply.rate_limited(retry_after=0.2))
        runtime = runtime_for("anthropic", server.url, tmp_path)
        try:
            runtime.complete(request(0))
            limits = runtime._limits[("anthropic", "claude-sonnet-4-6")]
            assert limits.refusals == 1 and limits.window.limit == START_WINDOW // 2
        finally:
            runtime.close()
        assert len(messages(server)) == 2


def test_a_server_without_rate_limit_headers_keeps_the_starting_window(tmp_path: Path) -> None:
    answer = anthropic_server.Reply.json_object({"ok": True})
    with anthropic_server.FakeAnthropicServer(responder=lambda b: answer, latency=0.2, rate_limit=None) as server:
        runtime = runtime_for("anthropic", server.url, tmp_path, max_concurrency=64)
        try:
            complete_all(runtime, 40)
            assert runtime.concurrency() == f"0 in flight (limit {START_WINDOW})"
        finally:
            runtime.close()
        assert server.max_in_flight <= START_WINDOW


def test_the_window_opens_up_to_the_ceiling_when_the_key_has_room(tmp_path: Path) -> None:
    answer = anthropic_server.Reply.json_object({"ok": True})
    with anthropic_server.FakeAnthropicServer(responder=lambda b: answer, latency=0.3) as server:
        runtime = runtime_for("anthropic", server.url, tmp_path, max_concurrency=24)
        try:
            complete_all(runtime, 120)
            limit = runtime._limits[("anthropic", "claude-sonnet-4-6")].window.limit
        finally:
            runtime.close()
    assert limit == 24 and server.max_in_flight == 24 and not server.refused


def test_the_openai_provider_reads_x_ratelimit_headers(tmp_path: Path) -> None:
    import openai  # noqa: F401  (before the clock of the limit starts)

    limit = RateLimit(rpm=600, tpm=1_000_000)
    with openai_server.FakeOpenAIServer(latency=0.1, models=["m"], rate_limit=limit) as server:
        runtime = runtime_for("openai", server.base_url, tmp_path, model="m")
        server.limits.leave(10)
        try:
            complete_all(runtime, 40, threads=16)
            limits = runtime._limits[("openai", "m")]
        finally:
            runtime.close()
        stamps = sorted(r["t"] for r in server.chat_requests())
    assert limits.rates.learnt == {"requests": 600, "tokens": 1_000_000}
    assert limits.rates.buckets["requests"].rate == pytest.approx(600 * PACE / 60)
    assert len(server.refused) <= 2
    steady = stamps[12:]
    assert (len(steady) - 1) / (steady[-1] - steady[0]) * 60 <= 600 * 1.1


def test_worker_threads_follow_the_ceiling_only_for_providers_that_follow_rate_limits(tmp_path: Path) -> None:
    api = runtime_for("anthropic", "http://127.0.0.1:9", tmp_path, max_concurrency=300)
    offline = ProviderRuntime(Settings(provider="offline", cache_dir=tmp_path / "c"), Registry.load())
    assert api.worker_threads(["critique", "cloze"]) == 300
    assert offline.worker_threads(["critique", "cloze"]) == 8
