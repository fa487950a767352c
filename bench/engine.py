"""Engine benchmark (offline provider): cold build, no-op reruns of `mksap run` and `doit`, and a
rerun after one question changes. Prints a markdown table.

    python bench/engine.py [N]          (default N = 2200; work dir bench/work/)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_bank import make_bank  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / "work" / "engine"
BIN = Path(sys.executable).parent


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=WORK, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{cmd} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    summaries = [line for line in proc.stderr.splitlines() if " built, " in line]
    return elapsed, summaries[-1] if summaries else ""


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2200
    data = WORK / "data"
    ids = make_bank(data, n)
    env = {
        **os.environ,
        "MKSAP_DATA": str(data),
        "MKSAP_OUT": str(WORK / "out"),
        "MKSAP_CACHE_DIR": str(WORK / "cache"),
        "MKSAP_LLM_CACHE_DIR": str(WORK / "llm"),
        "MKSAP_PROVIDER": "offline",
    }
    for d in ("out", "cache", "llm"):
        subprocess.run(["rm", "-rf", str(WORK / d)], check=True)
    mksap = [str(BIN / "mksap"), "run", "--quiet", "-j", "2"]
    doit = [str(BIN / "doit"), "-f", str(ROOT / "dodo.py"), "--dir", str(WORK)]

    rows = []
    cold, line = timed(mksap, env)
    rows.append(("cold build (mksap run -j 2)", cold, line))
    noop, line = timed(mksap, env)
    rows.append(("no-op rerun (mksap run)", noop, line))
    noop_doit, line = timed(doit, env)
    rows.append(("no-op rerun (doit)", noop_doit, line))

    victim = data / ids[0][:2] / ids[0] / f"{ids[0]}.json"
    doc = json.loads(victim.read_text(encoding="utf-8"))
    doc["critique"] += " Aspirin is not indicated for primary prevention in this setting."
    victim.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    dry = subprocess.run([*mksap[:2], "--dry-run"], env=env, cwd=WORK, capture_output=True, text=True).stdout
    touched, line = timed(mksap, env)
    rows.append(("rerun after one question changed", touched, line))

    print(f"bank: {n} questions, {n * 8} tasks; machine: {os.cpu_count()} cores\n")
    print("| run | wall s | summary |\n|---|---:|---|")
    for name, secs, summary in rows:
        print(f"| {name} | {secs:.2f} | {summary} |")
    print(f"\nno-op / cold = {noop / cold:.1%} (mksap run), {noop_doit / cold:.1%} (doit)")
    print(f"tasks planned after changing {ids[0]}: {dry.strip().splitlines()[-1]}")


if __name__ == "__main__":
    main()
