"""The LLM response cache: a real joblib.Memory on disk."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import pytest

from mksap.contracts.errors import AnswerError, CacheError
from mksap.contracts.provider import LLMRequest, LLMResponse, Message, Usage
from mksap.contracts.registry import Registry
from mksap.contracts.statements import StatementDrafts
from mksap.llm.cache import ResponseCache, parse_age
from mksap.llm.runtime import ProviderRuntime
from mksap.settings import Settings
from tests.fakes import fake_provider

REPO = Path(__file__).resolve().parent.parent


def request(**changes: object) -> LLMRequest:
    base = LLMRequest(
        task="statements",
        system="You write statements.",
        messages=[Message(role="user", content="Aspirin lowers the risk of stroke in atrial fibrillation.")],
        output_schema=StatementDrafts.model_json_schema(),
        schema_name="StatementDrafts",
        context={"sentences": [{"index": 0, "text": "Aspirin lowers risk."}]},
        options={"effort": "low"},
    )
    return base.model_copy(update=changes)


def response(text: str = "x") -> LLMResponse:
    return LLMResponse(data={"statements": []}, raw_text=text, usage=Usage(input_tokens=3), provider="fake", model="m")


def test_miss_then_hit_round_trips_the_response(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "llm")
    key = request().key("fake", "m")
    assert cache.get(key) is None
    cache.put(key, response("answer"))
    hit = cache.get(key)
    assert hit is not None and hit.raw_text == "answer" and hit.usage.input_tokens == 3
    assert (cache.hits, cache.misses) == (1, 1)


@pytest.mark.parametrize(
    "change",
    [
        {"task": "cloze"},
        {"system": "Other instructions."},
        {"messages": [Message(role="user", content="Different source.")]},
        {"output_schema": {"type": "object"}},
        {"schema_name": "Other"},
        {"context": {"sentences": []}},
        {"max_tokens": 10},
        {"options": {"effort": "high"}},
    ],
)
def test_key_changes_with_every_request_field(change: dict[str, object]) -> None:
    assert request(**change).key("fake", "m") != request().key("fake", "m")


def test_key_changes_with_provider_and_model_and_is_stable() -> None:
    keys = {request().key("fake", "m"), request().key("other", "m"), request().key("fake", "m2")}
    assert len(keys) == 3
    assert request().key("fake", "m") == request().key("fake", "m")


def test_metadata_holds_only_the_hash(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "llm")
    key = request().key("fake", "m")
    cache.put(key, response("PROMPT-ANSWER-TEXT"))
    metadata = [p.read_text() for p in (tmp_path / "llm").rglob("metadata.json")]
    assert len(metadata) == 1
    assert key in metadata[0] and "PROMPT-ANSWER-TEXT" not in metadata[0] and "You write" not in metadata[0]


def runtime_for(
    tmp_path: Path, anthropic: dict[str, object] | None = None, **settings: object
) -> tuple[ProviderRuntime, ResponseCache]:
    registry = Registry()
    registry.add_module(fake_provider, "tests")
    s = Settings(provider="fake", llm_cache_dir=tmp_path / "llm", cache_dir=tmp_path / "c", **settings)
    s = s.with_plugin_options("anthropic", **(anthropic or {}))
    cache = ResponseCache(s.llm_cache_dir)
    return ProviderRuntime(s, registry, cache=cache), cache


def test_runtime_hit_makes_no_call_and_failures_are_not_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "calls.log"
    monkeypatch.setenv("FAKE_PROVIDER_LOG", str(log))
    runtime, cache = runtime_for(tmp_path)
    try:
        # an answer the stage rejects is not stored: the next identical request calls again
        def reject(data: dict[str, object]) -> object:
            return StatementDrafts.model_validate({"statements": "not a list"})

        with pytest.raises(AnswerError):
            runtime.complete(request(), reject)
        with pytest.raises(AnswerError):
            runtime.complete(request(), reject)
        assert len(log.read_text().splitlines()) == 2
        first = runtime.complete(request(), StatementDrafts.model_validate)
        second = runtime.complete(request(), StatementDrafts.model_validate)
        assert len(log.read_text().splitlines()) == 3
        assert not first.from_cache and second.from_cache and second.data == first.data
    finally:
        runtime.close()


def test_identical_requests_in_flight_cost_one_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "calls.log"
    monkeypatch.setenv("FAKE_PROVIDER_LOG", str(log))
    monkeypatch.setenv("FAKE_PROVIDER_DELAY", "0.3")
    runtime, _ = runtime_for(tmp_path)
    try:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda _: runtime.complete(request(), None), range(8)))
        assert len(log.read_text().splitlines()) == 1
        assert all(r.data == results[0].data for r in results)
        assert runtime.totals[("fake", "fake-1")].merged == 7
    finally:
        runtime.close()


def _put_and_get(args: tuple[str, int]) -> bool:
    location, i = args
    cache = ResponseCache(Path(location))
    same, own = "shared-key", f"key-{i}"
    cache.put(same, response("same"))
    cache.put(own, response(own))
    a, b = cache.get(same), cache.get(own)
    return a is not None and a.raw_text == "same" and b is not None and b.raw_text == own


def test_concurrent_threads_and_processes_never_corrupt(tmp_path: Path) -> None:
    location = str(tmp_path / "llm")
    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(_put_and_get, [(location, i) for i in range(32)]))
    with ProcessPoolExecutor(4) as pool:
        assert all(pool.map(_put_and_get, [(location, 100 + i) for i in range(16)]))
    cache = ResponseCache(Path(location))
    assert cache.stats().entries == 1 + 32 + 16


def test_corrupt_entry_is_a_miss_with_a_warning_and_is_replaced(tmp_path: Path) -> None:
    warnings: list[str] = []
    cache = ResponseCache(tmp_path / "llm", warn=warnings.append)
    cache.put("k", response("good"))
    (pkl,) = (tmp_path / "llm").rglob("output.pkl")
    pkl.write_bytes(b"\x80\x04garbage that is not a pickle")
    assert cache.get("k") is None
    assert warnings and "treated as a miss" in warnings[0]
    cache.put("k", response("fresh"))
    hit = cache.get("k")
    assert hit is not None and hit.raw_text == "fresh"


def test_refresh_skips_lookups_but_overwrites(tmp_path: Path) -> None:
    ResponseCache(tmp_path / "llm").put("k", response("old"))
    refreshing = ResponseCache(tmp_path / "llm", refresh=True)
    assert refreshing.get("k") is None
    refreshing.put("k", response("new"))
    hit = ResponseCache(tmp_path / "llm").get("k")
    assert hit is not None and hit.raw_text == "new"


def test_cache_dir_is_private_and_unsafe_dirs_are_refused(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "llm")
    cache.put("k", response())
    assert (tmp_path / "llm").stat().st_mode & 0o777 == 0o700
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(CacheError, match="writable by other users"):
        ResponseCache(shared).get("k")
    if os.getuid() == 0:
        foreign = tmp_path / "foreign"
        foreign.mkdir(mode=0o700)
        os.chown(foreign, 65534, 65534)
        with pytest.raises(CacheError, match="owned by another user"):
            ResponseCache(foreign).get("k")


def test_prune_and_clear(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "llm")
    for i in range(3):
        cache.put(f"k{i}", response())
    old = next((tmp_path / "llm").rglob("output.pkl")).parent
    for f in old.iterdir():
        os.utime(f, (1_000_000_000, 1_000_000_000))
    os.utime(old, (1_000_000_000, 1_000_000_000))
    assert cache.prune(parse_age("30d")) == 1
    assert cache.stats().entries == 2
    assert cache.clear() == 2 and cache.stats().entries == 0
    with pytest.raises(CacheError):
        parse_age("soon")


PROGRAM = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from mksap.llm.cache import ResponseCache
    from mksap.contracts.provider import LLMResponse
    cache = ResponseCache(Path(sys.argv[2]))
    if sys.argv[1] == "put":
        cache.put("k", LLMResponse(data={}, raw_text="kept", provider="p", model="m"))
    else:
        print("hit" if cache.get("k") is not None else "miss")
    """
)


def _run_copy(code_dir: Path, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(code_dir)}
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            PROGRAM + "\nimport mksap; assert mksap.__file__.startswith(sys.argv[3])",
            *args,
            str(code_dir),
        ],
        env=env,
        cwd=code_dir,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def test_editing_other_code_keeps_the_cache_but_editing_the_shim_wipes_it(tmp_path: Path) -> None:
    """joblib wipes a function's entries when its source changes: only the shim may not change."""
    code = tmp_path / "code"
    shutil.copytree(REPO / "mksap", code / "mksap")
    location = str(tmp_path / "llm")
    _run_copy(code, "put", location)
    for module in ("cache.py", "runtime.py", "provider.py"):
        with (code / "mksap" / module).open("a") as f:
            f.write("\n# an edit elsewhere in the code\n")
    (code / "mksap" / "cache.py").write_text(
        (code / "mksap" / "cache.py").read_text().replace("STATS_FILE = ", "# moved\nSTATS_FILE = ")
    )
    assert _run_copy(code, "get", location) == "hit"
    shim = code / "mksap" / "cache_entry.py"
    shim.write_text(shim.read_text().replace("raise LookupError(key)", "raise LookupError(key)  # edited"))
    assert _run_copy(code, "get", location) == "miss"  # proves the test can fail


def test_api_key_never_reaches_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-ant-SECRET-never-store-me"
    runtime, _ = runtime_for(tmp_path, anthropic={"api_key": secret})
    try:
        runtime.complete(request(), None)
    finally:
        runtime.close()
    for f in (tmp_path / "llm").rglob("*"):
        if f.is_file():
            assert secret.encode() not in f.read_bytes(), f
