"""Progress of a long run: a live bar on a terminal, periodic log lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import Protocol, TextIO


class ProgressView(Protocol):
    def start(self, total: int) -> None: ...
    def update(self, done: int, failed: int) -> None: ...
    def finish(self) -> None: ...


class QuietProgress:
    def start(self, total: int) -> None:
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

    def start(self, total: int) -> None:
        self.total, self.t0 = total, time.monotonic()
        self.last = self.t0

    def update(self, done: int, failed: int) -> None:
        self.state = (done, failed)
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            self._line()

    def _line(self) -> None:
        done, failed = self.state
        elapsed = time.monotonic() - self.t0
        self.stream.write(f"progress: {done}/{self.total} tasks, {failed} failed, {elapsed:.1f}s\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.state[0]:
            self._line()


class BarProgress:
    """A rich progress bar: tasks done / to do, failures so far, elapsed time."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("[bold]building"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("tasks"),
            TextColumn("{task.fields[failed]} failed"),
            TimeElapsedColumn(),
            transient=False,
            console=_stderr_console(),
        )
        self._task = None

    def start(self, total: int) -> None:
        self._progress.start()
        self._task = self._progress.add_task("build", total=total, failed=0)

    def update(self, done: int, failed: int) -> None:
        if self._task is not None:
            self._progress.update(self._task, completed=done, failed=failed)

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
