"""The claude-code, codex and gemini providers against scripted fake executables on PATH.

The fakes in `tests/fakes/bin` are real programs run through the real subprocess path; their
behaviour is set with FAKE_CLI_* variables (see `tests/fakes/bin/_fakecli.py`).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from mksap.contracts.errors import AnswerError, ProviderError, ProviderStopError
from mksap.contracts.provider import LLMRequest, Message, Provider
from mksap.contracts.statements import StatementDrafts
from mksap.settings import Settings
from mksap_plugins.providers import cli_tools
from mksap_plugins.providers.cli_tools import (
    ClaudeCodeProvider,
    CliProvider,
    CodexProvider,
    GeminiProvider,
    parse_answer,
    render_prompt,
)

FAKES = Path(__file__).resolve().parent / "fakes" / "bin"
PROVIDERS = [ClaudeCodeProvider, CodexProvider, GeminiProvider]
SYSTEM = "You turn MKSAP critiques into atomic flashcard statements. (system text marker)"
USER = "Source sentences:\n0. Aortic stenosis causes a late-peaking systolic murmur."
REPLY = {"statements": [{"statement": "Aortic stenosis causes a late-peaking murmur.", "source_index": 0}]}


@pytest.fixture
def fake_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Fakes first on PATH, a call log, and no FAKE_CLI_* leaking in; returns the log path."""
    for name in [n for n in os.environ if n.startswith("FAKE_CLI_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PATH", f"{FAKES}{os.pathsep}{os.environ.get('PATH', '')}")
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FAKE_CLI_LOG", str(log))
    monkeypatch.setenv("FAKE_CLI_PIDFILE", str(tmp_path / "pids"))
    return log


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(llm_cache_dir=tmp_path / "llm", cache_dir=tmp_path / "cache", **overrides)


def request(messages: list[Message] | None = None) -> LLMRequest:
    return LLMRequest(
        task="statements",
        system=SYSTEM,
        messages=messages or [Message(role="user", content=USER)],
        output_schema=StatementDrafts.model_json_schema(),
        schema_name="StatementDrafts",
    )


def calls(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def pids(tmp_path: Path) -> tuple[int, int]:
    child, grandchild = (tmp_path / "pids").read_text().split()
    return int(child), int(grandchild)


def running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def assert_cleaned_up(tmp_path: Path) -> None:
    """The child is gone (killed and reaped: no zombie), it did not end by itself (its 60 s
    hang was cut short, not waited out), and its grandchild is not running."""
    child, grandchild = pids(tmp_path)
    assert not Path(f"/proc/{child}").exists(), "the CLI process was not killed and reaped"
    assert not (tmp_path / "pids.slept").exists(), "the hanging CLI was waited out, not killed"
    deadline = time.monotonic() + 3
    while running(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running(grandchild), "a process the CLI started outlived it"


# -- success -------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", PROVIDERS)
def test_success_parses_answer_and_sends_prompt_on_stdin(
    cls: type[CliProvider], tmp_path: Path, fake_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CLI_REPLY", json.dumps(REPLY))
    provider = cls(settings(tmp_path))
    response = asyncio.run(provider.complete(request()))

    assert response.data == REPLY
    assert response.provider == cls.name
    StatementDrafts.model_validate(response.data)
    (call,) = calls(fake_env)
    assert call["cli"] == cls.executable
    stdin = call["stdin"]
    assert SYSTEM in stdin and USER in stdin
    assert json.dumps(StatementDrafts.model_json_schema(), ensure_ascii=False) in stdin
    assert stdin.index(SYSTEM) < stdin.index(USER) < stdin.index('"StatementDrafts"')
    assert "ONLY a JSON object" in stdin
    assert USER not in " ".join(call["argv"]), "the prompt goes on stdin, not in argv"


def test_claude_code_argv_model_and_usage(tmp_path: Path, fake_env: Path) -> None:
    provider = ClaudeCodeProvider(settings(tmp_path, model="claude-test-1"))
    response = asyncio.run(provider.complete(request()))
    assert calls(fake_env)[0]["argv"] == [
        "-p",
        "--output-format",
        "json",
        "--model",
        "claude-test-1",
    ]
    assert provider.model == response.model == "claude-test-1"
    assert response.usage.model_dump() == {
        "input_tokens": 120,
        "output_tokens": 50,
        "cache_creation_input_tokens": 30,
        "cache_read_input_tokens": 40,
    }


def test_codex_argv_model_and_usage(tmp_path: Path, fake_env: Path) -> None:
    provider = CodexProvider(settings(tmp_path, model="claude-test-1"))
    response = asyncio.run(provider.complete(request()))
    argv = calls(fake_env)[0]["argv"]
    assert argv[:2] == ["exec", "--json"] and argv[-1] == "-"
    assert "--model" not in argv and "claude-test-1" not in argv
    assert provider.model == response.model == "default"
    usage = response.usage  # codex counts cached input inside input_tokens
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.output_tokens) == (150, 50, 60)


def test_gemini_argv_model_and_usage(tmp_path: Path, fake_env: Path) -> None:
    provider = GeminiProvider(settings(tmp_path, model="claude-test-1"))
    response = asyncio.run(provider.complete(request()))
    assert calls(fake_env)[0]["argv"] == ["--output-format", "json"]
    assert provider.model == response.model == "default"
    usage = response.usage  # the fake prints a log line before pretty-printed JSON
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.output_tokens) == (
        200,
        100,
        70,
    )


@pytest.mark.parametrize("cls", PROVIDERS)
def test_fenced_answer_is_accepted(
    cls: type[CliProvider], tmp_path: Path, fake_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CLI_REPLY", f"```json\n{json.dumps(REPLY, indent=2)}\n```")
    assert asyncio.run(cls(settings(tmp_path)).complete(request())).data == REPLY


# -- answers that are not usable -------------------------------------------------------------


@pytest.mark.parametrize("cls", PROVIDERS)
def test_malformed_answer_is_answer_error(
    cls: type[CliProvider], tmp_path: Path, fake_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CLI_MODE", "malformed")
    with pytest.raises(AnswerError) as info:
        asyncio.run(cls(settings(tmp_path)).complete(request()))
    assert info.value.raw_text.startswith("Here are the statements")
    assert str(info.value).startswith(f"{cls.name}: answer is not JSON")


@pytest.mark.parametrize("cls", PROVIDERS)
def test_json_that_is_not_an_object_is_answer_error(
    cls: type[CliProvider], tmp_path: Path, fake_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CLI_REPLY", "[1, 2]")
    with pytest.raises(AnswerError, match="JSON list, not an object"):
        asyncio.run(cls(settings(tmp_path)).complete(request()))


# -- failures of the call ----------------------------------------------------------------------

FIXES = {
    "claude-code": ("`claude`", "/login"),
    "codex": ("`codex login`",),
    "gemini": ("`gemini` once to sign in",),
}


@pytest.mark.parametrize("cls", PROVIDERS)
def test_quota_stops_the_provider(
    cls: type[CliProvider], tmp_path: Path, fake_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CLI_MODE", "quota")
    with pytest.raises(ProviderStopError) as info:
        asyncio.run(cls(settings(tmp_path)).complete(request()))
    message = str(info.value)
    assert message.startswith(f"{cls.name}: quota or rate limit reached")
    assert "\n" not in message


@pytest.mark.parametrize("cls", PROVIDERS)
def test_login_error_stops_the_provider_and_names_the_fix(
    cls: type[CliProvider], tmp_path: Path, fake_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CLI_MODE", "login")
    with pytest.raises(ProviderStopError) as info:
        asyncio.run(cls(settings(tmp_path)).complete(request()))
    message = str(info.value)
    assert message.startswith(f"{cls.name}: not signed in")
    assert all(fix in message for fix in FIXES[cls.name])
    assert "\n" not in message


@pytest.mark.parametrize("cls", PROVIDERS)
def test_crash_is_provider_error_with_exit_code_and_stderr(
    cls: type[CliProvider], tmp_path: Path, fake_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CLI_MODE", "crash")
    with pytest.raises(ProviderError) as info:
        asyncio.run(cls(settings(tmp_path)).complete(request()))
    assert not isinstance(info.value, ProviderStopError)
    assert str(info.value) == f"{cls.name}: `{cls.executable}` exited with code 3: Error: socket hang up (ECONNRESET)"


@pytest.mark.parametrize("cls", PROVIDERS)
def test_missing_executable_names_the_install_step(
    cls: type[CliProvider], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(ProviderStopError) as info:
        asyncio.run(cls(settings(tmp_path)).complete(request()))
    assert f"`{cls.executable}` not found on PATH" in str(info.value)
    assert f"install it with `{cls.install_hint}`" in str(info.value)


def test_install_hints_name_the_real_packages() -> None:
    assert ClaudeCodeProvider.install_hint == "npm install -g @anthropic-ai/claude-code"
    assert CodexProvider.install_hint == "npm install -g @openai/codex"
    assert GeminiProvider.install_hint == "npm install -g @google/gemini-cli"


@pytest.mark.parametrize("cls", PROVIDERS)
def test_quota_and_login_words_in_an_echoed_prompt_do_not_stop_the_provider(
    cls: type[CliProvider], tmp_path: Path, fake_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CLI that echoes the prompt must not turn a lab value of 429 into a quota stop."""
    monkeypatch.setenv("FAKE_CLI_MODE", "echo-crash")
    content = "Platelets 429,000/uL; the usage limit of heparin; login to the EHR."
    with pytest.raises(ProviderError) as info:
        asyncio.run(cls(settings(tmp_path)).complete(request([Message(role="user", content=content)])))
    assert type(info.value) is ProviderError
    assert (
        str(info.value) == f"{cls.name}: `{cls.executable}` exited with code 2: stream disconnected before completion"
    )


# -- time limits and cancellation ----------------------------------------------------------------


@pytest.mark.parametrize("cls", PROVIDERS)
def test_hang_times_out_and_kills_the_process_group(
    cls: type[CliProvider], tmp_path: Path, fake_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CLI_MODE", "hang")
    provider = cls(settings(tmp_path, call_timeout=1))
    with pytest.raises(ProviderError, match=rf"^{cls.name}: no answer within 1 s$"):
        asyncio.run(provider.complete(request()))
    assert_cleaned_up(tmp_path)


def test_a_child_that_ignores_sigterm_is_killed(
    tmp_path: Path, fake_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CLI_MODE", "hang-stubborn")
    monkeypatch.setattr(cli_tools, "KILL_GRACE", 0.3)
    provider = ClaudeCodeProvider(settings(tmp_path, call_timeout=1))
    with pytest.raises(ProviderError, match="no answer within 1 s"):
        asyncio.run(provider.complete(request()))
    assert_cleaned_up(tmp_path)  # SIGTERM was ignored: only the SIGKILL after the grace ended it


async def _wait_for(path: Path, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("cls", PROVIDERS)
def test_cancelling_a_call_kills_the_child(
    cls: type[CliProvider], tmp_path: Path, fake_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CLI_MODE", "hang")
    provider = cls(settings(tmp_path, call_timeout=30))

    async def scenario() -> None:
        task = asyncio.create_task(provider.complete(request()))
        await _wait_for(tmp_path / "pids")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert_cleaned_up(tmp_path)


def test_aclose_stops_calls_in_flight(tmp_path: Path, fake_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_CLI_MODE", "hang")
    provider = GeminiProvider(settings(tmp_path, call_timeout=30))

    async def scenario() -> None:
        task = asyncio.create_task(provider.complete(request()))
        await _wait_for(tmp_path / "pids")
        await provider.aclose()
        with pytest.raises(ProviderError):
            await task

    asyncio.run(scenario())
    assert_cleaned_up(tmp_path)


def test_calls_run_concurrently(tmp_path: Path, fake_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # each fake call waits until all six are running: calls made one after another fail
    monkeypatch.setenv("FAKE_CLI_BARRIER", f"{tmp_path / 'running'}:6")
    monkeypatch.setenv("FAKE_CLI_REPLY", json.dumps(REPLY))
    provider = CodexProvider(settings(tmp_path))

    async def scenario() -> list[Any]:
        return await asyncio.gather(*(provider.complete(request()) for _ in range(6)))

    assert [r.data for r in asyncio.run(scenario())] == [REPLY] * 6
    assert len(calls(fake_env)) == 6
    assert len(list((tmp_path / "running").iterdir())) == 6


# -- prompt and answer helpers ---------------------------------------------------------------------


def test_repair_round_prompt_labels_the_turns() -> None:
    prompt = render_prompt(
        request(
            [
                Message(role="user", content=USER),
                Message(role="assistant", content="not json"),
                Message(role="user", content="That answer was unusable."),
            ]
        )
    )
    assert (
        prompt.index("[user]\n" + USER)
        < prompt.index("[assistant]\nnot json")
        < prompt.index("[user]\nThat answer was unusable.")
    )


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1}',
        '  {"a": 1}\n',
        '```json\n{"a": 1}\n```',
        '```\n{"a": 1}```',
        '```JSON\n{"a": 1}\n```\n',
    ],
)
def test_parse_answer_accepts_plain_and_fenced_objects(text: str) -> None:
    assert parse_answer("p", text) == {"a": 1}


def test_parse_answer_keeps_backticks_inside_strings() -> None:
    assert parse_answer("p", '{"s": "use ```code``` here"}') == {"s": "use ```code``` here"}


@pytest.mark.parametrize("text", ["", "null", 'Sure! {"a": 1}', '"a string"', "```json\n[1]\n```"])
def test_parse_answer_rejects_non_objects(text: str) -> None:
    with pytest.raises(AnswerError) as info:
        parse_answer("p", text)
    assert info.value.raw_text == text


def test_providers_are_registered() -> None:
    from mksap_plugins.providers import register_providers

    registered: list[type[Provider]] = []
    register_providers(registered.append)
    names = {p.name for p in registered}
    assert {"claude-code", "codex", "gemini"} <= names
