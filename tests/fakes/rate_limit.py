"""The rate limits of a fake API, applied as the real APIs document theirs: one token bucket per
limit, holding a minute's worth and refilled continuously (not reset at fixed intervals). A
request the buckets cannot take is refused whole (nothing is taken) and told how long to wait.

Shared by the fake Messages API and the fake Chat Completions server; standard library only.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

__all__ = ["ApiLimiter", "Quota", "RateLimit"]


@dataclass(frozen=True)
class RateLimit:
    """Per-minute limits of a fake API key; 0 = not limited (and not reported in headers).

    ``input_tpm`` / ``output_tpm`` are Anthropic's ITPM / OTPM (input counts uncached tokens and
    cache writes; output is counted when the answer is sent: the real API's up-front estimate
    from ``max_tokens`` is not modelled). ``tpm`` is OpenAI's TPM (input plus output).
    """

    rpm: int = 0
    input_tpm: int = 0
    output_tpm: int = 0
    tpm: int = 0

    def per_kind(self) -> dict[str, int]:
        kinds = {"requests": self.rpm, "input_tokens": self.input_tpm, "output_tokens": self.output_tpm}
        return {k: v for k, v in {**kinds, "tokens": self.tpm}.items() if v > 0}


@dataclass(frozen=True)
class Quota:
    """One limit as the headers report it."""

    limit: int
    remaining: int
    reset: float  # seconds until the bucket is full again


class _Bucket:
    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.level = self.capacity
        self.stamp = time.monotonic()

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` fits (0 when it does now)."""
        need = min(amount, self.capacity)
        return max(0.0, (need - self.level) / self.rate)


class ApiLimiter:
    """The buckets of one fake API key (thread-safe)."""

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self._buckets = {kind: _Bucket(n) for kind, n in limit.per_kind().items()}
        self._lock = threading.Lock()

    def leave(self, remaining: float, kind: str = "requests") -> None:
        """As if the key had just been used by someone else: `remaining` left of limit `kind`
        (tests start in the steady state this way, without a minute's worth of burst first)."""
        with self._lock:
            bucket = self._buckets[kind]
            bucket.refill(time.monotonic())
            bucket.level = min(bucket.level, float(remaining))

    def admit(self, *, input_tokens: float = 0.0) -> float | None:
        """Take one request (and its input tokens) if every bucket has room: None. Else take
        nothing and return the seconds until it would fit (at least 1, as the real `retry-after`
        is a whole number of seconds). An output bucket in debt refuses until it is paid back."""
        want = {"requests": 1.0, "input_tokens": input_tokens, "output_tokens": 1.0, "tokens": input_tokens}
        with self._lock:
            now = time.monotonic()
            waits = []
            for kind, bucket in self._buckets.items():
                bucket.refill(now)
                waits.append(bucket.wait_for(want[kind]))
            if any(waits):
                return float(max(1, math.ceil(max(waits))))
            for kind, bucket in self._buckets.items():
                if kind != "output_tokens":
                    bucket.level -= min(want[kind], bucket.capacity)
        return None

    def charge_output(self, tokens: float) -> None:
        """Count the output of an answer being sent (the bucket may go into debt)."""
        with self._lock:
            for kind in ("output_tokens", "tokens"):
                bucket = self._buckets.get(kind)
                if bucket is not None:
                    bucket.refill(time.monotonic())
                    bucket.level -= tokens

    def quotas(self) -> dict[str, Quota]:
        """What the headers say now, by kind."""
        with self._lock:
            now = time.monotonic()
            out = {}
            for kind, bucket in self._buckets.items():
                bucket.refill(now)
                left = max(0.0, bucket.level)
                out[kind] = Quota(int(bucket.capacity), int(left), (bucket.capacity - bucket.level) / bucket.rate)
            return out
