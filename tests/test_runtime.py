"""The provider runtime: one loop for all worker threads, limits, fallback, cancellation."""

from __future__ import annotations

import asyncio
import threading
import time
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar

import pytest

from mksap.contracts.errors import ConfigError, ProviderStopError, RunStopError
from mksap.contracts.provider import LLMRequest, LLMResponse, Message, Provider
from mksap.contracts.registry import Registry
from mksap.llm.limits import TokenBucket
from mksap.llm.runtime import ProviderRuntime, provider_chain
from mksap.settings import Settings


class SlowProvider(Provider):
    """Sleeps, and records how many calls overlap."""

    name = "slow"
    delay: ClassVar[float] = 0.3
    in_flight = 0
    peak = 0
    starts: ClassVar[list[float]] = []

    async def complete(self, request: LLMRequest) -> LLMResponse:
        cls = type(self)
        cls.in_flight += 1
        cls.peak = max(cls.peak, cls.in_flight)
        cls.starts.append(time.monotonic())
        try:
            await asyncio.sleep(cls.delay)
        finally:
            cls.in_flight -= 1
        return LLMResponse(data={"n": request.messages[0].content}, raw_text="{}", provider=self.name, model=self.model)


class BrokeProvider(Provider):
    """Out of quota on every call."""

    name = "broke"
    calls = 0

    async def complete(self, request: LLMRequest) -> LLMResponse:
        type(self).calls += 1
        raise ProviderStopError("broke: usage limit reached; top up the account")


def make_runtime(
    tmp_path: Path, provider: str, notices: list[str] | None = None, **settings: object
) -> ProviderRuntime:
    module = types.ModuleType("test_providers")

    def register_providers(register):  # type: ignore[no-untyped-def]
        register(SlowProvider)
        register(BrokeProvider)

    module.register_providers = register_providers  # type: ignore[attr-defined]
    registry = Registry()
    registry.add_module(module, "tests")
    s = Settings(provider=provider, cache_dir=tmp_path / "c", llm_cache_dir=tmp_path / "llm", **settings)
    sink = notices if notices is not None else []
    return ProviderRuntime(s, registry, notice=sink.append)


def req(i: int) -> LLMRequest:
    return LLMRequest(
        task="statements",
        system="s",
        messages=[Message(role="user", content=str(i))],
        output_schema={},
        schema_name="X",
    )


@pytest.fixture(autouse=True)
def reset_counters() -> None:
    SlowProvider.in_flight = SlowProvider.peak = 0
    SlowProvider.starts = []
    SlowProvider.delay = 0.3
    BrokeProvider.calls = 0


def test_64_calls_allowed_means_64_in_flight_from_worker_threads(tmp_path: Path) -> None:
    runtime = make_runtime(tmp_path, "slow", max_concurrency=64, rpm=0, tpm=0)
    try:
        with ThreadPoolExecutor(80) as pool:
            results = list(pool.map(lambda i: runtime.complete(req(i), None), range(128)))
    finally:
        runtime.close()
    assert [r.data["n"] for r in results] == [str(i) for i in range(128)]
    assert SlowProvider.peak == 64


def test_concurrency_limit_holds(tmp_path: Path) -> None:
    runtime = make_runtime(tmp_path, "slow", max_concurrency=4, rpm=0, tpm=0)
    SlowProvider.delay = 0.05
    try:
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda i: runtime.complete(req(i), None), range(32)))
    finally:
        runtime.close()
    assert SlowProvider.peak == 4


def test_requests_per_minute_are_never_exceeded(tmp_path: Path) -> None:
    # 1,200 rpm = 20 requests/s with a 10 s burst allowance of 200: 240 calls must spread out.
    runtime = make_runtime(tmp_path, "slow", max_concurrency=256, rpm=1200, tpm=0)
    SlowProvider.delay = 0.0
    try:
        with ThreadPoolExecutor(64) as pool:
            list(pool.map(lambda i: runtime.complete(req(i), None), range(240)))
    finally:
        runtime.close()
    starts = sorted(SlowProvider.starts)
    rate, burst = 20.0, 200
    for i, t0 in enumerate(starts):  # any window [t0, t0 + w] holds at most burst + rate * w starts
        for j in range(i, len(starts)):
            assert j - i + 1 <= burst + rate * (starts[j] - t0) + 1


def test_token_bucket_paces_after_the_burst() -> None:
    async def scenario() -> float:
        bucket = TokenBucket(per_minute=6000, burst_seconds=0.1)  # 100/s, burst 10
        t0 = time.monotonic()
        for _ in range(30):
            await bucket.take(1)
        return time.monotonic() - t0

    assert asyncio.run(scenario()) >= 0.19  # 20 beyond the burst at 100/s


def test_fallback_chain_moves_on_after_a_quota_stop(tmp_path: Path) -> None:
    notices: list[str] = []
    runtime = make_runtime(tmp_path, "broke,slow", notices, rpm=0, tpm=0)
    SlowProvider.delay = 0.0
    try:
        first = runtime.complete(req(1), None)
        second = runtime.complete(req(2), None)
    finally:
        runtime.close()
    assert first.provider == "slow" and second.provider == "slow"
    assert BrokeProvider.calls == 1  # a stopped provider gets no more work
    assert any("'broke' stopped" in n and "continuing on 'slow'" in n for n in notices)


def test_a_chain_with_nothing_left_stops_with_the_reason(tmp_path: Path) -> None:
    runtime = make_runtime(tmp_path, "broke")
    try:
        for i in (1, 2):  # the second at once: the run sends nothing more
            with pytest.raises(RunStopError, match="no provider left to answer: 'broke': .*usage limit"):
                runtime.complete(req(i), None)
    finally:
        runtime.close()
    assert BrokeProvider.calls == 1


def test_cancel_all_cancels_calls_in_flight(tmp_path: Path) -> None:
    runtime = make_runtime(tmp_path, "slow", rpm=0, tpm=0)
    SlowProvider.delay = 30
    errors: list[BaseException] = []

    def call() -> None:
        try:
            runtime.complete(req(1), None)
        except BaseException as e:  # noqa: BLE001 - the test inspects what the worker saw
            errors.append(e)

    worker = threading.Thread(target=call)
    worker.start()
    while SlowProvider.in_flight == 0:
        time.sleep(0.01)
    runtime.cancel_all()
    worker.join(timeout=5)
    runtime.close()
    assert not worker.is_alive() and errors and "Cancelled" in type(errors[0]).__name__


def test_unknown_provider_lists_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="valid: slow, broke"):
        make_runtime(tmp_path, "nope")


def test_auto_provider_is_offline_without_a_key_and_anthropic_with_one() -> None:
    registry = Registry.load()
    without = provider_chain(Settings(), registry)
    assert without.names == ["offline"] and "no API key" in without.passed_over["anthropic"]
    with_key = provider_chain(Settings().with_plugin_options("anthropic", api_key="sk-x"), registry)
    assert with_key.names == ["anthropic"] and with_key.passed_over == {}
    assert provider_chain(Settings(provider="offline, anthropic"), registry).names == ["offline", "anthropic"]


@pytest.mark.parametrize("given", ["", ",", " , "])
def test_an_empty_provider_name_is_a_clear_error(given: str) -> None:
    with pytest.raises(ConfigError, match="names no provider; give one of: .*offline"):
        provider_chain(Settings(provider=given), Registry.load())
