"""How providers that talk HTTP wait between attempts: the server's `retry-after` (capped, so
a `retry-after: 3600` never sleeps an hour), else full-jitter exponential backoff."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass
class RetryPolicy:
    """Attempts and backoff of one provider (tests shrink them)."""

    max_attempts: int = 6
    base: float = 1.0
    factor: float = 2.0
    cap: float = 60.0  # also caps a server's retry-after

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.cap)
        ceiling = min(self.cap, self.base * self.factor ** (attempt - 1))
        return random.uniform(0.0, ceiling)


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from `retry-after-ms` or `retry-after` (seconds or an HTTP date), if present."""
    try:
        if (ms := headers.get("retry-after-ms")) is not None:
            return float(ms) / 1000
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return float(value)
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return when.timestamp() - time.time()
    except (TypeError, ValueError, OverflowError):
        return None
