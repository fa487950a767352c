"""How providers that talk HTTP wait between attempts: the server's `retry-after` (capped, so
a `retry-after: 3600` never sleeps an hour), else full-jitter exponential backoff. Also the
readers of the times servers put in headers (durations, timestamps)."""

from __future__ import annotations

import email.utils
import math
import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


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


def duration(value: str | None) -> float | None:
    """Seconds in '1s', '6m0s', '20ms', '1h2m3.5s' (how OpenAI-style servers write a reset) or
    a plain number of seconds; None for anything else."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        parts = _DURATION.findall(value)
        if not parts or "".join(n + u for n, u in parts) != value:
            return None
        return sum(float(n) * _UNIT[u] for n, u in parts)
    return seconds if math.isfinite(seconds) else None


def seconds_until(value: str | None) -> float | None:
    """Seconds from now until an RFC 3339 time ('2026-01-01T00:00:05Z', how Anthropic writes a
    reset), at least 0; a duration is read as such; None when it is neither."""
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return duration(value)
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())
