"""Progress of a long run: a live bar on a terminal, periodic log lines otherwise. Both show the
LLM calls in flight when the run makes any ("37 in flight (limit 40)", from the provider runtime)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Protocol, TextIO

#: What the progress shows of the calls in flight, or None (no call made yet, or none to make).
Gauge = Callable[[], "str | None"]


def _no_gauge() -> str | None:
    return None


class ProgressView(Protocol):
    def start(self, total: int, gauge: Gauge = _no_gauge) -> None: ...
    def update(self, done: int, failed: int) -> None: ...
    def finish(self) -> None: ...


class QuietProgress:
    def start(self, total: int, gauge: Gauge = _no_gauge) -> None:
        pass

    def update(self, done: int, failed: int) -> None:
        pass

    def finish(self) -> None:
        pass


class LogProgress:
    """One line every `every` seconds and at the end: friendly to CI logs and `tee`."""

    def __init__(self, stream: TextIO | None = None, every: float = 10.0) -> None:
        self.stream = stream or sys.stderr
        self.every = every
        self.total = 0
        self.t0 = 0.0
        self.last = 0.0
        self.state = (0, 0)
        self.gauge: Gauge = _no_gauge

    def start(self, total: int, gauge: Gauge = _no_gauge) -> None:
        self.total, self.t0 = total, time.monotonic()
        self.last = self.t0
        self.gauge = gauge

    def update(self, done: int, failed: int) -> None:
        self.state = (done, failed)
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            self._line()

    def _line(self) -> None:
        done, failed = self.state
        elapsed = time.monotonic() - self.t0
        calls = self.gauge()
        flight = f", {calls}" if calls else ""
        self.stream.write(f"progress: {done}/{self.total} tasks, {failed} failed{flight}, {elapsed:.1f}s\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.state[0]:
            self._line()


class BarProgress:
    """A rich progress bar: tasks done / to do, failures so far, calls in flight, elapsed time."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("[bold]building"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("tasks"),
            TextColumn("{task.fields[failed]} failed"),
            TextColumn("{task.fields[flight]}"),
            TimeElapsedColumn(),
            transient=False,
            console=_stderr_console(),
        )
        self._task = None
        self.gauge: Gauge = _no_gauge

    def start(self, total: int, gauge: Gauge = _no_gauge) -> None:
        self.gauge = gauge
        self._progress.start()
        self._task = self._progress.add_task("build", total=total, failed=0, flight="")

    def update(self, done: int, failed: int) -> None:
        if self._task is not None:
            self._progress.update(self._task, completed=done, failed=failed, flight=self.gauge() or "")

    def finish(self) -> None:
        self._progress.stop()


def _stderr_console():  # type: ignore[no-untyped-def]
    from rich.console import Console

    return Console(stderr=True)


def choose_progress(quiet: bool, stream: TextIO | None = None) -> ProgressView:
    stream = stream or sys.stderr
    if quiet:
        return QuietProgress()
    if stream.isatty():
        return BarProgress()
    return LogProgress(stream)
