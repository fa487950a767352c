"""One build at a time per build state. Two doit processes on one dependency DB lose records,
so every entry point (`mksap run`, `doit`) takes this lock before touching it."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from mksap.contracts.errors import BuildLockedError


class BuildLock:
    """An exclusive `flock` on `<build_dir>/lock`, released when the process ends, even on SIGKILL."""

    def __init__(self, build_dir: Path) -> None:
        self.path = build_dir / "lock"
        self._fd: int | None = None

    def acquire(self, wait: bool = False, poll: float = 0.2) -> BuildLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not wait:
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
                    os.close(fd)
                    raise BuildLockedError(
                        f"another build (pid {holder}) is using {self.path.parent}; "
                        "wait for it to finish (`mksap run --wait` queues behind it)"
                    ) from None
                time.sleep(poll)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> BuildLock:
        return self.acquire() if self._fd is None else self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.release()
