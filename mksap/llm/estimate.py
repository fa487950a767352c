"""What a run would cost, without sending a message request (`mksap run --estimate`).

The run's real task graph runs into a temporary build state (`mksap.build.estimate`) with this
module's pieces plugged into the provider runtime:

- `EstimateCache`: the real LLM cache, read only (a hit is a request the cache already
  answers), with an in-memory overlay so a request repeated within the run (a table copied into
  several questions) is counted once, as in-flight merging and the cache make it in a real run.
- `EstimateRecorder`: the miss handler. Each request the real cache misses is recorded (stage,
  provider, model, tokens) and answered by a local rule-based provider, so the later stages make
  the requests they would make after real answers.
- `CostEstimate`: per stage and per model, the requests, the cached ones, input and output
  tokens, and dollars at the provider's list prices: plain, with prompt caching as the API
  applies it (a shared prefix below the model's minimum saves nothing), and as Message Batches.

Input tokens are counted the way the rate limiter counts them, output tokens are the calibrated
expectation of `mksap.llm.tokens`.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, Field

from mksap.contracts.provider import LLMRequest, LLMResponse, Provider, Usage
from mksap.llm.runtime import BATCH_PRICE_FACTOR, ResponseStore, current_call
from mksap.llm.tokens import expected_output_tokens, prefix_tokens, prompt_tokens


@runtime_checkable
class PromptCaching(Protocol):
    """A provider whose API caches a marked shared prefix (the anthropic provider)."""

    def min_cacheable_tokens(self) -> int:
        """The shortest prefix the API caches for this provider's model."""
        ...

    def marks_prefix(self, request: LLMRequest) -> bool:
        """Whether `request` is sent with its shared prefix marked for caching."""
        ...

    def cached_prefix_tokens(self, request: LLMRequest) -> int:
        """Tokens of `request` the API surely caches (0: none, or too close to call)."""
        ...


@runtime_checkable
class DatedPrices(Protocol):
    """A provider that says when its list prices were checked."""

    @property
    def prices_date(self) -> str: ...


class StageEstimate(BaseModel):
    stage: str
    requests: int = 0  # would be sent (the real LLM cache misses them)
    cached: int = 0  # the real LLM cache already answers them
    input_tokens: int = 0
    output_tokens: int = 0


class ModelEstimate(BaseModel):
    provider: str
    model: str
    stages: list[str] = Field(default_factory=list)
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    marked_uncounted: int = Field(0, description="requests marked for caching whose saving is not counted")
    plain_usd: float | None = 0.0
    caching_usd: float | None = 0.0
    batch_usd: float | None = 0.0
    prefix_min: int = Field(0, description="the shortest shared prefix (system prompt) in tokens")
    prefix_max: int = Field(0, description="the longest shared prefix in tokens")
    min_cacheable: int | None = None
    prices_date: str | None = None


class CostEstimate(BaseModel):
    """What `mksap run --estimate` prints."""

    questions: int
    stages: list[StageEstimate]
    models: list[ModelEstimate]
    local_requests: int = 0
    up_to_date_tasks: int = 0
    notes: list[str] = Field(default_factory=list)

    def total(self) -> StageEstimate:
        t = StageEstimate(stage="total")
        for s in self.stages:
            t.requests += s.requests
            t.cached += s.cached
            t.input_tokens += s.input_tokens
            t.output_tokens += s.output_tokens
        return t

    def dollars(self, kind: str) -> float | None:
        """Total USD of `kind` (plain, caching, batch); None when a model has no known price."""
        values = [getattr(m, f"{kind}_usd") for m in self.models]
        return None if any(v is None for v in values) else sum(values)


@dataclass
class _Recorded:
    stage: str
    provider: Provider
    input_tokens: int
    output_tokens: int
    prefix_tokens: int
    cached_prefix: int
    marked: bool
    prefix_digest: str


@dataclass
class Tally:
    """What the estimate's cache and miss handler saw, per stage (thread-safe)."""

    stale: set[str] | None = None  # tasks a real run would execute; None: all of them
    cached: dict[str, int] = field(default_factory=dict)
    recorded: list[_Recorded] = field(default_factory=list)
    skipped_tasks: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def counts(self) -> bool:
        """Whether the call being served is one a real run would make (its task is stale)."""
        task = current_call().task
        if self.stale is None or task is None or task in self.stale:
            return True
        with self.lock:
            self.skipped_tasks.add(task)
        return False


class EstimateCache:
    """The real response cache, read only, under an in-memory overlay (see the module doc)."""

    refresh = False

    def __init__(self, real: ResponseStore | None, tally: Tally) -> None:
        self.real = real
        self.tally = tally
        self._overlay: dict[str, LLMResponse] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> LLMResponse | None:
        with self._lock:
            seen = self._overlay.get(key)
        if seen is not None:
            return seen  # asked before in this estimate: no second request in a real run
        hit = self.real.get(key) if self.real is not None else None
        if hit is not None:
            self.put(key, hit)  # a second ask is a repeat, not a second cached request
            if self.tally.counts():
                stage = current_call().stage or "?"
                with self.tally.lock:
                    self.tally.cached[stage] = self.tally.cached.get(stage, 0) + 1
        return hit

    def put(self, key: str, response: LLMResponse) -> None:
        with self._lock:
            self._overlay[key] = response

    def save_run_stats(self) -> None:
        """Nothing: an estimate leaves the real cache's files alone."""


class EstimateRecorder:
    """Miss handler: record the request, answer it with `answerer` (local rules), send nothing."""

    def __init__(self, answerer: Provider, tally: Tally) -> None:
        self.answerer = answerer
        self.tally = tally

    def resolve(self, provider: Provider, request: LLMRequest, key: str) -> LLMResponse:
        if self.tally.counts():
            caching = isinstance(provider, PromptCaching)
            cached_prefix = provider.cached_prefix_tokens(request) if caching else 0
            recorded = _Recorded(
                stage=current_call().stage or "?",
                provider=provider,
                input_tokens=prompt_tokens(request),
                output_tokens=expected_output_tokens(request),
                prefix_tokens=prefix_tokens(request),
                cached_prefix=cached_prefix,
                marked=caching and provider.marks_prefix(request),
                prefix_digest=hashlib.sha256(request.system.encode()).hexdigest(),
            )
            with self.tally.lock:
                self.tally.recorded.append(recorded)
        answer = asyncio.run(self.answerer.complete(request))  # local, CPU only: a loop of its own
        return answer.model_copy(update={"provider": provider.name, "model": provider.model})


def summarise(tally: Tally, stage_order: Iterable[str], questions: int) -> CostEstimate:
    """The recorded requests, per stage and per model, priced."""
    stages = {name: StageEstimate(stage=name) for name in stage_order}
    models: dict[tuple[str, str], ModelEstimate] = {}
    written: set[tuple[str, str, str]] = set()
    for stage, n in tally.cached.items():
        stages.setdefault(stage, StageEstimate(stage=stage)).cached += n
    for r in tally.recorded:
        s = stages.setdefault(r.stage, StageEstimate(stage=r.stage))
        s.requests += 1
        s.input_tokens += r.input_tokens
        s.output_tokens += r.output_tokens
        p = r.provider
        m = models.get((p.name, p.model))
        if m is None:
            m = models[(p.name, p.model)] = _model_row(p)
        if r.stage not in m.stages:
            m.stages.append(r.stage)
        m.requests += 1
        m.input_tokens += r.input_tokens
        m.output_tokens += r.output_tokens
        m.prefix_min = min(m.prefix_min, r.prefix_tokens) if m.requests > 1 else r.prefix_tokens
        m.prefix_max = max(m.prefix_max, r.prefix_tokens)
        plain = Usage(input_tokens=r.input_tokens, output_tokens=r.output_tokens)
        cached = plain
        if r.cached_prefix:
            first = (p.name, p.model, r.prefix_digest) not in written
            written.add((p.name, p.model, r.prefix_digest))
            kind = "cache_creation_input_tokens" if first else "cache_read_input_tokens"
            cached = plain.model_copy(update={"input_tokens": r.input_tokens - r.cached_prefix, kind: r.cached_prefix})
            m.cache_write_tokens += cached.cache_creation_input_tokens
            m.cache_read_tokens += cached.cache_read_input_tokens
        elif r.marked:
            m.marked_uncounted += 1
        m.plain_usd = _add(m.plain_usd, p.estimate_cost(plain))
        cost = p.estimate_cost(cached)
        m.caching_usd = _add(m.caching_usd, cost)
        m.batch_usd = _add(m.batch_usd, None if cost is None else cost * BATCH_PRICE_FACTOR)
    return CostEstimate(
        questions=questions,
        stages=[s for s in stages.values() if s.requests or s.cached],
        models=list(models.values()),
        up_to_date_tasks=len(tally.skipped_tasks),
    )


def _model_row(provider: Provider) -> ModelEstimate:
    return ModelEstimate(
        provider=provider.name,
        model=provider.model,
        min_cacheable=provider.min_cacheable_tokens() if isinstance(provider, PromptCaching) else None,
        prices_date=provider.prices_date if isinstance(provider, DatedPrices) else None,
    )


def _add(total: float | None, cost: float | None) -> float | None:
    return None if total is None or cost is None else total + cost


def caching_note(m: ModelEstimate) -> str:
    """What prompt caching does for one model's requests, in one line."""
    who = f"{m.provider}/{m.model}"
    if m.min_cacheable is None:
        return f"prompt caching: {who} has none; no saving"
    low, high = m.prefix_min, m.prefix_max
    size = f"~{low:,}" if low == high else f"~{low:,}-{high:,}"
    head = f"prompt caching: shared instructions of {size} tokens (at ~4 characters a token), {who}'s minimum "
    head += f"cacheable prefix {m.min_cacheable:,}"
    saved = (
        f"{m.cache_write_tokens:,} tokens counted as written to the prompt cache, {m.cache_read_tokens:,} as read"
        if m.cache_write_tokens or m.cache_read_tokens
        else "no saving counted"
    )
    if m.marked_uncounted:
        saved += f"; {m.marked_uncounted} request(s) too close to the minimum to tell: marked, no saving counted"
    elif not (m.cache_write_tokens or m.cache_read_tokens):
        saved = "below it: not marked for caching, no saving"
    return f"{head}: {saved}"
