"""Concurrency that follows the rate limit: `mksap run` with DEFAULT settings (no jobs,
max_concurrency, rpm or tpm set) against the fake Messages API with an API-side rate limit that
sends the real API's `anthropic-ratelimit-*` headers and 429s with `retry-after`.

    python bench/ratelimit.py [--quick] [--no-write]

1. 1,200 requests a minute, 1 s mean latency, ~90 s: 429s after the first 30 s (goal: none) and
   the request rate from 30 s on (goal: within 20% of the limit).
2. 60 requests a minute, 1 s mean latency, ~2-3 min: 429s (goal: under 2% of requests).
3. 4,000 requests a minute at real latency (17 s mean): the calls in flight the limiter settles
   at, the calls a second it gives, and from them the whole bank (goal: under 15 minutes).
4. Offline builds (a local provider): worker threads, wall time and peak memory.

The key starts idle (its bucket full, a minute's worth), as a key does that was not used for a
minute. Each run is a subprocess; the fake runs in this process, which samples it every second.
Writes its section of bench/RESULTS.md (`--no-write`: print only).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from common import BIN, Workdir, lognormal_latency, summary_line, write_sections

from tests.fakes.anthropic_server import FakeAnthropicServer
from tests.fakes.rate_limit import RateLimit
from tests.fakes.stage_answers import stage_responder

TITLE = "Concurrency that follows the rate limit"
BANK = 2200
REAL_LATENCY = 17.0
GOAL_MINUTES = 15.0
_FLIGHT = re.compile(r"(\d+) in flight \(limit (\d+)\)")
NOT_MEASURED = (
    "Not measured here: token limits (these runs set only a request limit). Anthropic documents that a "
    "request's `max_tokens` (4,096 for every mksap request) counts against the output tokens per minute while "
    "it runs, the unused part refunded at its end (re-check; the fake counts output when it is sent). With "
    "256 calls in flight that is ~1M output tokens: a key whose output limit is lower answers 429s, which halve "
    "the window, and its `anthropic-ratelimit-output-tokens-*` headers then pace the calls. Answers average "
    "~400 output tokens: a `max_tokens` nearer that would let such a key keep more calls in flight."
)


@dataclass
class Run:
    """One `mksap run` against the fake: what the server saw, second by second."""

    name: str
    questions: int
    rpm: int
    latency: float
    wall: float = 0.0
    peak_rss_mb: float = 0.0
    summary: str = ""
    requests: list[float] = field(default_factory=list)  # arrival times, seconds from the first
    refused: list[float] = field(default_factory=list)
    samples: list[tuple[float, int]] = field(default_factory=list)  # (t, requests in flight at the server)
    limits: list[tuple[int, int]] = field(default_factory=list)  # (in flight, limit) from the progress lines

    def rate(self, start: float, end: float) -> float:
        """Requests a minute that arrived in [start, end)."""
        n = sum(1 for t in self.requests if start <= t < end)
        return n / (end - start) * 60 if end > start else 0.0

    @property
    def span(self) -> float:
        return self.requests[-1] if self.requests else 0.0

    def in_flight(self, start: float, end: float) -> int:
        """The median of the calls in flight at the server in [start, end]."""
        values = sorted(n for t, n in self.samples if start <= t <= end)
        return values[len(values) // 2] if values else 0

    def settled(self) -> tuple[float, float]:
        """When the calls in flight first and last stood within 10% of their peak."""
        peak = max((n for _, n in self.samples), default=0)
        full = [t for t, n in self.samples if n >= 0.9 * peak]
        return (full[0], full[-1]) if full else (0.0, 0.0)


def mksap_run(work: Workdir, env: dict[str, str]) -> tuple[float, float, str, str]:
    """`mksap run` (progress lines on: stderr is not a terminal) with wall time and peak RSS."""
    rss = work.path / "last-run.rss"
    rss.unlink(missing_ok=True)
    timer = ["/usr/bin/time", "-f", "%M", "-o", str(rss)] if Path("/usr/bin/time").exists() else []
    t0 = time.perf_counter()
    proc = subprocess.run(
        [*timer, str(BIN / "mksap"), "run"], env=work.env(**env), cwd=work.path, capture_output=True, text=True
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"mksap run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    peak = int(rss.read_text().split()[-1]) / 1024 if rss.exists() else 0.0
    return wall, peak, proc.stderr, summary_line(proc.stderr)


def llm_run(name: str, questions: int, rpm: int, latency: float, *, cap_factor: float = 5.0) -> Run:
    run = Run(name, questions, rpm, latency)
    work = Workdir(f"ratelimit-{name}", {})
    work.make_bank(questions)
    work.reset_state()
    fake = FakeAnthropicServer(
        responder=stage_responder(),
        latency=lognormal_latency(latency, cap_factor=cap_factor),
        rate_limit=RateLimit(rpm=rpm),
    )
    env = {
        "MKSAP_PROVIDER": "anthropic",
        "MKSAP_MODEL": "claude-sonnet-4-6",
        "ANTHROPIC_API_KEY": "sk-ant-bench-not-a-real-key",
    }
    stop = threading.Event()
    with fake:
        env["ANTHROPIC_BASE_URL"] = fake.url

        def sample() -> None:
            while not stop.wait(1.0):
                run.samples.append((time.monotonic(), fake.in_flight))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        run.wall, run.peak_rss_mb, stderr, run.summary = mksap_run(work, env)
        stop.set()
        sampler.join()
        stamps = sorted(r["t"] for r in fake.requests if r["path"] == "/v1/messages")
    t0 = stamps[0] if stamps else 0.0
    run.requests = [t - t0 for t in stamps]
    run.refused = sorted(t - t0 for t in fake.refused)
    run.samples = [(t - t0, n) for t, n in run.samples if t >= t0]
    run.limits = [(int(a), int(b)) for a, b in _FLIGHT.findall(stderr)]
    return run


def offline_run(questions: int, jobs: int | None) -> tuple[str, float, float, str]:
    work = Workdir("ratelimit-offline", {"MKSAP_PROVIDER": "offline"})
    if len(list(work.data.glob("*/*"))) != questions:
        work.make_bank(questions)
    work.reset_state()
    extra = {"MKSAP_JOBS": str(jobs)} if jobs is not None else {}
    build = work.run(**extra)
    return ("default (8)" if jobs is None else str(jobs)), build.wall, build.peak_rss_mb, summary_line(build.stderr)


def window_trace(run: Run) -> str:
    return ", ".join(f"{a}/{b}" for a, b in run.limits) or "-"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small banks: check the bench itself")
    parser.add_argument("--no-write", action="store_true", help="print, do not write bench/RESULTS.md")
    args = parser.parse_args()
    q = args.quick
    started = time.monotonic()

    fast = llm_run("1200rpm", 120 if q else 800, 1200, 1.0)
    slow = llm_run("60rpm", 15 if q else 60, 60, 1.0)
    real = llm_run("4000rpm-real", 60 if q else 500, 4000, REAL_LATENCY)
    offline = [offline_run(60 if q else 300, jobs) for jobs in (None, 2, 256)]

    # -- 1,200 a minute
    end = fast.span - 10  # the build runs out of work in its last seconds
    late_429 = sum(1 for t in fast.refused if t >= 30)
    steady = fast.rate(30, end)
    # -- 60 a minute
    share = len(slow.refused) / max(1, len(slow.requests))
    # -- real latency, projection
    calls_per_q = len(real.requests) / real.questions
    bank_calls = calls_per_q * BANK
    first_full, last_full = real.settled()
    in_flight = real.in_flight(first_full, last_full)
    settled_rate = real.rate(first_full, last_full)  # requests a minute at the settled window
    remaining = max(0.0, bank_calls - len(real.requests))
    projected = real.wall + remaining / (settled_rate / 60)
    at_128 = real.wall + remaining / (settled_rate / 60 * 128 / max(1, in_flight))

    lines = [
        f"`.venv/bin/python bench/ratelimit.py{' --quick' if q else ''}` on {datetime.now(UTC):%Y-%m-%d}, "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; took "
        f"{time.monotonic() - started:.0f} s. `mksap run` with default settings (`jobs` 0: as many worker threads "
        f"as `max_concurrency`, 256; `rpm`/`tpm` 0: follow the headers) against the fake Messages API, whose key "
        "starts idle (a full minute's worth of requests) and refills continuously; latency lognormal (sigma 0.5) "
        "around the mean given.",
        "",
        "| API limit | mean latency | questions | calls | wall s | 429s | 429s after 30 s | requests/min from 30 s "
        "| requests/min, second half | peak calls in flight | peak RSS MB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in (fast, slow, real):
        lines.append(
            f"| {run.rpm:,}/min | {run.latency:g} s | {run.questions} | {len(run.requests)} | {run.wall:.0f} | "
            f"{len(run.refused)} | {sum(1 for t in run.refused if t >= 30)} | {run.rate(30, run.span - 10):.0f} | "
            f"{run.rate(run.span / 2, run.span - 10):.0f} | {max((n for _, n in run.samples), default=0)} | "
            f"{run.peak_rss_mb:.0f} |"
        )
    lines += ["", "Calls in flight / window, from the progress line every 10 s:", ""]
    lines += [f"- {run.rpm:,}/min: {window_trace(run)}" for run in (fast, slow, real)]
    lines += [
        "",
        f"Real latency: the calls in flight reached {in_flight} (the ceiling, `max_concurrency` = 256) "
        f"{first_full:.0f} s after the first request, from 8 (one more per answer while the window is full and the "
        f"key has room for another round: about twice as many per round of answers); the settled rate, "
        f"{settled_rate:.0f} requests a minute, is far under the key's 4,000. {calls_per_q:.2f} calls a question: "
        f"the bank of {BANK:,} makes ~{bank_calls:,.0f} calls. **Projected bank: {projected / 60:.1f} min** (this "
        f"run's {real.wall:.0f} s, ramp and tail included, plus the remaining calls at the settled rate; the local "
        f"work overlaps the calls). With the old ceiling of 128 it would be ~{at_128 / 60:.1f} min: hence the "
        f"default of 256.",
        "",
        "| offline build (local provider) | worker threads | wall s | peak RSS MB | summary |",
        "|---|---:|---:|---:|---|",
    ]
    for jobs, wall, rss, summ in offline:
        lines.append(f"| {60 if q else 300} questions | {jobs} | {wall:.1f} | {rss:.0f} | {summ} |")
    goals = [
        ("1,200/min: no 429 after the first 30 s", f"{late_429}", late_429 == 0),
        (
            "1,200/min: requests/min from 30 s within 20% of the limit",
            f"{steady:.0f} ({steady / 1200:.0%})",
            abs(steady / 1200 - 1) <= 0.2,
        ),
        (
            "60/min: 429s under 2% of requests",
            f"{len(slow.refused)} of {len(slow.requests)} ({share:.1%})",
            share < 0.02,
        ),
        (
            f"whole bank at 17 s a call, 4,000/min key, under {GOAL_MINUTES:g} min",
            f"{projected / 60:.1f} min",
            projected / 60 < GOAL_MINUTES,
        ),
    ]
    lines += ["", NOT_MEASURED]
    lines += ["", "| goal | measured | met |", "|---|---:|---|"]
    lines += [f"| {g} | {m} | {'yes' if ok else 'no'} |" for g, m, ok in goals]
    text = "\n".join(lines)
    print(text)
    if not args.no_write and not q:
        write_sections({TITLE: text})


if __name__ == "__main__":
    main()
