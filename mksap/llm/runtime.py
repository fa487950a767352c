"""One provider runtime per process: one event loop in a background thread, shared by every
doit worker thread. One client, one connection pool, one concurrency limit and one rate limiter
serve all workers (measured: `asyncio.run` per action with a shared client fails; a client per
action opens a connection per call).

Worker threads call `complete()`, which blocks until the answer is there. Identical requests in
flight at the same moment are merged into one call. A `miss_handler` (set by `mksap run --batch`)
is asked on every cache miss before a call is made: it may supply an answer (validated and cached
like a fresh one), let the call go ahead, or fail the request (e.g. "waiting for batch").
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pydantic import ValidationError

from mksap.contracts.errors import AnswerError, ConfigError, ProviderStopError
from mksap.contracts.provider import LLMRequest, LLMResponse, Provider, Usage
from mksap.contracts.registry import Registry
from mksap.llm.limits import RateLimiter
from mksap.llm.loop import LoopThread
from mksap.settings import Settings

if TYPE_CHECKING:
    from mksap.llm.cache import ResponseCache

Accept = Callable[[dict[str, Any]], object]
T = TypeVar("T")

#: Usage of answers that came from a batch API is totalled under "<model> (batch)" and priced
#: at this fraction of the standard price (Anthropic's Message Batches: 50%).
BATCH_SUFFIX = " (batch)"
BATCH_PRICE_FACTOR = 0.5


class MissHandler(Protocol):
    def resolve(self, provider: Provider, request: LLMRequest, key: str) -> LLMResponse | None:
        """Called (in a worker thread) on a cache miss, before any call: return an answer to
        validate and cache like a fresh one, None to call the provider, or raise to fail."""
        ...


@dataclass
class ProviderTotals:
    calls: int = 0
    cache_hits: int = 0
    merged: int = 0
    failures: int = 0
    usage: Usage = field(default_factory=Usage)


@dataclass(frozen=True)
class ProviderChain:
    """The providers a run uses, in fallback order, and why `auto` passed over any."""

    names: list[str]
    passed_over: dict[str, str] = field(default_factory=dict)


def provider_chain(settings: Settings, registry: Registry) -> ProviderChain:
    """Names from `--provider a,b`; `auto` means the first ready provider of `auto_providers`.
    An unknown name fails here, listing the valid ones."""
    names = [n.strip() for n in settings.provider.split(",") if n.strip()]
    if not names:
        valid = ", ".join(registry.names("provider"))
        raise ConfigError(f"--provider names no provider; give one of: {valid} (or auto, or a chain 'a,b')")
    if names != ["auto"]:
        for name in names:
            registry.provider(name)
        return ProviderChain(names)
    passed_over: dict[str, str] = {}
    for name in (n.strip() for n in settings.auto_providers.split(",") if n.strip()):
        reason = registry.provider(name).unready(settings)
        if reason is None:
            return ProviderChain([name], passed_over)
        passed_over[name] = reason
    tried = "; ".join(f"{n}: {r}" for n, r in passed_over.items()) or "auto_providers is empty"
    raise ConfigError(f"no provider of auto_providers is ready ({tried}); name one with --provider")


class ProviderRuntime:
    """Provider instances, limits, in-flight merging and (optionally) the response cache."""

    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        *,
        cache: ResponseCache | None = None,
        notice: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.cache = cache
        self.notice = notice
        self.chain = provider_chain(settings, registry)
        self.names = self.chain.names
        self._providers: list[Provider] | None = None
        self._stopped: dict[str, str] = {}
        self.loop = LoopThread(on_start=self._announce)
        self._inflight: dict[str, asyncio.Future[LLMResponse]] = {}
        self._semaphore: asyncio.Semaphore | None = None
        self._limiter: RateLimiter | None = None
        self.totals: dict[tuple[str, str], ProviderTotals] = {}
        self.miss_handler: MissHandler | None = None
        self._announced = False

    def notices(self) -> list[str]:
        """The one-time notice of the provider `auto` chose over others (empty once given)."""
        if self._announced or not self.chain.passed_over:
            return []
        self._announced = True
        skipped = "; ".join(f"'{n}' is not ready ({r})" for n, r in self.chain.passed_over.items())
        name = self.names[0]
        return [f"provider auto: {skipped}; using '{name}' (outputs are marked provider={name})."]

    # -- identity (no network, no heavy imports) -------------------------------------------
    def providers(self) -> list[Provider]:
        if self._providers is None:
            self._providers = [self.registry.provider(n)(self.settings) for n in self.names]
        return self._providers

    def identity(self) -> tuple[str, str]:
        """(provider chain, model of the first provider): what a stage's output depends on."""
        first = self.providers()[0]
        return ",".join(self.names), first.model

    def estimate_cost(self, name: str, model: str, usage: Usage) -> float | None:
        factor = BATCH_PRICE_FACTOR if model.endswith(BATCH_SUFFIX) else 1.0
        for p in self.providers():
            if p.name == name:
                cost = p.estimate_cost(usage)
                return None if cost is None else cost * factor
        return None

    def add_batch_usage(self, name: str, model: str, usage: Usage) -> None:
        """Count one answer paid through a batch API (priced at `BATCH_PRICE_FACTOR`)."""
        totals = self.totals.setdefault((name, model + BATCH_SUFFIX), ProviderTotals())
        totals.calls += 1
        totals.usage = totals.usage + usage

    # -- thread side -----------------------------------------------------------------------
    def complete(self, request: LLMRequest, accept: Accept | None = None) -> LLMResponse:
        """Answer `request` from any thread; blocks until done.

        `accept` validates the parsed answer (raising on a bad one) before it is cached, so an
        invalid answer is never stored: it raises `AnswerError` instead.
        """
        return self.loop.call(self._complete(request, accept))

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` on the providers' event loop (their clients live there) and wait."""
        return self.loop.call(coroutine)

    def start(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        """Start `coroutine` on the providers' event loop; its future, to wait on."""
        return self.loop.start(coroutine)

    def _announce(self) -> None:
        for line in self.notices():  # not announced before the run: say it now
            self.notice(line)

    def cancel_all(self) -> None:
        """Cancel every call in flight (Ctrl-C / SIGTERM): workers waiting on them fail fast."""
        self.loop.cancel_all()

    def close(self) -> None:
        """Close providers, record cache statistics, stop the loop thread."""
        if self.cache is not None:
            self.cache.save_run_stats()
        if self.loop.running:
            self.loop.stop(_close_all(self._providers) if self._providers else None)

    # -- loop side -------------------------------------------------------------------------
    async def _complete(self, request: LLMRequest, accept: Accept | None) -> LLMResponse:
        providers = self.providers()
        last_stop: ProviderStopError | None = None
        for provider in providers:
            if provider.name in self._stopped:
                continue
            try:
                return await self._complete_with(provider, request, accept)
            except ProviderStopError as e:
                last_stop = e
                if provider.name not in self._stopped:
                    self._stopped[provider.name] = str(e)
                    rest = [p.name for p in providers if p.name not in self._stopped]
                    then = f"; continuing on '{rest[0]}'" if rest else "; no provider left"
                    self.notice(f"provider '{provider.name}' stopped: {e}{then}")
        if last_stop is not None:
            raise last_stop
        raise ProviderStopError(f"every provider has stopped: {'; '.join(self._stopped.values())}")

    async def _complete_with(self, provider: Provider, request: LLMRequest, accept: Accept | None) -> LLMResponse:
        key = request.key(provider.name, provider.model)
        totals = self.totals.setdefault((provider.name, provider.model), ProviderTotals())
        pending = self._inflight.get(key)
        if pending is not None:
            totals.merged += 1
            return await asyncio.shield(pending)
        future: asyncio.Future[LLMResponse] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            response = await self._fetch(provider, request, key, totals, accept)
        except BaseException as e:
            if not future.done():
                future.set_exception(e)
                future.exception()  # mark retrieved: merged waiters may be none
            raise
        else:
            future.set_result(response)
            return response
        finally:
            self._inflight.pop(key, None)

    async def _fetch(
        self, provider: Provider, request: LLMRequest, key: str, totals: ProviderTotals, accept: Accept | None
    ) -> LLMResponse:
        use_cache = self.cache is not None and not provider.local
        if use_cache:
            assert self.cache is not None
            hit = await asyncio.to_thread(self.cache.get, key)
            if hit is not None:
                totals.cache_hits += 1
                return hit.model_copy(update={"from_cache": True})
        if self.miss_handler is not None and not provider.local:
            supplied = await asyncio.to_thread(self.miss_handler.resolve, provider, request, key)
            if supplied is not None:
                return await self._accept_and_store(supplied, key, totals, accept, use_cache)
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.settings.max_concurrency)
            self._limiter = RateLimiter(self.settings.rpm, self.settings.tpm)
        async with self._semaphore:
            if not provider.local:
                assert self._limiter is not None
                await self._limiter.acquire(_estimate_tokens(request))
            try:
                response = await provider.complete(request)
            except BaseException:
                totals.failures += 1
                raise
        if not provider.local and self._limiter is not None:
            self._limiter.tokens.charge(response.usage.output_tokens)
        totals.calls += 1
        totals.usage = totals.usage + response.usage
        return await self._accept_and_store(response, key, totals, accept, use_cache)

    async def _accept_and_store(
        self, response: LLMResponse, key: str, totals: ProviderTotals, accept: Accept | None, use_cache: bool
    ) -> LLMResponse:
        """Validate with `accept` (an invalid answer raises `AnswerError`), then cache."""
        if accept is not None:
            try:
                accept(response.data)
            except ValidationError as e:
                totals.failures += 1
                raise AnswerError(_first_error(e), response.raw_text) from None
        if use_cache:
            assert self.cache is not None
            await asyncio.to_thread(self.cache.put, key, response)
        return response


async def _close_all(providers: list[Provider]) -> None:
    await asyncio.gather(*(p.aclose() for p in providers), return_exceptions=True)


def _first_error(e: ValidationError) -> str:
    err = e.errors()[0]
    where = ".".join(str(x) for x in err["loc"]) or "answer"
    return f"schema mismatch at {where}: {err['msg']}"


def _estimate_tokens(request: LLMRequest) -> int:
    """About four characters a token: enough to pace a tokens-per-minute limit."""
    chars = len(request.system) + sum(len(m.content) for m in request.messages)
    return chars // 4 + 1
