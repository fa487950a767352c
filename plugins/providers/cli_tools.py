"""CLI-tool providers: `claude-code`, `codex` and `gemini` run their vendor's CLI per call.

Each call runs the CLI (never through a shell) as the leader of a new process group, prompt on
stdin, and reads the JSON it prints. On timeout or cancellation the whole group gets SIGTERM,
then SIGKILL after a grace, and the child is reaped. Quota and login failures raise
`ProviderStopError`, other failures `ProviderError`, a reply that is no JSON object `AnswerError`.

Model: only `claude-code` gets `--model settings.model` (a Claude name by default, which codex
and gemini would reject); they use their own configured model and report it as "default".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
from abc import abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from mksap.contracts.errors import AnswerError, ProviderError, ProviderStopError
from mksap.contracts.provider import LLMRequest, LLMResponse, Provider, Usage
from mksap.settings import Settings

#: Seconds between SIGTERM and SIGKILL when a call is abandoned.
KILL_GRACE = 2.0
# Matched, lower-cased, against a failed call's output only (never against an answer).
_QUOTA = re.compile(r"rate[ -]limit|quota|usage limit|429|resource_exhausted")
_LOGIN = re.compile(r"not logged in|log ?in|unauthori[sz]ed|unauthenticated|authentication|api[ _]key|auth method")
_CODEX_ANSWER_ITEMS = ("agent_message", "assistant_message")  # the latter in older versions
_FENCE = re.compile(r"\A```[\w-]*[ \t]*\n(.*?)\n?```\Z", re.S)  # the whole answer fenced


@dataclass
class Envelope:
    """A CLI's output unpacked: the model's text, token usage, and any error it reported."""

    text: str
    usage: Usage = field(default_factory=Usage)
    error: str | None = None


def render_prompt(request: LLMRequest) -> str:
    """System text, the conversation, then the instruction to answer with schema-valid JSON."""
    if len(request.messages) == 1:
        conversation = request.messages[0].content
    else:  # a repair round: label turns so the model sees its own earlier answer as such
        conversation = "\n\n".join(f"[{m.role}]\n{m.content}" for m in request.messages)
    schema = json.dumps(request.output_schema, ensure_ascii=False)
    return (
        f"{request.system}\n\n{conversation}\n\n"
        f"Answer with ONLY a JSON object (no prose, no code fences) valid for this JSON schema "
        f"({request.schema_name}):\n{schema}\n"
    )


def parse_answer(provider: str, text: str) -> dict[str, Any]:
    """The JSON object in the model's `text` (```json fences allowed) or `AnswerError`."""
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    try:
        data = json.loads(body)
        why = f"a JSON {type(data).__name__}, not an object"
    except json.JSONDecodeError as e:
        data, why = None, f"not JSON ({e.msg}, line {e.lineno})"
    if not isinstance(data, dict):
        raise AnswerError(f"{provider}: answer is {why}", raw_text=text)
    return data


class CliProvider(Provider):
    """Base class of providers that run a model vendor's CLI as an async subprocess.

    A subclass names its executable, the fixed arguments of its non-interactive JSON mode
    (the prompt always goes on stdin), how to install it and how to sign in, and unpacks the
    CLI's stdout into an `Envelope`.
    """

    executable: ClassVar[str]
    #: Arguments after the executable. Kept here, in one place, so a changed CLI is easy to follow.
    args: ClassVar[tuple[str, ...]]
    install_hint: ClassVar[str]
    login_hint: ClassVar[str]
    #: Whether `--model settings.model` is passed (and reported as the model).
    passes_model: ClassVar[bool] = False

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._running: set[asyncio.subprocess.Process] = set()

    @property
    def model(self) -> str:
        return self.settings.model if self.passes_model else "default"

    @classmethod
    def unready(cls, settings: Settings) -> str | None:
        return None if shutil.which(cls.executable) else f"`{cls.executable}` not found on PATH"

    @classmethod
    def health(cls, settings: Settings) -> list[str]:
        path = shutil.which(cls.executable)
        return [f"ok: `{cls.executable}` found at {path}"] if path else [f"error: {cls.unready(settings)}"]

    def argv(self, path: str) -> list[str]:
        model = ["--model", self.settings.model] if self.passes_model else []
        return [path, *self.args, *model]

    @abstractmethod
    def unpack(self, stdout: str) -> Envelope:
        """The envelope in the CLI's stdout; `ValueError` if stdout is not in its format."""

    async def complete(self, request: LLMRequest) -> LLMResponse:
        path = shutil.which(self.executable)
        if path is None:
            hint = f"install it with `{self.install_hint}`"
            raise ProviderStopError(f"{self.name}: `{self.executable}` not found on PATH; {hint}")
        prompt = render_prompt(request)
        code, out, err = await self._run(self.argv(path), prompt)
        try:
            envelope: Envelope | None = self.unpack(out)
        except ValueError:
            envelope = None
        if code != 0 or envelope is None or envelope.error:
            raise self._failure(code, out, err, envelope.error if envelope else None, prompt)
        data = parse_answer(self.name, envelope.text)
        return LLMResponse(
            data=data, raw_text=envelope.text, usage=envelope.usage, provider=self.name, model=self.model
        )

    async def aclose(self) -> None:
        # Calls in flight then fail with ProviderError; their own communicate() drains the pipes.
        await asyncio.gather(*(_terminate(p, drain=False) for p in list(self._running)))

    async def _run(self, argv: list[str], prompt: str) -> tuple[int, str, str]:
        pipe = asyncio.subprocess.PIPE
        try:  # a new session makes it lead its own process group: we can stop its children too
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=pipe, stdout=pipe, stderr=pipe, start_new_session=True
            )
        except OSError as e:
            raise ProviderError(f"{self.name}: cannot start `{argv[0]}`: {e.strerror}") from None
        self._running.add(proc)
        try:
            async with asyncio.timeout(self.settings.call_timeout):
                out, err = await proc.communicate(prompt.encode())
        except TimeoutError:
            await _terminate(proc)
            raise ProviderError(f"{self.name}: no answer within {self.settings.call_timeout:g} s") from None
        except asyncio.CancelledError:
            await _terminate(proc)
            raise
        finally:
            self._running.discard(proc)
        return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")

    def _failure(self, code: int, out: str, err: str, reported: str | None, prompt: str) -> ProviderError:
        # The prompt is removed first: a CLI may echo it, and a lab value of 429 is not a 429.
        blob = "\n".join((reported or "", out, err)).lower().replace(prompt.lower(), "")
        detail = _detail(reported, err, out)
        if _QUOTA.search(blob):
            return ProviderStopError(
                f"{self.name}: quota or rate limit reached ({detail}); wait for it to reset, "
                "or continue on another provider (--provider a,b)"
            )
        if _LOGIN.search(blob):
            return ProviderStopError(f"{self.name}: not signed in ({detail}); {self.login_hint}")
        if code == 0 and reported is None:
            exe = self.executable
            return ProviderError(f"{self.name}: `{exe}` printed no JSON ({detail}); is it up to date?")
        return ProviderError(f"{self.name}: `{self.executable}` exited with code {code}: {detail}")


class ClaudeCodeProvider(CliProvider):
    """Claude Code CLI (`claude -p`), signed in with a Claude subscription or an API key."""

    name = "claude-code"
    executable = "claude"
    # -p: print mode (non-interactive), prompt read from stdin; json: one result envelope.
    args = ("-p", "--output-format", "json")
    install_hint = "npm install -g @anthropic-ai/claude-code"
    login_hint = "run `claude` and sign in with /login (or set ANTHROPIC_API_KEY)"
    passes_model = True

    def unpack(self, stdout: str) -> Envelope:
        obj = _json_value(stdout)
        if not isinstance(obj, dict):
            raise ValueError("no result envelope")
        text = str(obj.get("result") or "")
        failed = obj.get("is_error") or str(obj.get("subtype", "success")) != "success"
        usage = _dict(obj.get("usage"))
        return Envelope(
            text=text,
            usage=Usage(**{k: _int(usage, k) for k in Usage.model_fields}),
            error=(text or str(obj.get("subtype"))) if failed else None,
        )


class CodexProvider(CliProvider):
    """OpenAI Codex CLI (`codex exec`), with the model set in its own config."""

    name = "codex"
    executable = "codex"
    # exec: non-interactive; --json: JSONL events on stdout; "-": read the prompt from stdin;
    # read-only sandbox: we want text, never edits; the check would refuse to run outside a repo.
    args = ("exec", "--json", "--sandbox", "read-only", "--skip-git-repo-check", "-")
    install_hint = "npm install -g @openai/codex"
    login_hint = "run `codex login`"

    def unpack(self, stdout: str) -> Envelope:
        events = [e for e in map(_json_line, stdout.splitlines()) if isinstance(e, dict)]
        if not events:  # without --json support, codex prints just the final message
            return Envelope(text=stdout)
        envelope = Envelope(text="")
        for event in events:
            kind, item = event.get("type"), event.get("item")
            if kind == "item.completed" and _dict(item).get("type") in _CODEX_ANSWER_ITEMS:
                envelope.text = str(_dict(item).get("text") or "")
            elif kind == "turn.completed":  # also after retried stream errors, which did not stop it
                u = _dict(event.get("usage"))
                envelope.usage = _usage(u, "input_tokens", "cached_input_tokens", "output_tokens")
                envelope.error = None
            elif kind == "turn.failed":
                envelope.error = str(_dict(event.get("error")).get("message") or "turn failed")
            elif kind == "error":
                envelope.error = str(event.get("message") or "error")
        return envelope


class GeminiProvider(CliProvider):
    """Google Gemini CLI (`gemini`, headless), with the model set in its own config."""

    name = "gemini"
    executable = "gemini"
    # Piped stdin runs it headless with stdin as the prompt; json: {"response", "stats", "error"}.
    args = ("--output-format", "json")
    install_hint = "npm install -g @google/gemini-cli"
    login_hint = "run `gemini` once to sign in (or set GEMINI_API_KEY)"

    def unpack(self, stdout: str) -> Envelope:
        obj = _json_value(stdout)
        if not isinstance(obj, dict):
            raise ValueError("no response envelope")
        error = obj.get("error")
        if isinstance(error, dict):
            error = error.get("message") or json.dumps(error)
        usage = Usage()
        for stats in _dict(_dict(obj.get("stats")).get("models")).values():
            tokens = _dict(_dict(stats).get("tokens"))
            usage = usage + _usage(tokens, "prompt", "cached", "candidates")
        return Envelope(text=str(obj.get("response") or ""), usage=usage, error=str(error) if error else None)


async def _terminate(proc: asyncio.subprocess.Process, drain: bool = True) -> None:
    """SIGTERM the child's process group, SIGKILL it after a grace, and see the child reaped.

    `drain` reads its pipes to EOF so the transport closes (bounded: a process that left the
    group may hold them); not when a `communicate()` still in progress is reading them.
    """
    _signal_group(proc, signal.SIGTERM)
    try:
        await _exited(proc, KILL_GRACE)
    finally:  # also on a second cancel; catches grandchildren that ignored SIGTERM
        _signal_group(proc, signal.SIGKILL)
    await _exited(proc, KILL_GRACE)
    if drain:
        reads = [stream.read() for stream in (proc.stdout, proc.stderr) if stream is not None]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*reads), KILL_GRACE)


async def _exited(proc: asyncio.subprocess.Process, timeout: float) -> None:
    # Polls `returncode` (set once the child watcher has reaped it): on Python 3.11 `wait()` also
    # waits for the pipes, which a grandchild that left the process group may hold open.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while proc.returncode is None and loop.time() < deadline:
        await asyncio.sleep(0.02)


def _signal_group(proc: asyncio.subprocess.Process, sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)  # start_new_session made the child its group's leader
    except (ProcessLookupError, PermissionError):
        pass


def _json_value(text: str) -> Any:
    """The JSON in `text`, which may follow log lines (it starts on a line of its own)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.lstrip().startswith(("{", "[")):
            try:
                return json.loads("\n".join(lines[i:]))
            except json.JSONDecodeError:
                continue
    raise ValueError("no JSON in output")


def _json_line(line: str) -> Any:
    line = line.strip()
    if not line.startswith(("{", "[")):
        return None
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None


def _usage(counts: dict[str, Any], total_in: str, cached_in: str, out: str) -> Usage:
    """Usage from OpenAI/Gemini-style counts, whose input total includes the cached part."""
    cached = _int(counts, cached_in)
    return Usage(
        input_tokens=max(_int(counts, total_in) - cached, 0),
        output_tokens=_int(counts, out),
        cache_read_input_tokens=cached,
    )


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(d: dict[str, Any], key: str) -> int:
    value = d.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _detail(*texts: str | None, limit: int = 200) -> str:
    """The last non-empty line of the first text that has one, on one line, trimmed."""
    for text in texts:
        lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
        if lines:
            line = " ".join(lines[-1].split())
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return "no output"
