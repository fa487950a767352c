"""Shared behaviour of the fake `claude`, `codex` and `gemini` executables used by the tests.

Each fake reads its stdin like the real CLI, then behaves as the environment scripts it:

FAKE_CLI_MODE     ok (default) | malformed | quota | login | crash | echo-crash | hang | hang-stubborn
FAKE_CLI_REPLY    the model's answer text in ok mode (default: {"statements": []})
FAKE_CLI_DELAY    seconds to wait before answering (default 0)
FAKE_CLI_LOG      file that gets one JSON line per call: {"cli", "argv", "stdin"}
FAKE_CLI_PIDFILE  hang modes: file that gets "<own pid> <grandchild pid>"; if the hang ends by
                  itself (nobody killed the process), "<pidfile>.slept" is written
FAKE_CLI_BARRIER  "<folder>:<n>": each call signs in to the folder, then waits until n calls
                  are running at once; after 30 s alone it fails (exit 4), so calls made one
                  after another cannot pass it

In ok and malformed modes the answer is printed in that CLI's JSON output format; quota and
login errors look like the ones the real CLIs print. hang starts a grandchild (in the same
process group) and sleeps 60 s; hang-stubborn also ignores SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any, NoReturn

MALFORMED = "Here are the statements you asked for: the aorta is the largest artery."


def main(cli: str) -> NoReturn:
    stdin = sys.stdin.read()
    log = os.environ.get("FAKE_CLI_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(json.dumps({"cli": cli, "argv": sys.argv[1:], "stdin": stdin}) + "\n")
    mode = os.environ.get("FAKE_CLI_MODE", "ok")
    if os.environ.get("FAKE_CLI_BARRIER"):
        barrier(*os.environ["FAKE_CLI_BARRIER"].rsplit(":", 1))
    time.sleep(float(os.environ.get("FAKE_CLI_DELAY", "0")))
    if mode.startswith("hang"):
        hang(stubborn=mode == "hang-stubborn")
    if mode == "echo-crash":  # some CLIs echo the prompt to stderr before failing
        sys.stderr.write(f"user\n{stdin}\nstream disconnected before completion\n")
        sys.exit(2)
    if mode == "crash":
        sys.stderr.write("Traceback (most recent call last):\nError: socket hang up (ECONNRESET)\n")
        sys.exit(3)
    reply = os.environ.get("FAKE_CLI_REPLY", '{"statements": []}')
    reply = MALFORMED if mode == "malformed" else reply
    {"claude": claude, "codex": codex, "gemini": gemini}[cli](mode, reply)
    sys.exit(0)


def hang(stubborn: bool) -> NoReturn:
    if stubborn:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # inherited by the grandchild too
    grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    pidfile = os.environ["FAKE_CLI_PIDFILE"]
    with open(pidfile + ".tmp", "w") as f:
        f.write(f"{os.getpid()} {grandchild.pid}")
    os.replace(pidfile + ".tmp", pidfile)  # the test never sees a half-written file
    time.sleep(60)
    with open(pidfile + ".slept", "w") as f:  # not killed: whoever ran us waited it out
        f.write(str(os.getpid()))
    sys.exit(0)


def barrier(folder: str, n: str) -> None:
    """Sign in, then wait until `n` calls have signed in (they all run at once)."""
    os.makedirs(folder, exist_ok=True)
    open(os.path.join(folder, str(os.getpid())), "w").close()
    deadline = time.monotonic() + 30
    while len(os.listdir(folder)) < int(n):
        if time.monotonic() > deadline:
            sys.stderr.write(f"barrier: only {len(os.listdir(folder))} of {n} calls ever ran at once\n")
            sys.exit(4)
        time.sleep(0.01)


def emit(obj: Any, indent: int | None = None) -> None:
    sys.stdout.write(json.dumps(obj, indent=indent) + "\n")


def claude(mode: str, reply: str) -> None:
    base = {
        "type": "result",
        "subtype": "success",
        "duration_ms": 1200,
        "num_turns": 1,
        "session_id": "fake-session",
        "total_cost_usd": 0.0012,
    }
    if mode in ("quota", "login"):
        text = (
            "Claude AI usage limit reached|1760000000" if mode == "quota" else ("Invalid API key · Please run /login")
        )
        emit({**base, "is_error": True, "result": text})
        sys.exit(1)
    usage = {
        "input_tokens": 120,
        "cache_creation_input_tokens": 30,
        "cache_read_input_tokens": 40,
        "output_tokens": 50,
    }
    emit({**base, "is_error": False, "result": reply, "usage": usage})


def codex(mode: str, reply: str) -> None:
    emit({"type": "thread.started", "thread_id": "0199-fake"})
    emit({"type": "turn.started"})
    if mode in ("quota", "login"):
        message = (
            "You've hit your usage limit. Try again in 2 hours."
            if mode == "quota"
            else "unexpected status 401 Unauthorized: Missing bearer authentication in header"
        )
        emit({"type": "error", "message": message})
        emit({"type": "turn.failed", "error": {"message": message}})
        sys.exit(1)
    for item in (
        {"type": "reasoning", "text": "**Thinking**"},
        {"type": "agent_message", "text": reply},
    ):
        emit({"type": "item.completed", "item": {"id": "item_0", **item}})
    usage = {"input_tokens": 200, "cached_input_tokens": 50, "output_tokens": 60}
    emit({"type": "turn.completed", "usage": usage})


def gemini(mode: str, reply: str) -> None:
    if mode == "quota":
        message = "[429 Too Many Requests] Quota exceeded for metric 'Gemini 2.5 Pro Requests'"
        sys.stderr.write(f"Error when talking to Gemini API {message}\n")
        error = {"type": "Error", "message": f"{message} RESOURCE_EXHAUSTED", "code": 429}
        emit({"error": error}, indent=2)
        sys.exit(1)
    if mode == "login":
        sys.stderr.write(
            "Please set an Auth method in your /home/u/.gemini/settings.json or specify one of the "
            "following environment variables before running: GEMINI_API_KEY\n"
        )
        sys.exit(41)
    sys.stdout.write("Loaded cached credentials.\n")  # a log line before the JSON, as seen
    tokens = {"prompt": 300, "candidates": 70, "total": 370, "cached": 100, "thoughts": 0}
    stats = {"models": {"gemini-2.5-pro": {"api": {"totalRequests": 1}, "tokens": tokens}}}
    emit({"response": reply, "stats": stats}, indent=2)
