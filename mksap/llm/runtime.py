"""One provider runtime per process: one event loop in a background thread, shared by every
doit worker thread. One client, one connection pool, one concurrency limit and one rate limiter
serve all workers (measured: `asyncio.run` per action with a shared client fails; a client per
action opens a connection per call).

Worker threads call `complete()`, which blocks until the answer is there. Identical requests in
flight at the same moment are merged into one call. A `miss_handler` (set by `mksap run --batch`
and `mksap run --estimate`) is asked on every cache miss before a call is made: it may supply an
answer (validated and cached like a fresh one), let the call go ahead, or fail the request (e.g.
"waiting for batch").

A call names the stage it serves (`stage=`, not part of the cache key): a stage with its own
`[stages.<name>]` provider or model gets its own provider chain, and miss handlers read the stage
of the call they serve with `current_call()`. With `max_cost` set, each request's estimated cost
is reserved before it is sent and settled with the real usage after (`mksap.llm.budget`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from pydantic import ValidationError

from mksap.contracts.errors import AnswerError, ConfigError, CostCapError, ProviderStopError
from mksap.contracts.provider import LLMRequest, LLMResponse, Provider, Usage
from mksap.contracts.registry import Registry
from mksap.llm.budget import Budget
from mksap.llm.limits import RateLimiter
from mksap.llm.loop import LoopThread
from mksap.llm.tokens import prompt_tokens, reserved_output_tokens
from mksap.settings import Settings

Accept = Callable[[dict[str, Any]], object]
T = TypeVar("T")

#: Usage of answers that came from a batch API is totalled under "<model> (batch)" and priced
#: at this fraction of the standard price (Anthropic's Message Batches: 50%).
BATCH_SUFFIX = " (batch)"
BATCH_PRICE_FACTOR = 0.5


@dataclass(frozen=True)
class CallInfo:
    """Who is asking: the stage and question of a call (never part of the cache key)."""

    stage: str | None = None
    question: str | None = None

    @property
    def task(self) -> str | None:
        """The doit task name `<stage>:<qid>`, when both are known."""
        return f"{self.stage}:{self.question}" if self.stage and self.question else None


_CALL: ContextVar[CallInfo | None] = ContextVar("mksap_call", default=None)
_NO_CALL = CallInfo()


def current_call() -> CallInfo:
    """The stage and question of the call being served (in a miss handler or a cache lookup)."""
    return _CALL.get() or _NO_CALL


class ResponseStore(Protocol):
    """What the runtime needs of a response cache (`mksap.llm.cache.ResponseCache`)."""

    refresh: bool

    def get(self, key: str) -> LLMResponse | None: ...

    def put(self, key: str, response: LLMResponse) -> None: ...

    def save_run_stats(self) -> None: ...


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
        cache: ResponseStore | None = None,
        notice: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.cache = cache
        self.notice = notice
        self.chain = provider_chain(settings, registry)
        self.names = self.chain.names
        self._chains: dict[str | None, list[Provider]] = {}
        self._instances: dict[tuple[str, str], Provider] = {}
        self.budget: Budget | None = Budget(settings.max_cost) if settings.max_cost is not None else None
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
    def providers(self, stage: str | None = None) -> list[Provider]:
        """The provider chain `stage` uses: its `[stages.<name>]` provider/model, else the run's."""
        key = stage if stage in self.settings.stages else None
        chain = self._chains.get(key)
        if chain is None:
            settings = self.settings.for_stage(key)
            same = settings.provider == self.settings.provider
            names = self.names if same else provider_chain(settings, self.registry).names
            chain = self._chains[key] = [self._instance(name, settings) for name in names]
        return chain

    def _instance(self, name: str, settings: Settings) -> Provider:
        """One provider instance per (name, model): one client and connection pool each."""
        provider = self.registry.provider(name)(settings)
        return self._instances.setdefault((name, provider.model), provider)

    def identity(self, stage: str | None = None) -> tuple[str, str]:
        """(provider chain, model of its first provider) of `stage`: what its output depends on."""
        chain = self.providers(stage)
        return ",".join(p.name for p in chain), chain[0].model

    def provider_for(self, name: str, model: str) -> Provider | None:
        """The instance of provider `name` for `model` (a " (batch)" suffix ignored), if made."""
        return self._instances.get((name, model.removesuffix(BATCH_SUFFIX)))

    def estimate_cost(self, name: str, model: str, usage: Usage) -> float | None:
        factor = BATCH_PRICE_FACTOR if model.endswith(BATCH_SUFFIX) else 1.0
        provider = self.provider_for(name, model)
        cost = provider.estimate_cost(usage) if provider is not None else None
        return None if cost is None else cost * factor

    def add_batch_usage(self, name: str, model: str, usage: Usage) -> None:
        """Count one answer paid through a batch API (priced at `BATCH_PRICE_FACTOR`)."""
        totals = self.totals.setdefault((name, model + BATCH_SUFFIX), ProviderTotals())
        totals.calls += 1
        totals.usage = totals.usage + usage

    # -- thread side -----------------------------------------------------------------------
    def complete(
        self,
        request: LLMRequest,
        accept: Accept | None = None,
        *,
        stage: str | None = None,
        question: str | None = None,
        answers: LLMRequest | None = None,
    ) -> LLMResponse:
        """Answer `request` from any thread; blocks until done.

        `accept` validates the parsed answer (raising on a bad one) before it is cached, so an
        invalid answer is never stored: it raises `AnswerError` instead. `stage` and `question`
        name who asks (the stage's provider and model, accounting; not part of the cache key).
        `answers`: `request` is a repair round of that request; its valid answer is cached
        under that request's key as well, so a rerun of the original makes no call.
        """
        return self.loop.call(self._complete(request, accept, CallInfo(stage, question), answers))

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
            self.loop.stop(_close_all(list(self._instances.values())) if self._instances else None)

    # -- loop side -------------------------------------------------------------------------
    async def _complete(
        self, request: LLMRequest, accept: Accept | None, call: CallInfo, answers: LLMRequest | None
    ) -> LLMResponse:
        _CALL.set(call)  # this call's own task context: seen by miss handlers and lookups
        providers = self.providers(call.stage)
        last_stop: ProviderStopError | None = None
        for provider in providers:
            if provider.name in self._stopped:
                continue
            try:
                response = await self._complete_with(provider, request, accept)
                if answers is not None:
                    await self._store_also(provider, answers, response)
                return response
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

    async def _store_also(self, provider: Provider, original: LLMRequest, response: LLMResponse) -> None:
        """Cache the validated answer of a repair round under the original request's key too."""
        if self.cache is not None and not provider.local:
            key = original.key(provider.name, provider.model)
            await asyncio.to_thread(self.cache.put, key, response.model_copy(update={"from_cache": False}))

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
            reservation = self._reserve(provider, request)
            try:
                if not provider.local:
                    assert self._limiter is not None
                    await self._limiter.acquire(prompt_tokens(request))
                response = await provider.complete(request)
            except AnswerError as e:  # answered (and billed), but unusably
                totals.failures += 1
                self._paid(provider, totals, e.usage if isinstance(e.usage, Usage) else Usage(), reservation)
                raise
            except BaseException:
                totals.failures += 1
                if self.budget is not None:
                    self.budget.settle(reservation, 0.0)
                raise
        if not provider.local and self._limiter is not None:
            self._limiter.tokens.charge(response.usage.output_tokens)
        self._paid(provider, totals, response.usage, reservation)
        return await self._accept_and_store(response, key, totals, accept, use_cache)

    def _reserve(self, provider: Provider, request: LLMRequest) -> float:
        """Reserve the request's estimated cost under `max_cost` (raises `CostCapError`)."""
        if self.budget is None or provider.local:
            return 0.0
        expected = Usage(input_tokens=prompt_tokens(request), output_tokens=reserved_output_tokens(request))
        cost = provider.estimate_cost(expected)
        what = f"a {request.task} request to {provider.name}/{provider.model}"
        if cost is None:
            raise CostCapError(
                f"cost cap: {what} not sent: its price is unknown; set prices for the model "
                f"([plugins.{provider.name}] prices) or drop --max-cost"
            )
        return self.budget.reserve(cost, what)

    def _paid(self, provider: Provider, totals: ProviderTotals, usage: Usage, reservation: float) -> None:
        """Count one call the provider answered (and billed), and settle its reservation."""
        totals.calls += 1
        totals.usage = totals.usage + usage
        if self.budget is not None and not provider.local:
            self.budget.settle(reservation, provider.estimate_cost(usage) or 0.0)

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
