"""The anthropic provider: the Messages API through the official SDK's async client.

Structured output against the request's JSON schema, prompt caching of the shared system
instructions where they reach the model's minimum cacheable length (below it the API caches
nothing, so no `cache_control` is sent and no saving is claimed), and our own retry loop (the
SDK's is off: it obeys `retry-after` uncapped). The base URL is configurable (`[plugins.anthropic]
base_url` / `ANTHROPIC_BASE_URL`), so Ollama, llama.cpp server, vLLM and LM Studio, which serve
the same Messages API, work too (give them any non-empty key).

`anthropic` is imported inside methods: it costs ~1.4 s, and listing plugins must stay cheap.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import Field, SecretStr

from mksap.contracts.errors import AnswerError, ProviderError, ProviderStopError
from mksap.contracts.provider import Capabilities, LLMRequest, LLMResponse, Provider, Usage
from mksap.llm.limits import http_pool
from mksap.llm.retry import RetryPolicy, retry_after
from mksap.llm.tokens import prefix_tokens
from mksap.settings import PluginOptions, Settings

from .anthropic_prices import DATED, PRICES_DATE, cost_at, estimate_cost, min_cacheable_tokens

if TYPE_CHECKING:
    import anthropic
    from anthropic.types import Message as ApiMessage

    from .anthropic_batches import AnthropicBatchAPI

T = TypeVar("T")

_SPEND_LIMIT = re.compile(r"usage limit|spend(ing)? limit|credit balance|billing", re.I)
_SPEND_CODES = {"enforced_spend_limit_reached", "contract_spend_limit_reached"}
_RETRY_STATUSES = {408, 409, 429}
#: Prefix lengths are counted at ~4 characters a token, not with the API's tokenizer: within
#: this fraction of a model's minimum a prefix may or may not be cached. It is marked (free if
#: the API finds it too short) but an estimate counts no saving for it.
CACHE_COUNT_MARGIN = 0.10


def _key_of(options: AnthropicOptions) -> str:
    return options.api_key.get_secret_value().strip() if options.api_key is not None else ""


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema as structured output accepts it: every object (in `$defs` too) gets
    `additionalProperties: false`; unsupported constraints move into descriptions."""
    import anthropic

    return anthropic.transform_schema(schema)


Prices = dict[str, tuple[float, float, float, float]]


class AnthropicOptions(PluginOptions):
    api_key: SecretStr | None = Field(
        None,
        description="API key (prefer the ANTHROPIC_API_KEY variable)",
        json_schema_extra={"env": "ANTHROPIC_API_KEY"},
    )
    base_url: str | None = Field(
        None, description="Messages API base URL (local servers too)", json_schema_extra={"env": "ANTHROPIC_BASE_URL"}
    )
    prices: Prices = Field(
        default_factory=dict,
        description="USD per million tokens (input, output, cache write, cache read) by model; "
        "overrides the built-in table (JSON in MKSAP_ANTHROPIC_PRICES)",
    )
    prices_date: str | None = Field(None, description="when the `prices` above were checked")
    cache_minimums: dict[str, int] = Field(
        default_factory=dict,
        description="minimum cacheable prefix in tokens by model; overrides the built-in table "
        "(JSON in MKSAP_ANTHROPIC_CACHE_MINIMUMS)",
    )
    cache_minimums_date: str | None = Field(None, description="when the `cache_minimums` above were checked")


#: Seconds the first-call check waits for the model list: it is tiny, and an endpoint that
#: cannot list it in this time would leave every question waiting `call_timeout`.
PROBE_TIMEOUT = 10.0


class AnthropicProvider(Provider):
    """Anthropic Messages API (or a local server speaking it) via the official SDK."""

    name = "anthropic"
    options_model = AnthropicOptions
    reports_rate_limits = True  # anthropic-ratelimit-* headers (a local server may send none)
    capabilities = Capabilities(structured_output="json_schema", prompt_caching=True, batches=True)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._client: anthropic.AsyncAnthropic | None = None
        self.retry = RetryPolicy()

    @classmethod
    def unready(cls, settings: Settings) -> str | None:
        if _key_of(settings.plugin_options(cls.name, AnthropicOptions)):
            return None
        return "no API key: set ANTHROPIC_API_KEY (or api_key in [plugins.anthropic] of the user config)"

    @classmethod
    def health(cls, settings: Settings) -> list[str]:
        reason = cls.unready(settings)
        where = settings.plugin_options(cls.name, AnthropicOptions).base_url or "the Anthropic API"
        return [f"error: {reason}"] if reason else [f"ok: API key set; calls go to {where}"]

    def _key(self) -> str:
        return _key_of(self.options)

    def _scrub(self, text: str) -> str:
        """Never let the key into a message, whatever an upstream error echoes."""
        key = self._key()
        return text.replace(key, "***") if key else text

    def _client_for_loop(self) -> anthropic.AsyncAnthropic:
        """The shared client, made on first use (on the runtime's one event loop)."""
        if self._client is None:
            key = self._key()
            if not key:
                raise ProviderStopError(
                    "no Anthropic API key: set ANTHROPIC_API_KEY or api_key in [plugins.anthropic] of the user config, "
                    "or use --provider offline"
                )
            import anthropic

            timeout, limits = http_pool(self.settings)
            pool = anthropic.DefaultAsyncHttpxClient(limits=limits, timeout=timeout)
            self._client = anthropic.AsyncAnthropic(
                api_key=key,
                base_url=self.options.base_url,
                max_retries=0,  # our loop retries, with a capped retry-after
                timeout=timeout,
                http_client=pool,
            )
        return self._client

    def min_cacheable_tokens(self) -> int:
        """The shortest prefix the API caches for this model (configured, else the dated table)."""
        configured = self.options.cache_minimums.get(DATED.sub("", self.model))
        return configured if configured is not None else min_cacheable_tokens(self.model)

    def marks_prefix(self, request: LLMRequest) -> bool:
        """Whether `request`'s system prompt may reach the minimum: then it is marked for caching
        (a marked prefix the API finds too short costs nothing extra); else it is not marked."""
        return prefix_tokens(request) >= self.min_cacheable_tokens() * (1 - CACHE_COUNT_MARGIN)

    def cached_prefix_tokens(self, request: LLMRequest) -> int:
        """Tokens of `request` that prompt caching surely reuses (what an estimate may count as
        saved): its system prompt when that clears the minimum by the count's margin, else 0."""
        tokens = prefix_tokens(request)
        return tokens if tokens >= self.min_cacheable_tokens() * (1 + CACHE_COUNT_MARGIN) else 0

    def _params(self, request: LLMRequest) -> dict[str, Any]:
        """Arguments of `messages.create`; the system prompt is marked for prompt caching when
        it may be long enough to be cached."""
        schema = strict_schema(request.output_schema)
        system: dict[str, Any] = {"type": "text", "text": request.system}
        if self.marks_prefix(request):
            system["cache_control"] = {"type": "ephemeral"}
        return {
            "model": self.model,
            "max_tokens": request.max_tokens,
            "system": [system],
            "messages": [m.model_dump() for m in request.messages],
            "output_config": {"format": {"type": "json_schema", "schema": schema}},
        }

    async def complete(self, request: LLMRequest) -> LLMResponse:
        """One answer, retried on transient failures, within `settings.call_timeout` seconds."""
        client = self._client_for_loop()
        params = self._params(request)
        deadline = self.settings.call_timeout
        try:
            async with asyncio.timeout(deadline):
                message = await self._create_with_retries(client, params)
        except TimeoutError:
            raise ProviderError(f"{self._who()}: no answer within {deadline:g} s") from None
        return self._response(message)

    async def probe(self) -> Capabilities:
        """The first-call check: `GET /v1/models` (free) answers within `PROBE_TIMEOUT`, twice
        at most. A refused key stops the provider; a server that does not answer fails the
        check; one that lists no models (a local server speaking only /v1/messages) passes."""
        import anthropic

        client = self._client_for_loop()
        last = ""
        for attempt in (1, 2):
            try:
                async with asyncio.timeout(PROBE_TIMEOUT):
                    await client.models.list(limit=1)
                return await super().probe()
            except anthropic.NotFoundError:
                return await super().probe()
            except anthropic.APIStatusError as e:
                self._raise_unless_retryable(e)
                last = self._describe(e)
            except (anthropic.APIConnectionError, TimeoutError) as e:
                timed_out = isinstance(e, (TimeoutError, anthropic.APITimeoutError))
                last = f"no answer within {PROBE_TIMEOUT:g} s" if timed_out else "connection failed"
            if attempt == 1:
                await asyncio.sleep(1.0)
        where = self.options.base_url or "the Anthropic API"
        raise ProviderError(f"{self._who()}: {last} ({where}, GET /v1/models, 2 attempts)")

    def estimate_cost(self, usage: Usage) -> float | None:
        """Configured `prices` first (they carry their own date), then the built-in table."""
        configured = self.options.prices.get(DATED.sub("", self.model))
        return cost_at(configured, usage) if configured is not None else estimate_cost(self.model, usage)

    @property
    def prices_date(self) -> str:
        """When the prices `estimate_cost` uses for this model were checked."""
        if DATED.sub("", self.model) in self.options.prices:
            return self.options.prices_date or "a date not given (configured prices)"
        return PRICES_DATE

    def _who(self) -> str:
        return f"anthropic ({self.model})"

    async def _create_with_retries(self, client: anthropic.AsyncAnthropic, params: dict[str, Any]) -> ApiMessage:
        async def create() -> ApiMessage:
            raw = await client.messages.with_raw_response.create(**params)
            self.report_rate_limits(raw.headers)
            return await raw.parse()

        return await self.retrying(create, reports=True)

    async def retrying(self, call: Callable[[], Awaitable[T]], *, repeatable: bool = True, reports: bool = False) -> T:
        """`call()`, retried on transient failures. With `repeatable=False` (a call that is not
        idempotent, e.g. creating a batch) only 429/529 are retried: they say nothing was done.
        `reports`: a Messages call, whose error answers' rate-limit headers (a 429 above all)
        go to `report_rate_limits` (its successful answer reports its own)."""
        import anthropic

        last = ""
        for attempt in range(1, self.retry.max_attempts + 1):
            wait_hint: float | None = None
            try:
                return await call()
            except anthropic.APIStatusError as e:
                if reports:
                    self.report_rate_limits(e.response.headers, refused=e.status_code == 429)
                self._raise_unless_retryable(e)
                last = self._describe(e)
                wait_hint = retry_after(e.response.headers)
                if not repeatable and e.status_code not in (429, 529):
                    raise ProviderError(f"{self._who()}: {last} (not retried: it may have been done)") from None
            except (anthropic.APITimeoutError, anthropic.APIConnectionError) as e:
                last = "request timed out" if isinstance(e, anthropic.APITimeoutError) else "connection failed"
                if not repeatable:
                    raise ProviderError(f"{self._who()}: {last} (not retried: it may have been done)") from None
            if attempt < self.retry.max_attempts:
                await asyncio.sleep(self.retry.delay(attempt, wait_hint))
        tries = self.retry.max_attempts
        raise ProviderError(f"{self._who()}: gave up after {tries} attempts; last: {last}")

    def _describe(self, e: anthropic.APIStatusError) -> str:
        """'HTTP <status> <type>: <API message>', built from the status and error body only."""
        head = f"HTTP {e.status_code} {e.type}" if e.type else f"HTTP {e.status_code}"
        text = f"{head}: {e.api_message}" if e.api_message else head
        return self._scrub(" ".join(text.split())[:300])

    def _raise_unless_retryable(self, e: anthropic.APIStatusError) -> None:
        """Raise the error to report when `e` is not worth retrying; return when it is."""
        status, what = e.status_code, self._describe(e)
        if status in (401, 403):
            raise ProviderStopError(
                f"anthropic authentication failed ({what}): check ANTHROPIC_API_KEY or [plugins.anthropic] api_key"
            ) from None
        spend_text = status in (400, 402, 429) and _SPEND_LIMIT.search(e.api_message or "")
        if e.error_code in _SPEND_CODES or spend_text:
            raise ProviderStopError(f"anthropic usage or spend limit reached ({what})") from None
        if status == 404:
            raise ProviderStopError(
                f"{self._who()}: {what}; check the `model` setting and [plugins.anthropic] base_url"
            ) from None
        if e.response.headers.get("x-should-retry") == "false":
            raise ProviderError(f"{self._who()}: {what}") from None
        if status in _RETRY_STATUSES or status >= 500:
            return
        raise ProviderError(f"{self._who()} rejected the request: {what}") from None

    def _response(self, message: ApiMessage) -> LLMResponse:
        """Parse the answer's text as a JSON object, or raise `AnswerError` with the raw text."""
        text = "".join(block.text for block in message.content if block.type == "text")
        stop = message.stop_reason
        usage = usage_of(message)  # billed even when the answer is unusable
        if stop == "max_tokens":
            raise AnswerError("answer cut off at max_tokens; incomplete JSON", raw_text=text, usage=usage)
        if stop == "model_context_window_exceeded":
            raise AnswerError("answer cut off: the context window is full", raw_text=text, usage=usage)
        if stop == "refusal":
            raise AnswerError("the model refused to answer (stop_reason refusal)", raw_text=text, usage=usage)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            reason = f"answer is not JSON: {e.msg} at char {e.pos}"
            raise AnswerError(reason, raw_text=text, usage=usage) from None
        if not isinstance(data, dict):
            raise AnswerError(f"answer is JSON {type(data).__name__}, not an object", raw_text=text, usage=usage)
        model = message.model or self.model
        return LLMResponse(data=data, raw_text=text, usage=usage, provider=self.name, model=model)

    def batch_api(self) -> AnthropicBatchAPI:
        """The Message Batches API (half price) for `mksap run --batch`."""
        from .anthropic_batches import AnthropicBatchAPI

        return AnthropicBatchAPI(self)

    async def aclose(self) -> None:
        """Close the client and its connection pool."""
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()


def usage_of(message: ApiMessage) -> Usage:
    """The token usage of one API answer."""
    u = message.usage
    return Usage(
        input_tokens=u.input_tokens,
        output_tokens=u.output_tokens,
        cache_creation_input_tokens=u.cache_creation_input_tokens or 0,
        cache_read_input_tokens=u.cache_read_input_tokens or 0,
    )
