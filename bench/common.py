"""What the benchmarks share: a generated bank, an isolated environment, timed builds, and
the fake Messages API server answering mksap's requests with a scaled real-world latency."""

from __future__ import annotations

import math
import os
import random
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
for extra in (str(ROOT), str(ROOT / "bench")):
    if extra not in sys.path:
        sys.path.insert(0, extra)

from make_bank import make_bank  # noqa: E402


def lognormal_latency(mean: float, sigma: float = 0.5, cap_factor: float = 20.0) -> Callable[[], float]:
    """Latencies with the given mean and a long right tail (lognormal), capped."""
    mu = math.log(mean) - sigma**2 / 2
    return lambda: min(mean * cap_factor, random.lognormvariate(mu, sigma))


@dataclass
class Build:
    """One timed `mksap run` in a subprocess."""

    wall: float
    stderr: str
    peak_rss_mb: float
    code: int


@dataclass
class Workdir:
    """An isolated bank + build state + LLM cache under bench/work/<name>."""

    name: str
    env_extra: dict[str, str]

    @property
    def path(self) -> Path:
        return ROOT / "bench" / "work" / self.name

    @property
    def data(self) -> Path:
        return self.path / "data"

    def make_bank(self, n: int, *, unique: bool = True) -> list[str]:
        self.path.mkdir(parents=True, exist_ok=True)
        return make_bank(self.data, n, unique=unique)

    def reset_state(self, *, keep_llm_cache: bool = False) -> None:
        for d in ("out", "cache") if keep_llm_cache else ("out", "cache", "llm"):
            shutil.rmtree(self.path / d, ignore_errors=True)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MKSAP_", "ANTHROPIC_"))}
        env.update(
            MKSAP_DATA=str(self.data),
            MKSAP_OUT=str(self.path / "out"),
            MKSAP_CACHE_DIR=str(self.path / "cache"),
            MKSAP_LLM_CACHE_DIR=str(self.path / "llm"),
            MKSAP_USER_CONFIG=str(self.path / "no-user-config.toml"),
        )
        env.update(self.env_extra)
        env.update(extra)
        return env

    def run(self, *args: str, check: bool = True, **env: str) -> Build:
        """`mksap run --quiet ARGS` with wall time and the run's own peak RSS.

        The peak comes from /usr/bin/time, not from wait4 here: a child forked from this
        (large) process inherits its resident pages in ru_maxrss before it execs.
        """
        err_path = self.path / "last-run.stderr"
        rss_path = self.path / "last-run.rss"
        rss_path.unlink(missing_ok=True)
        timer = ["/usr/bin/time", "-f", "%M", "-o", str(rss_path)] if Path("/usr/bin/time").exists() else []
        with open(err_path, "w") as err:
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                [*timer, str(BIN / "mksap"), "run", "--quiet", *args],
                env=self.env(**env),
                cwd=self.path,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t0
        code = os.waitstatus_to_exitcode(status)
        proc.returncode = code
        stderr = err_path.read_text()
        if check and code != 0:
            raise SystemExit(f"mksap run {' '.join(args)} failed ({code}):\n{stderr[-3000:]}")
        peak_kb = int(rss_path.read_text().split()[-1]) if rss_path.exists() else usage.ru_maxrss
        return Build(wall, stderr, peak_kb / 1024, code)


def summary_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if " built, " in line]
    return lines[-1] if lines else ""


RESULTS = ROOT / "bench" / "RESULTS.md"


def write_sections(sections: dict[str, str], *, header: str | None = None, path: Path = RESULTS) -> None:
    """Replace the named `## ` sections of the results file (append those it lacks), and its
    header (the text before the first section) when given; every other section stays as it is,
    so each benchmark writes only what it measured."""
    current = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    parts = re.split(r"(?m)^(?=## )", current)
    head, body = parts[0], parts[1:]
    by_title = {p.splitlines()[0]: p.rstrip() + "\n\n" for p in body}  # the last one lost its blank line
    for title, text in sections.items():
        by_title[f"## {title}"] = f"## {title}\n\n{text.strip()}\n\n"
    ordered = [by_title.pop(p.splitlines()[0]) for p in body] + list(by_title.values())
    head = header.strip() + "\n\n" if header is not None else head
    path.write_text((head + "".join(ordered)).rstrip() + "\n", encoding="utf-8")
