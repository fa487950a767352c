"""Request- and token-rate limits shared by every call of a run (one event loop)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mksap.settings import Settings


class TokenBucket:
    """Continuous refill at `per_minute`, holding at most `burst` units. 0 = unlimited."""

    def __init__(self, per_minute: int, burst_seconds: float = 10.0) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * burst_seconds) if per_minute else 0.0
        self.level = self.capacity
        self.stamp = time.monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    async def take(self, amount: float = 1.0) -> None:
        if not self.rate:
            return
        amount = min(amount, self.capacity)
        async with self._lock:  # first come, first served
            self._refill()
            while self.level < amount:
                await asyncio.sleep((amount - self.level) / self.rate)
                self._refill()
            self.level -= amount

    def charge(self, amount: float) -> None:
        """Debit usage learnt after the fact (output tokens); may go negative."""
        if self.rate:
            self._refill()
            self.level -= amount


class RateLimiter:
    """Requests per minute and tokens per minute, as the Anthropic API counts them."""

    def __init__(self, rpm: int, tpm: int) -> None:
        self.requests = TokenBucket(rpm)
        self.tokens = TokenBucket(tpm)

    async def acquire(self, estimated_tokens: int) -> None:
        await self.requests.take(1)
        await self.tokens.take(estimated_tokens)


def http_pool(settings: Settings) -> tuple[Any, Any]:
    """(timeout, connection limits) for an HTTP provider's SDK client: the overall deadline
    `call_timeout` (connect within 10 s), and as many connections as calls may be in flight."""
    import httpx2  # the SDKs' HTTP stack (plain httpx objects are rejected by them)

    seconds, size = settings.call_timeout, settings.max_concurrency
    timeout = httpx2.Timeout(seconds, connect=min(10.0, seconds))
    return timeout, httpx2.Limits(max_connections=size + 4, max_keepalive_connections=size)
