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

A provider is checked before its first call (`Provider.probe()`: does the endpoint answer, what
can it do; once per run, only when a request misses the cache) and watched by a circuit breaker
(`mksap.llm.breaker`): a failed check or an open breaker stops it, and the next provider of the
chain takes over. When none is left, or answers can no longer be cached, the run stops sending
requests: every later request fails at once with `RunStopError`, one reason the summary says once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from pydantic import ValidationError

from mksap.contracts.errors import (
    AnswerError,
    CacheError,
    ConfigError,
    CostCapError,
    MksapError,
    ProviderError,
    ProviderStopError,
    RunStopError,
)
from mksap.contracts.provider import Capabilities, LLMRequest, LLMResponse, Provider, Usage
from mksap.contracts.registry import Registry
from mksap.llm.breaker import CircuitBreaker
from mksap.llm.budget import Budget
from mksap.llm.limits import ProviderLimits, in_flight_line
from mksap.llm.loop import LoopThread
from mksap.llm.probe import lacking
from mksap.llm.tokens import prompt_tokens, reserved_output_tokens
from mksap.settings import Settings

Accept = Callable[[dict[str, Any]], object]
T = TypeVar("T")

#: Usage of answers that came from a batch API is totalled under "<model> (batch)" and priced
#: at this fraction of the standard price (Anthropic's Message Batches: 50%).
BATCH_SUFFIX = " (batch)"
BATCH_PRICE_FACTOR = 0.5
#: doit worker threads with `jobs = 0` when no stage calls a provider that follows rate limits.
DEFAULT_WORKER_THREADS = 8


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
        self._breakers: dict[str, CircuitBreaker] = {}
        self._checks: dict[tuple[str, str], asyncio.Future[Capabilities]] = {}
        self.capabilities: dict[tuple[str, str], Capabilities] = {}
        self.stop_reason: str | None = None
        self.loop = LoopThread(on_start=self._announce)
        self._inflight: dict[str, asyncio.Future[LLMResponse]] = {}
        self._limits: dict[tuple[str, str], ProviderLimits] = {}  # calls in flight and rates, per instance
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
        provider = self._instances.setdefault((name, provider.model), provider)
        provider.bind_notice(self.notice)
        return provider

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

    def concurrency(self) -> str | None:
        """'<n> in flight (limit <m>)' for the progress line (None before any call that is not
        local). Read from any thread."""
        return in_flight_line(list(self._limits.values()))

    def worker_threads(self, stages: list[str]) -> int:
        """doit worker threads for `jobs = 0`: `max_concurrency` when one of `stages` calls a
        provider that follows rate limits, so threads never cap the calls in flight; else 8 (a
        CLI tool is a process a call; a local provider is bound by the CPU: measured offline,
        256 threads build ~10% faster than 8 for ~40% more memory, bench/ratelimit.py)."""
        providers = [p for stage in stages for p in self.providers(stage)]
        if any(p.reports_rate_limits and not p.local for p in providers):
            return self.settings.max_concurrency
        return DEFAULT_WORKER_THREADS

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
                self._stop(provider, str(e), providers)
        if self.stop_reason is not None:  # the run stops: every request says the one reason
            raise RunStopError(self.stop_reason)
        if last_stop is not None:
            raise last_stop
        raise RunStopError(self._no_provider_left(providers))

    def _stop(self, provider: Provider, reason: str, providers: list[Provider]) -> None:
        """Send `provider` no more requests this run; said once, with who takes over."""
        if provider.name in self._stopped:
            return
        self._stopped[provider.name] = reason
        rest = [p.name for p in providers if p.name not in self._stopped]
        then = f"; continuing on '{rest[0]}'" if rest else "; no provider left"
        self.notice(f"provider '{provider.name}' stopped: {reason}{then}")
        if not rest and self.stop_reason is None:
            self.stop_reason = self._no_provider_left(providers)

    def _no_provider_left(self, providers: list[Provider]) -> str:
        stopped = "; ".join(f"'{p.name}': {self._stopped[p.name]}" for p in providers if p.name in self._stopped)
        return f"no provider left to answer: {stopped}"

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
            await self._put(key, response.model_copy(update={"from_cache": False}))

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
        self._refuse_if_stopped(provider)
        if not provider.local:
            await self._checked(provider)
        limits = self._limits_for(provider)
        async with limits.admit(request):  # a slot among the calls in flight, then the rates' pacing
            self._refuse_if_stopped(provider)  # it may have stopped while this call waited
            reservation = self._reserve(provider, request)
            try:
                response = await provider.complete(request)
            except AnswerError as e:  # answered (and billed), but unusably
                totals.failures += 1
                self._breaker(provider).answered()
                self._paid(provider, totals, e.usage if isinstance(e.usage, Usage) else Usage(), reservation)
                raise
            except BaseException as e:
                totals.failures += 1
                if self.budget is not None:
                    self.budget.settle(reservation, 0.0)
                if isinstance(e, ProviderError) and not isinstance(e, ProviderStopError):
                    if (reason := self._breaker(provider).failed(str(e))) is not None:
                        raise ProviderStopError(reason) from None
                raise
        self._breaker(provider).answered()
        limits.settle(request, response.usage)
        self._paid(provider, totals, response.usage, reservation)
        return await self._accept_and_store(response, key, totals, accept, use_cache)

    def _refuse_if_stopped(self, provider: Provider) -> None:
        if self.stop_reason is not None:
            raise RunStopError(self.stop_reason)
        if provider.name in self._stopped:
            raise ProviderStopError(self._stopped[provider.name])

    def _breaker(self, provider: Provider) -> CircuitBreaker:
        breaker = self._breakers.get(provider.name)
        if breaker is None:
            breaker = self._breakers[provider.name] = CircuitBreaker(self.settings.breaker_failures)
        return breaker

    async def _checked(self, provider: Provider) -> None:
        """Before `provider`'s first call: its probe, once (later calls wait for the first's).
        An endpoint that does not answer, or refuses the key, stops the provider here, in
        seconds, instead of failing every question after its retries; what it lacks is said."""
        key = (provider.name, provider.model)
        check = self._checks.get(key)
        if check is None:
            check = self._checks[key] = asyncio.ensure_future(provider.probe())
        try:
            found = await asyncio.shield(check)
        except ProviderError as e:
            raise ProviderStopError(f"its first-call check failed: {e}") from None
        except MksapError:
            return  # it answered, just not as the probe hoped: the calls will tell
        if key not in self.capabilities:  # the first to get here says what it lacks
            self.capabilities[key] = found
            for line in lacking(provider, found):
                self.notice(line)

    def _limits_for(self, provider: Provider) -> ProviderLimits:
        """The window of calls in flight and the rates of one provider instance (made on its
        first call); the provider reports the rate-limit headers it sees to them."""
        key = (provider.name, provider.model)
        limits = self._limits.get(key)
        if limits is None:
            limits = self._limits[key] = ProviderLimits.for_provider(provider, self.settings)
            provider.bind_rate_observer(limits.observe)
        return limits

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
            await self._put(key, response)
        return response

    async def _put(self, key: str, response: LLMResponse) -> None:
        """Cache an answer. One that cannot be kept (a full disk) is still used, but the run
        sends nothing more: it would pay for answers that the next run pays for again."""
        assert self.cache is not None
        try:
            await asyncio.to_thread(self.cache.put, key, response)
        except CacheError as e:
            if self.stop_reason is None:
                self.stop_reason = f"{e}; no more requests are sent, so nothing is paid for twice"
                self.notice(self.stop_reason)


async def _close_all(providers: list[Provider]) -> None:
    await asyncio.gather(*(p.aclose() for p in providers), return_exceptions=True)


def _first_error(e: ValidationError) -> str:
    err = e.errors()[0]
    where = ".".join(str(x) for x in err["loc"]) or "answer"
    return f"schema mismatch at {where}: {err['msg']}"
