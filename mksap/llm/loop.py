"""The one event loop of a process's providers, in a background thread.

doit's worker threads are synchronous; the providers' clients are asynchronous and must all
live on one loop (measured: `asyncio.run` per call with a shared client fails, a client per
call opens a connection per call). Worker threads hand coroutines to this loop and wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    """An event loop started on first use in a daemon thread; `stop()` ends it."""

    def __init__(self, on_start: Callable[[], None] = lambda: None) -> None:
        self._on_start = on_start
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._loop is not None

    def start(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        """Start `coroutine` on the loop (starting the loop if needed); its future, to wait on."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._ensure())

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` on the loop and wait for its result."""
        return self.start(coroutine).result()

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._on_start()
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=loop.run_forever, name="mksap-providers", daemon=True)
                self._thread.start()
                self._loop = loop
            return self._loop

    def cancel_all(self) -> None:
        """Cancel every task on the loop (Ctrl-C / SIGTERM): threads waiting on them fail fast."""
        loop = self._loop
        if loop is None:
            return

        def cancel() -> None:
            for task in asyncio.all_tasks(loop):
                task.cancel()

        loop.call_soon_threadsafe(cancel)

    def stop(self, last: Coroutine[Any, Any, Any] | None = None, timeout: float = 10.0) -> None:
        """Run `last` (best effort, e.g. closing clients), then stop the loop and its thread."""
        loop = self._loop
        if loop is None:
            if last is not None:
                last.close()
            return
        if last is not None:
            with contextlib.suppress(Exception):  # closing is best effort; the process is ending
                asyncio.run_coroutine_threadsafe(last, loop).result(timeout=timeout)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=timeout)
        self._loop = None
