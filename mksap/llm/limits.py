"""How many calls go out, and how fast: the calls in flight and the request and token rates of
one provider, as the user capped them and as the server's rate-limit headers say.

A provider that reports its server's rate-limit headers (`Provider.reports_rate_limits`) starts
with `START_WINDOW` calls in flight, since the limits are unknown until the first answer (a burst
of `max_concurrency` calls against a key of 50 requests a minute would be refused). The first
answer's headers give the request and token rates, and calls are paced at them from then on. The
window then widens by one call for each answer that shows headroom (the server has room for
another round of calls as large as the window) while the window, not the pacing, is what holds
calls back. It halves on a 429 (at most once for each round of calls) and never goes above
`max_concurrency`. An answer without rate-limit headers (a local server) leaves the window where
it is. Any other provider (CLI tools, local ones) has a fixed window of `max_concurrency`.

Everything here runs on the runtime's one event loop, except `in_flight_line`, which only reads.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mksap.llm.retry import duration, retry_after, seconds_until
from mksap.llm.tokens import expected_output_tokens, prompt_tokens

if TYPE_CHECKING:
    from mksap.contracts.provider import LLMRequest, Provider, Usage
    from mksap.settings import Settings

#: Calls in flight before the first answer's headers are known.
START_WINDOW = 8
#: Calls are paced at this fraction of a rate the server states, so that its bucket keeps a
#: little slack for the jitter between our clock and its.
PACE = 0.95
#: A 429's `retry-after` holds every new call of the provider, up to this many seconds.
PAUSE_CAP = 60.0
#: The user's `rpm`/`tpm` caps allow a burst of this many seconds' worth.
CAP_BURST_SECONDS = 10.0

#: What the limits count. `tokens` is input plus output (`tpm`, OpenAI's TPM); Anthropic counts
#: input and output apart.
KINDS = ("requests", "input_tokens", "output_tokens", "tokens")


@dataclass(frozen=True)
class Cost:
    """What one call counts against each limit."""

    requests: float = 1.0
    input_tokens: float = 0.0
    output_tokens: float = 0.0

    def of(self, kind: str) -> float:
        if kind == "tokens":
            return self.input_tokens + self.output_tokens
        value: float = getattr(self, kind)
        return value

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            self.requests + other.requests,
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
        )

    def times(self, n: float) -> Cost:
        return Cost(self.requests * n, self.input_tokens * n, self.output_tokens * n)

    @classmethod
    def expected(cls, request: LLMRequest) -> Cost:
        """Before the call: its prompt (about 4 characters a token) and its expected answer."""
        return cls(1, prompt_tokens(request), expected_output_tokens(request))

    @classmethod
    def used(cls, usage: Usage) -> Cost:
        """After it: the input the API rate-limits (cache reads do not count) and the output."""
        return cls(1, usage.input_tokens + usage.cache_creation_input_tokens, usage.output_tokens)


NO_COST = Cost(0)


# -- what the server says -------------------------------------------------------------------------


@dataclass(frozen=True)
class Quota:
    """One limit as an answer reported it: its size per minute, what is left of it, and the
    seconds until it is whole again (None when not said)."""

    limit: float
    remaining: float
    reset: float | None = None


@dataclass(frozen=True)
class RateReport:
    """What the headers of one answer say about the rate limits; no quotas: the server states
    none (a local server, a CLI tool)."""

    quotas: dict[str, Quota] = field(default_factory=dict)
    retry_after: float | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateReport:
        """Anthropic's `anthropic-ratelimit-<kind>-limit/-remaining/-reset` (reset an RFC 3339
        time) or OpenAI's `x-ratelimit-limit/-remaining/-reset-<requests|tokens>` (reset a
        duration such as '6m0s')."""
        quotas: dict[str, Quota] = {}
        for kind in KINDS:
            quota = _anthropic_quota(headers, kind) or _openai_quota(headers, kind)
            if quota is not None:
                quotas[kind] = quota
        if "input_tokens" in quotas or "output_tokens" in quotas:
            quotas.pop("tokens", None)  # Anthropic's tokens-* repeat the tighter of the two
        return cls(quotas, retry_after(headers))

    def headroom(self, needed: Cost) -> bool:
        """Every limit reported has room for `needed` (False when none is reported)."""
        return bool(self.quotas) and all(q.remaining >= needed.of(kind) for kind, q in self.quotas.items())


def _number(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


def _quota(limit: str | None, remaining: str | None, reset: float | None) -> Quota | None:
    size, left = _number(limit), _number(remaining)
    if size is None or left is None or size <= 0:
        return None
    return Quota(size, min(max(left, 0.0), size), reset)


def _anthropic_quota(headers: Mapping[str, str], kind: str) -> Quota | None:
    name = f"anthropic-ratelimit-{kind.replace('_', '-')}"
    reset = seconds_until(headers.get(f"{name}-reset"))
    return _quota(headers.get(f"{name}-limit"), headers.get(f"{name}-remaining"), reset)


def _openai_quota(headers: Mapping[str, str], kind: str) -> Quota | None:
    if kind not in ("requests", "tokens"):
        return None
    reset = duration(headers.get(f"x-ratelimit-reset-{kind}"))
    return _quota(headers.get(f"x-ratelimit-limit-{kind}"), headers.get(f"x-ratelimit-remaining-{kind}"), reset)


# -- pacing -----------------------------------------------------------------------------------------


class TokenBucket:
    """Continuous refill at `per_minute`, holding at most `capacity` units. 0 = unlimited."""

    def __init__(self, per_minute: float = 0, burst_seconds: float = CAP_BURST_SECONDS) -> None:
        self.rate = 0.0
        self.capacity = 0.0
        self.level = 0.0
        self.stamp = time.monotonic()
        self._lock = asyncio.Lock()
        self.set_rate(per_minute, per_minute / 60.0 * burst_seconds)

    @property
    def limited(self) -> bool:
        return self.rate > 0

    def set_rate(self, per_minute: float, capacity: float) -> None:
        """Refill at `per_minute` from now on, holding at most `capacity` (a bucket that was
        unlimited starts full)."""
        was_limited = self.limited
        self._refill()
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, capacity) if per_minute > 0 else 0.0
        self.level = min(self.level, self.capacity) if was_limited else self.capacity

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    async def take(self, amount: float = 1.0) -> None:
        if not self.limited:
            return
        async with self._lock:  # first come, first served
            self._refill()
            need = min(amount, self.capacity)
            while self.level < need:
                await asyncio.sleep((need - self.level) / self.rate)
                self._refill()
                need = min(amount, self.capacity)  # the rate may have been learnt meanwhile
            self.level -= need

    def charge(self, amount: float) -> None:
        """Debit usage learnt after the fact (negative: a refund); the level may go negative."""
        if self.limited:
            self._refill()
            self.level = min(self.capacity, self.level - amount)

    def sync(self, level: float) -> None:
        """Lower the level to `level` (what the server's own bucket holds by its headers)."""
        if self.limited:
            self._refill()
            self.level = min(self.level, level)


class RateLimiter:
    """Requests and tokens per minute: one bucket per kind, paced at the lower of the user's cap
    (`rpm` for requests, `tpm` for input+output tokens; 0 = none) and `PACE` times the rate the
    server states. A bucket the server states holds a minute's worth, as the API's own does."""

    def __init__(self, rpm: int, tpm: int) -> None:
        self.caps = {"requests": float(rpm), "tokens": float(tpm)}
        self.buckets = {kind: TokenBucket(self.caps.get(kind, 0.0)) for kind in KINDS}
        self.learnt: dict[str, float] = {}  # kind -> the server's limit per minute
        self._resume_at = 0.0

    async def acquire(self, cost: Cost) -> None:
        """Wait until `cost` fits every bucket (and any pause a 429 asked for is over)."""
        while (wait := self._resume_at - time.monotonic()) > 0:
            await asyncio.sleep(wait)
        for kind, bucket in self.buckets.items():
            await bucket.take(cost.of(kind))

    def charge(self, cost: Cost) -> None:
        for kind, bucket in self.buckets.items():
            bucket.charge(cost.of(kind))

    def settle(self, expected: Cost, used: Cost) -> None:
        """Correct what a call took by its expected cost with what it really used."""
        for kind, bucket in self.buckets.items():
            bucket.charge(used.of(kind) - expected.of(kind))

    def pause(self, seconds: float) -> None:
        """Send nothing new for `seconds` (capped at `PAUSE_CAP`)."""
        self._resume_at = max(self._resume_at, time.monotonic() + min(max(seconds, 0.0), PAUSE_CAP))

    def learn(self, report: RateReport, *, elapsed: float = 0.0, since: Cost = NO_COST) -> None:
        """Take the rates and levels of `report`, an answer to a call sent `elapsed` seconds ago,
        after which calls costing `since` were sent (the server had not counted them yet)."""
        for kind, quota in report.quotas.items():
            bucket, cap = self.buckets[kind], self.caps.get(kind, 0.0)
            self.learnt[kind] = quota.limit
            if cap and cap <= quota.limit * PACE:
                bucket.set_rate(cap, cap / 60.0 * CAP_BURST_SECONDS)
            else:
                bucket.set_rate(quota.limit * PACE, quota.limit)
            refilled = quota.remaining + elapsed * quota.limit / 60.0
            bucket.sync(min(quota.limit, refilled) - since.of(kind))


# -- calls in flight -------------------------------------------------------------------------------


class ConcurrencyWindow:
    """How many calls may be in flight at once: `limit`, between 1 and `ceiling`. Each admission
    gets a ticket number, so that one round of refused calls halves the window only once."""

    def __init__(self, ceiling: int, start: int) -> None:
        self.ceiling = max(1, ceiling)
        self.limit = max(1, min(start, self.ceiling))
        self.in_flight = 0
        self._issued = 0
        self._round = 0  # the first ticket issued after the last halving
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> int:
        """Wait for a free slot; the ticket number of this admission."""
        if self.in_flight < self.limit and not self._waiters:
            self.in_flight += 1
        else:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter  # `_wake` counted the slot as ours
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self.release()  # handed a slot just as we were cancelled
                elif waiter in self._waiters:
                    self._waiters.remove(waiter)
                raise
        self._issued += 1
        return self._issued - 1

    def release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def widen(self) -> None:
        """One more call in flight (up to the ceiling)."""
        self.limit = min(self.ceiling, self.limit + 1)
        self._wake()

    def halve(self, ticket: int | None) -> None:
        """Half as many calls in flight (at least one); a refusal of a call admitted before the
        last halving is of the same round and does not halve again."""
        if ticket is not None and ticket < self._round:
            return
        self.limit = max(1, self.limit // 2)
        self._round = self._issued

    def _wake(self) -> None:
        while self._waiters and self.in_flight < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)


# -- one provider's limits ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Ticket:
    number: int
    cost: Cost
    sent_at: float


#: The call being made in this task: a provider's report (see `ProviderLimits.observe`) is about it.
_TICKET: ContextVar[_Ticket | None] = ContextVar("mksap_call_ticket", default=None)


class ProviderLimits:
    """What each call to one provider instance passes before it is sent: a slot in its window
    of calls in flight, then the pacing of its rates; and what its answers' headers teach both
    (see the module docstring)."""

    def __init__(self, ceiling: int, rpm: int, tpm: int, *, adaptive: bool, local: bool = False) -> None:
        self.adaptive = adaptive
        self.local = local
        self.window = ConcurrencyWindow(ceiling, START_WINDOW if adaptive else ceiling)
        self.rates = RateLimiter(rpm, tpm)
        self.flying: dict[int, _Ticket] = {}
        self.refusals = 0

    @classmethod
    def for_provider(cls, provider: Provider, settings: Settings) -> ProviderLimits:
        """Local providers are not paced; providers that report rate limits adapt."""
        if provider.local:
            return cls(settings.max_concurrency, 0, 0, adaptive=False, local=True)
        return cls(settings.max_concurrency, settings.rpm, settings.tpm, adaptive=provider.reports_rate_limits)

    @property
    def in_flight(self) -> int:
        """Calls sent and not yet answered (past the pacing)."""
        return len(self.flying)

    @asynccontextmanager
    async def admit(self, request: LLMRequest) -> AsyncIterator[None]:
        """Hold a slot and the request's expected cost while the call is made."""
        cost = Cost.expected(request)
        number = await self.window.acquire()
        try:
            await self.rates.acquire(cost)
            ticket = self.flying[number] = _Ticket(number, cost, time.monotonic())
            token = _TICKET.set(ticket)
            try:
                yield
            finally:
                _TICKET.reset(token)
                del self.flying[number]
        finally:
            self.window.release()

    def settle(self, request: LLMRequest, usage: Usage) -> None:
        """Correct the rates' buckets with what an answered call really used."""
        self.rates.settle(Cost.expected(request), Cost.used(usage))

    def observe(self, headers: Mapping[str, Any], refused: bool) -> None:
        """What a provider saw on one HTTP answer (`refused`: a 429): learn the rates, then
        widen the window (headroom, and the window full) or halve it (refused)."""
        report = RateReport.from_headers(headers)
        ticket = _TICKET.get()
        if ticket is not None:
            after = [t.cost for n, t in self.flying.items() if n > ticket.number]
            self.rates.learn(report, elapsed=time.monotonic() - ticket.sent_at, since=sum(after, NO_COST))
        else:  # not a call of ours (a probe, a batch): every call in flight may be uncounted
            self.rates.learn(report, since=sum((t.cost for t in self.flying.values()), NO_COST))
        if refused:
            self.refusals += 1
            self.rates.pause(report.retry_after or 0.0)
            if ticket is not None:
                self.rates.charge(ticket.cost)  # the provider sends it again
            self.window.halve(ticket.number if ticket is not None else None)
        elif self.in_flight >= self.window.limit:
            one = ticket.cost if ticket is not None else Cost()
            if report.headroom(one.times(self.window.limit)):  # room for another round as large
                self.window.widen()


def in_flight_line(limits: list[ProviderLimits]) -> str | None:
    """'<n> in flight (limit <m>)' over the providers that are not local (the limit when one
    adapts), for the progress line; None when none was called yet."""
    called = [p for p in limits if not p.local]
    if not called:
        return None
    line = f"{sum(p.in_flight for p in called)} in flight"
    adaptive = [p.window.limit for p in called if p.adaptive]
    return f"{line} (limit {sum(adaptive)})" if adaptive else line


def http_pool(settings: Settings) -> tuple[Any, Any]:
    """(timeout, connection limits) for an HTTP provider's SDK client: the overall deadline
    `call_timeout` (connect within 10 s), and as many connections as calls may be in flight."""
    import httpx2  # the SDKs' HTTP stack (plain httpx objects are rejected by them)

    seconds, size = settings.call_timeout, settings.max_concurrency
    timeout = httpx2.Timeout(seconds, connect=min(10.0, seconds))
    return timeout, httpx2.Limits(max_connections=size + 4, max_keepalive_connections=size)
