"""Provider throughput benchmark: the real anthropic provider (official SDK) against the fake
Messages API server on 127.0.0.1 with ~100 ms mean latency, at several concurrency levels.

    python bench/providers.py [N_QUESTIONS] [LEVELS]     (default 500 and 1,8,32,64)

For each level: a cold build of N questions (fresh LLM cache), wall time, calls, and the ratio
to the ideal max(calls x mean latency / concurrency, longest per-question chain). Then a
`--force` rerun with the warm cache, which must make zero calls. Also checks that the requests
per minute limit is never exceeded: a last run at the highest level under a binding limit,
checked against an API-side token bucket.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from make_bank import make_bank  # noqa: E402

from tests.fakes.anthropic_server import FakeAnthropicServer  # noqa: E402
from tests.fakes.stage_answers import stage_responder  # noqa: E402

WORK = ROOT / "bench" / "work" / "providers"
BIN = Path(sys.executable).parent
MEAN = 0.100


def latency() -> float:
    """Mean 100 ms with a long tail (lognormal), like API calls at a 1:170 time scale."""
    return min(2.0, random.lognormvariate(-2.45, 0.5))


def build(env: dict[str, str], *extra: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [str(BIN / "mksap"), "run", "--quiet", *extra], env=env, cwd=WORK, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"build failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return elapsed, proc.stderr


def bucket_violations(stamps: list[float], rpm: int) -> int:
    """Requests an API-side token bucket (a minute's worth of capacity, refilled continuously,
    as Anthropic documents its limits) would have refused with a 429."""
    level, last, refused = float(rpm), None, 0
    for t in sorted(stamps):
        if last is not None:
            level = min(float(rpm), level + (t - last) * rpm / 60)
        last = t
        if level < 1:
            refused += 1
        else:
            level -= 1
    return refused


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    levels = [int(x) for x in (sys.argv[2] if len(sys.argv) > 2 else "1,8,32,64").split(",")]
    random.seed(7)
    make_bank(WORK / "data", n)
    # Each level runs unlimited; then 64 again under a limit tighter than its unlimited pace
    # (the scaled run makes ~70 requests/s), to show the limiter holds it without a single 429.
    runs = [(level, 0) for level in levels] + [(max(levels), 1800)]
    rows = []
    with FakeAnthropicServer(responder=stage_responder(), latency=latency) as server:
        for level, rpm in runs:
            for d in ("out", "cache", "llm"):
                subprocess.run(["rm", "-rf", str(WORK / d)], check=True)
            env = {
                **os.environ,
                "MKSAP_DATA": str(WORK / "data"),
                "MKSAP_OUT": str(WORK / "out"),
                "MKSAP_CACHE_DIR": str(WORK / "cache"),
                "MKSAP_LLM_CACHE_DIR": str(WORK / "llm"),
                "MKSAP_PROVIDER": "anthropic",
                "MKSAP_MODEL": "claude-sonnet-4-6",
                "ANTHROPIC_API_KEY": "sk-ant-bench-not-a-real-key",
                "ANTHROPIC_BASE_URL": server.url,
                "MKSAP_MAX_CONCURRENCY": str(level),
                "MKSAP_JOBS": str(max(2, level + 8)),
                "MKSAP_RPM": str(rpm),
                "MKSAP_TPM": "0",
            }
            before = len(server.requests)
            server.max_in_flight = 0
            t0 = time.monotonic()
            wall, _ = build(env)
            calls = len(server.requests) - before
            stamps = [r["t"] for r in server.requests[before:] if "t" in r] or [t0]
            chain = 5 * MEAN  # critique -> keypoints -> cloze (+ repair) per question, with the tail
            ideal = max(calls * MEAN / level, chain)
            peak = server.max_in_flight
            force_wall, _ = build(env, "--force")
            force_calls = len(server.requests) - before - calls
            violations = bucket_violations(stamps, rpm) if rpm else "-"
            limit = rpm or "none"
            rows.append(
                (
                    level,
                    limit,
                    wall,
                    calls,
                    calls / wall,
                    ideal,
                    wall / ideal,
                    peak,
                    force_wall,
                    force_calls,
                    violations,
                )
            )
    print(
        f"bank: {n} questions; fake server mean latency {MEAN * 1000:.0f} ms (lognormal tail); {os.cpu_count()} cores\n"
    )
    print(
        "| concurrency | rpm limit | wall s | calls | calls/s | ideal s | wall/ideal | peak in flight "
        "| --force wall s | --force calls | 429s an API bucket would send |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for level, limit, wall, calls, cps, ideal, ratio, peak, fw, fc, bad in rows:
        cells = [
            level,
            limit,
            f"{wall:.1f}",
            calls,
            f"{cps:.0f}",
            f"{ideal:.1f}",
            f"{ratio:.2f}",
            peak,
            f"{fw:.1f}",
            fc,
            bad,
        ]
        print("| " + " | ".join(str(c) for c in cells) + " |")


if __name__ == "__main__":
    main()
