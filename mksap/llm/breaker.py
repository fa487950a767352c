"""A circuit breaker per provider: a dead endpoint stops getting calls after a few failures.

Each failed call (after the provider's own retries) is counted by kind; a call the endpoint
answered, even unusably, resets the count. `threshold` failures of one kind in a row, with no
answer between them, open the breaker: the runtime stops that provider for the rest of the run
(the next one of the chain takes over, or the run ends with one line). Without it, a server that
always answers 500 took 804 requests and 283 s to fail 120 questions one by one.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field

_NUMBERS = re.compile(r"\d+(?:\.\d+)?")


def failure_kind(message: str) -> str:
    """What kind of failure a provider's error line says, without the parts that vary from
    call to call: its last attempt's reason ('... gave up after 6 attempts; last: HTTP 500 ...'),
    its numbers blanked ('no answer within # s', 'HTTP #')."""
    reason = message.rpartition("; last: ")[2] or message
    return _NUMBERS.sub("#", reason)[:120]


@dataclass
class CircuitBreaker:
    """Consecutive failures of one kind; opens at `threshold`."""

    threshold: int
    failures: int = 0
    kind: str = ""
    last: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def answered(self) -> None:
        """The endpoint answered a call: it is alive."""
        with self._lock:
            self.failures = 0
            self.kind = ""

    def failed(self, message: str) -> str | None:
        """Count a failed call; the reason to stop the provider once the breaker opens."""
        kind = failure_kind(message)
        with self._lock:
            if kind != self.kind:
                self.kind, self.failures = kind, 0
            self.failures += 1
            self.last = message
            if self.failures < self.threshold:
                return None
            return f"{self.failures} calls in a row failed the same way with no answer between them (last: {message})"
