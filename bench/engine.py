"""Engine benchmark (offline provider): cold build, no-op reruns of `mksap run` and plain `doit`
(median of 5, whole process), the same no-ops with the up-to-date manifest removed (doit checks
every task, as before the manifest), and a rerun after one question changes. Prints a markdown
section and writes it to bench/RESULTS.md ("Engine: no-op and incremental reruns").

Python's bytecode cache is on, as in any installation (kept under bench/work/pycache, out of the
tree); the no-ops are also timed with it off (PYTHONDONTWRITEBYTECODE=1, which some sandboxes
set: every module is then compiled from source at every start).

    python bench/engine.py [N] [--no-write]     (default N = 2200; work dir bench/work/engine/)
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_sections  # noqa: E402
from make_bank import make_bank  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / "work" / "engine"
BIN = Path(sys.executable).parent
MANIFEST = WORK / "cache" / "build" / "uptodate.json"
REPEAT = 5
SETTLE = 30  # seconds between the cold build and the timed reruns
TITLE = "Engine: no-op and incremental reruns"


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Wall time of the whole process, and its summary line."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=WORK, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{cmd} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    summaries = [line for line in proc.stderr.splitlines() if " built, " in line]
    return elapsed, summaries[-1] if summaries else ""


def median_of(cmd: list[str], env: dict[str, str], n: int, *, void_manifest: bool = False) -> tuple[list[float], str]:
    times, line = [], ""
    for _ in range(n):
        if void_manifest:
            MANIFEST.unlink(missing_ok=True)
        secs, line = timed(cmd, env)
        times.append(secs)
    return times, line


def spread(times: list[float]) -> str:
    return f"{statistics.median(times):.2f} ({min(times):.2f}-{max(times):.2f})"


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 2200
    data = WORK / "data"
    WORK.mkdir(parents=True, exist_ok=True)
    ids = make_bank(data, n)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MKSAP_", "ANTHROPIC_", "PYTHONDONTWRITE"))}
    env.update(
        PYTHONPYCACHEPREFIX=str(WORK.parent / "pycache"),
        MKSAP_DATA=str(data),
        MKSAP_OUT=str(WORK / "out"),
        MKSAP_CACHE_DIR=str(WORK / "cache"),
        MKSAP_LLM_CACHE_DIR=str(WORK / "llm"),
        MKSAP_USER_CONFIG=str(WORK / "no-user-config.toml"),
        MKSAP_PROVIDER="offline",
    )
    for d in ("out", "cache", "llm"):
        subprocess.run(["rm", "-rf", str(WORK / d)], check=True)
    mksap = [str(BIN / "mksap"), "run", "--quiet", "-j", "2"]
    doit = [str(BIN / "doit"), "-f", str(ROOT / "dodo.py"), "--dir", str(WORK)]

    rows: list[tuple[str, str, str]] = []
    cold, line = timed(mksap, env)
    rows.append(("cold build (`mksap run -j 2`)", f"{cold:.2f}", line))
    time.sleep(SETTLE)  # the build's own load and disk writeback die down
    load0 = f"{os.getloadavg()[0]:.2f}"
    noop_mksap, line = median_of(mksap, env, REPEAT)
    rows.append((f"no-op rerun, `mksap run` (median of {REPEAT})", spread(noop_mksap), line))
    noop_doit, line = median_of(doit, env, REPEAT)
    rows.append((f"no-op rerun, plain `doit` (median of {REPEAT})", spread(noop_doit), line))
    compiling = {**env, "PYTHONDONTWRITEBYTECODE": "1"}
    compiling.pop("PYTHONPYCACHEPREFIX")
    cold_mksap, line = median_of(mksap, compiling, REPEAT)
    rows.append((f"no-op rerun, `mksap run`, no bytecode cache (median of {REPEAT})", spread(cold_mksap), line))
    cold_doit, line = median_of(doit, compiling, REPEAT)
    rows.append((f"no-op rerun, plain `doit`, no bytecode cache (median of {REPEAT})", spread(cold_doit), line))
    void_mksap, line = median_of(mksap, env, 3, void_manifest=True)
    rows.append(("no-op rerun, `mksap run`, manifest removed (median of 3)", spread(void_mksap), line))
    void_doit, line = median_of(doit, env, 3, void_manifest=True)
    rows.append(("no-op rerun, plain `doit`, manifest removed (median of 3)", spread(void_doit), line))
    timed(mksap, env)  # the manifest back

    victim = data / ids[0][:2] / ids[0] / f"{ids[0]}.json"
    doc = json.loads(victim.read_text(encoding="utf-8"))
    doc["critique"] += " Aspirin is not indicated for primary prevention in this setting."
    victim.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    dry = subprocess.run([*mksap[:2], "--dry-run"], env=env, cwd=WORK, capture_output=True, text=True).stdout
    touched, line = timed(mksap, env)
    rows.append((f"rerun after one question changed ({ids[0]})", f"{touched:.2f}", line))
    after, line = median_of(mksap, env, REPEAT)
    rows.append((f"no-op rerun after it, `mksap run` (median of {REPEAT})", spread(after), line))

    out = [
        f"`python bench/engine.py {n}` on {datetime.now(UTC):%Y-%m-%d}, {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; bank of {n} questions ({n * 8} tasks), offline provider. "
        "Wall seconds of the whole process, median (min-max).",
        "",
        "| run | wall s | summary |",
        "|---|---:|---|",
        *(f"| {name} | {secs} | {summary} |" for name, secs, summary in rows),
        "",
        f"Tasks planned after changing {ids[0]}: {dry.strip().splitlines()[-1]}.",
        f"No-op under 1 s (median of {REPEAT}, whole process): `mksap run` "
        f"{'yes' if statistics.median(noop_mksap) < 1 else 'no'}, plain `doit` "
        f"{'yes' if statistics.median(noop_doit) < 1 else 'no'}; without the bytecode cache: `mksap run` "
        f"{'yes' if statistics.median(cold_mksap) < 1 else 'no'}, plain `doit` "
        f"{'yes' if statistics.median(cold_doit) < 1 else 'no'}. Load average before / after: {load0} / "
        f"{os.getloadavg()[0]:.2f} (the numbers are only as good as the machine is idle).",
        "",
        "A question whose files (source JSON, tables, every stage's artifact and output) all keep the "
        "stat signature recorded after the last run is not handed to doit (mksap/build/manifest.py); "
        "with none left, doit does not run. The rows with the manifest removed are the cost of a run "
        "that cannot use it (after `doit forget` or a config change: doit checks every task).",
    ]
    section = "\n".join(out)
    print(f"## {TITLE}\n\n{section}")
    if "--no-write" not in sys.argv:
        write_sections({TITLE: section})


if __name__ == "__main__":
    main()
