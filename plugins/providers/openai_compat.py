"""The openai provider: OpenAI's Chat Completions API through the official SDK's async client.

Ollama, llama.cpp's `llama-server`, vLLM, LM Studio, mlx-lm and hosted routers (OpenRouter) all
serve `/v1/chat/completions`, so one base URL setting (`[plugins.openai] base_url` /
`OPENAI_BASE_URL`) reaches every one of them. They differ in structured output. The provider asks
for the strictest mode first and steps down when the server shows it cannot do it:

  json_schema  `response_format` json_schema (strict): the server enforces the answer's schema
  json_mode    `response_format` json_object: JSON guaranteed, the schema goes in the prompt
  prompted     no `response_format`: the schema in the prompt, the first JSON object of the answer

A server shows it either by rejecting the mode (an HTTP error naming response_format, json_schema
or json_object) or by ignoring it (prose around the JSON). The step is taken once for the run
(concurrent calls that failed in the old mode just retry in the new one), said once through
`notice()` when the new mode first works, and kept for the rest of the run. `probe()` finds the
same before the first call with `GET /v1/models` and one tiny structured call.

`openai` is imported inside methods: listing plugins must stay cheap.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import Field, SecretStr

from mksap.contracts.errors import AnswerError, ProviderError, ProviderStopError
from mksap.contracts.provider import (
    Capabilities,
    LLMRequest,
    LLMResponse,
    Message,
    Provider,
    StructuredOutput,
    Usage,
)
from mksap.llm.limits import http_pool
from mksap.llm.retry import RetryPolicy, duration, retry_after
from mksap.settings import PluginOptions, Settings

if TYPE_CHECKING:
    import openai
    from openai.types.chat import ChatCompletion

T = TypeVar("T")

OPENAI_URL = "https://api.openai.com/v1"
_RETRY_STATUSES = {408, 409, 429}
_FORMAT_WORDS = re.compile(r"response_format|json_schema|json_object|structured output|guided", re.I)
_QUOTA = re.compile(r"insufficient_quota|exceeded your current quota|billing|credits?\b", re.I)
_THINKING = re.compile(r"^\s*<think>.*?</think>", re.S)
_MODE_WORDS: dict[StructuredOutput, str] = {
    "json_schema": "response_format json_schema",
    "json_mode": "JSON mode (response_format json_object), the schema in the prompt",
    "prompted": "the schema in the prompt, and the first JSON object of each answer taken",
}
_SENT: dict[StructuredOutput, str] = {"json_schema": "response_format json_schema", "json_mode": "json_object"}

#: USD per million tokens (input, output, cached input) at OpenAI's own API, list prices on
#: PRICES_DATE; check https://openai.com/api/pricing. Used only for calls to api.openai.com:
#: other hosts (routers, local servers) are unpriced unless `[plugins.openai] prices` says.
PRICES_DATE = "2026-06-01"
PRICES: dict[str, tuple[float, float, float]] = {
    "gpt-5.5": (5.0, 30.0, 0.50),
    "gpt-5.4": (2.50, 15.0, 0.25),
    "gpt-5.4-mini": (0.75, 4.50, 0.075),
    "gpt-5.4-nano": (0.20, 1.25, 0.02),
    "gpt-5.2": (1.75, 14.0, 0.175),
    "gpt-5": (1.25, 10.0, 0.125),
    "gpt-5-mini": (0.25, 2.0, 0.025),
    "gpt-5-nano": (0.05, 0.40, 0.005),
    "gpt-4.1": (2.0, 8.0, 0.50),
    "gpt-4.1-mini": (0.40, 1.60, 0.10),
    "gpt-4.1-nano": (0.10, 0.40, 0.025),
    "gpt-4o": (2.50, 10.0, 1.25),
    "gpt-4o-mini": (0.15, 0.60, 0.075),
    "o3": (2.0, 8.0, 0.50),
    "o4-mini": (1.10, 4.40, 0.275),
}
_DATED = re.compile(r"-\d{4}-\d{2}-\d{2}$")

#: The tiny structured call of `probe()`: a server that enforces the schema can only answer this.
_PROBE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"status": {"type": "string", "enum": ["ready"]}},
    "required": ["status"],
    "additionalProperties": False,
}


class OpenAIOptions(PluginOptions):
    api_key: SecretStr | None = Field(
        None,
        description="API key (prefer the OPENAI_API_KEY variable; a local server takes any non-empty value)",
        json_schema_extra={"env": "OPENAI_API_KEY"},
    )
    base_url: str | None = Field(
        None,
        description="Chat Completions base URL, ending in /v1 (local servers and routers too; default OpenAI's)",
        json_schema_extra={"env": "OPENAI_BASE_URL"},
    )
    structured_output: Literal["auto", "json_schema", "json_mode", "prompted"] = Field(
        "auto",
        description="auto: json_schema, stepping down to json_mode, then prompted, as the server shows "
        "what it lacks; a mode named here is where the run starts (and the probe makes no test call)",
    )
    prices: dict[str, tuple[float, float, float]] = Field(
        default_factory=dict,
        description="USD per million tokens (input, output, cached input) by model; overrides the built-in "
        "table, which covers api.openai.com only (JSON in MKSAP_OPENAI_PRICES)",
    )
    prices_date: str | None = Field(None, description="when the `prices` above were checked")


def _key_of(options: OpenAIOptions) -> str:
    return options.api_key.get_secret_value().strip() if options.api_key is not None else ""


class _FormatRejected(Exception):
    """The server refused the structured-output mode a request used."""


class _TokenParamRejected(Exception):
    """The server wants `max_completion_tokens` instead of `max_tokens` (OpenAI reasoning models)."""


class OpenAIProvider(Provider):
    """OpenAI's Chat Completions API, or any server speaking it, via the official SDK."""

    name = "openai"
    options_model = OpenAIOptions
    capabilities = Capabilities(structured_output="json_schema")  # until probed: what it asks for first
    reports_rate_limits = True  # x-ratelimit-* headers (local servers send none)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._client: openai.AsyncOpenAI | None = None
        self.retry = RetryPolicy()
        self._mode: StructuredOutput | None = None  # the structured-output mode of this run
        self._settled = False  # a call in `_mode` got an answer
        self._announced: StructuredOutput | None = None
        self._why: list[str] = []  # what the server showed at each step down
        self._token_param: str | None = None

    # -- readiness (no network, no heavy import) ------------------------------------------
    @classmethod
    def unready(cls, settings: Settings) -> str | None:
        if _key_of(settings.plugin_options(cls.name, OpenAIOptions)):
            return None
        return (
            "no API key: set OPENAI_API_KEY (or api_key in [plugins.openai] of the user config); "
            "a local server (Ollama, llama.cpp, vLLM, LM Studio) takes any non-empty key, e.g. OPENAI_API_KEY=local, "
            "with OPENAI_BASE_URL pointing at it"
        )

    @classmethod
    def health(cls, settings: Settings) -> list[str]:
        reason = cls.unready(settings)
        if reason:
            return [f"error: {reason}"]
        options = settings.plugin_options(cls.name, OpenAIOptions)
        mode = options.structured_output
        how = (
            "found on the first call (json_schema, else JSON mode, else the schema in the prompt)"
            if mode == "auto"
            else f"starts at {mode} ([plugins.openai] structured_output)"
        )
        return [
            f"ok: API key set; calls go to {options.base_url or OPENAI_URL}",
            f"ok: structured output {how}; no batch API (--batch is refused)",
        ]

    # -- the client -------------------------------------------------------------------------
    def _key(self) -> str:
        return _key_of(self.options)

    def _scrub(self, text: str) -> str:
        """Never let the key into a message, whatever an upstream error echoes."""
        key = self._key()
        return text.replace(key, "***") if key else text

    def _base_url(self) -> str:
        return (self.options.base_url or OPENAI_URL).rstrip("/")

    def _official(self) -> bool:
        return urlsplit(self._base_url()).hostname == "api.openai.com"

    def _who(self) -> str:
        return f"openai ({self.model})"

    def _client_for_loop(self) -> openai.AsyncOpenAI:
        """The shared client, made on first use (on the runtime's one event loop)."""
        if self._client is None:
            key = self._key()
            if not key:
                raise ProviderStopError(
                    "no OpenAI API key: set OPENAI_API_KEY or api_key in [plugins.openai] of the user config "
                    "(any non-empty value for a local server), or use --provider offline"
                )
            import openai

            timeout, limits = http_pool(self.settings)
            pool = openai.DefaultAsyncHttpxClient(limits=limits, timeout=timeout)
            self._client = openai.AsyncOpenAI(
                api_key=key,
                base_url=self._base_url(),
                max_retries=0,  # our loop retries, with a capped retry-after
                timeout=timeout,
                http_client=pool,
            )
        return self._client

    def mode(self) -> StructuredOutput:
        """The structured-output mode calls use now (it only ever steps down during a run)."""
        if self._mode is None:
            chosen = self.options.structured_output
            self._mode = "json_schema" if chosen == "auto" else chosen
        return self._mode

    # -- requests ---------------------------------------------------------------------------
    def _params(self, request: LLMRequest, mode: StructuredOutput) -> dict[str, Any]:
        """Arguments of `chat.completions.create` for `request` in `mode`."""
        system = request.system
        if mode != "json_schema":
            schema = json.dumps(request.output_schema, ensure_ascii=False)
            system += (
                f"\n\nAnswer with one JSON object only (no prose, no code fences), valid against this "
                f"JSON schema ({request.schema_name}):\n{schema}"
            )
        if self._token_param is None:
            self._token_param = "max_completion_tokens" if self._official() else "max_tokens"
        params: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "system", "content": system}, *(m.model_dump() for m in request.messages)],
            self._token_param: request.max_tokens,
        }
        if mode == "json_schema":
            name = re.sub(r"[^A-Za-z0-9_-]", "_", request.schema_name)[:64] or "answer"
            strict = {"name": name, "schema": strict_schema(request.output_schema), "strict": True}
            params["response_format"] = {"type": "json_schema", "json_schema": strict}
        elif mode == "json_mode":
            params["response_format"] = {"type": "json_object"}
        return params

    async def complete(self, request: LLMRequest) -> LLMResponse:
        """One answer, retried on transient failures, within `settings.call_timeout` seconds."""
        client = self._client_for_loop()
        deadline = self.settings.call_timeout
        try:
            async with asyncio.timeout(deadline):
                response = await self._answer(client, request)
        except TimeoutError:
            raise ProviderError(f"{self._who()}: no answer within {deadline:g} s") from None
        self._announce()
        return response

    async def _answer(self, client: openai.AsyncOpenAI, request: LLMRequest) -> LLMResponse:
        """Ask in the current mode; a rejected mode steps down and the request is asked again."""
        while True:
            mode = self.mode()
            params = self._params(request, mode)
            try:
                completion = await self.retrying(
                    functools.partial(self._create, client, params), formatted=mode != "prompted", reports=True
                )
            except _FormatRejected as e:
                self._step_down(mode, "json_mode" if mode == "json_schema" else "prompted", f"rejects it ({e})")
                continue
            except _TokenParamRejected:
                self._token_param = "max_completion_tokens"
                continue
            return self._response(completion, mode)

    async def _create(self, client: openai.AsyncOpenAI, params: dict[str, Any]) -> ChatCompletion:
        """One chat completion; its rate-limit headers go to `report_rate_limits`."""
        raw = await client.chat.completions.with_raw_response.create(**params)
        self.report_rate_limits(raw.headers)
        completion: ChatCompletion = raw.parse()
        return completion

    def _step_down(self, used: StructuredOutput, to: StructuredOutput, why: str) -> None:
        """Leave mode `used` for `to`, once: calls that failed in `used` after the step retry."""
        if self.mode() != used:
            return
        self._why.append(f"{_SENT[used]}: the server {why}")
        self._mode, self._settled = to, False

    def _announce(self) -> None:
        """Say once, when the mode stepped down to first works, what the run uses now and why."""
        mode = self.mode()
        if mode == self._announced or not self._why:
            return
        self._announced = mode
        self.notice(self.fallback_line())

    def fallback_line(self) -> str:
        """Why this run left json_schema and what it uses instead."""
        at = urlsplit(self._base_url()).netloc
        return (
            f"{self._who()} at {at}: no enforced JSON schema ({'; '.join(self._why)}); "
            f"for the rest of this run: {_MODE_WORDS[self.mode()]}"
        )

    async def retrying(self, call: Callable[[], Awaitable[T]], *, formatted: bool = False, reports: bool = False) -> T:
        """`call()`, retried on 408/409/429/5xx, timeouts and connection failures, waiting what the
        server says (`retry-after`, `x-ratelimit-reset-*`; capped) or a jittered backoff.
        `formatted`: the call sent a `response_format`, so an error naming it is `_FormatRejected`.
        `reports`: a chat completion, whose error answers' rate-limit headers (a 429 above all) go
        to `report_rate_limits` (its successful answer reports its own)."""
        import openai

        last = ""
        for attempt in range(1, self.retry.max_attempts + 1):
            wait_hint: float | None = None
            try:
                return await call()
            except openai.APIStatusError as e:
                if reports:
                    self.report_rate_limits(e.response.headers, refused=e.status_code == 429)
                self._raise_unless_retryable(e, formatted)
                last = self._describe(e)
                wait_hint = wait_of(e.response.headers)
            except (openai.APITimeoutError, openai.APIConnectionError) as e:
                last = "request timed out" if isinstance(e, openai.APITimeoutError) else "connection failed"
            if attempt < self.retry.max_attempts:
                await asyncio.sleep(self.retry.delay(attempt, wait_hint))
        tries = self.retry.max_attempts
        raise ProviderError(f"{self._who()}: gave up after {tries} attempts; last: {last}")

    def _describe(self, e: openai.APIStatusError) -> str:
        """'HTTP <status> <type>: <message>' from the status and the error body only (servers shape
        it differently: OpenAI and llama.cpp nest it under `error`, vLLM does not, LM Studio sends
        a bare string)."""
        body: Any = e.body
        message = body.get("message") if isinstance(body, dict) else body if isinstance(body, str) else None
        if not isinstance(message, str) or not message:
            message = e.message
        kind = e.type if isinstance(e.type, str) and e.type and not e.type.isdigit() else None
        head = f"HTTP {e.status_code} {kind}" if kind else f"HTTP {e.status_code}"
        return self._scrub(" ".join(f"{head}: {message}".split())[:300])

    def _raise_unless_retryable(self, e: openai.APIStatusError, formatted: bool) -> None:
        """Raise the error to report when `e` is not worth retrying; return when it is."""
        status, what = e.status_code, self._describe(e)
        code = f"{e.code or ''} {e.type or ''}"
        if status in (401, 403):
            raise ProviderStopError(
                f"openai authentication failed ({what}): check OPENAI_API_KEY or [plugins.openai] api_key"
            ) from None
        if status == 402 or (status == 429 and _QUOTA.search(f"{code} {what}")):
            raise ProviderStopError(f"{self._who()}: quota or credits exhausted ({what})") from None
        if status == 404:
            raise ProviderStopError(
                f"{self._who()}: {what}; check the `model` setting and [plugins.openai] base_url"
            ) from None
        if formatted and status not in _RETRY_STATUSES and _FORMAT_WORDS.search(what):
            raise _FormatRejected(what.split(": ", 1)[-1])
        if status == 400 and "max_completion_tokens" in what and self._token_param == "max_tokens":
            raise _TokenParamRejected()
        if e.response.headers.get("x-should-retry") == "false":
            raise ProviderError(f"{self._who()}: {what}") from None
        if status in _RETRY_STATUSES or status >= 500:
            return
        raise ProviderError(f"{self._who()} rejected the request: {what}") from None

    # -- answers ----------------------------------------------------------------------------
    def _response(self, completion: ChatCompletion, mode: StructuredOutput) -> LLMResponse:
        """The answer's JSON object, or `AnswerError` with the raw text. An answer that is not
        pure JSON in a JSON mode shows the server ignores that mode: step down to prompted."""
        if not completion.choices:
            raise ProviderError(f"{self._who()}: the server answered with no choices")
        choice = completion.choices[0]
        text = choice.message.content or ""
        if choice.finish_reason == "length":
            raise AnswerError("answer cut off at max_tokens; incomplete JSON", raw_text=text)
        if choice.finish_reason == "content_filter":
            raise AnswerError("the answer was withheld by the server's content filter", raw_text=text)
        if getattr(choice.message, "refusal", None):
            raise AnswerError(f"the model refused to answer: {choice.message.refusal}", raw_text=text)
        body = _THINKING.sub("", text).strip()
        data: Any
        try:
            data = json.loads(body)
        except json.JSONDecodeError as e:
            data = first_json_object(body)
            if mode != "prompted" and body and body[0] not in "{[":  # prose: no constrained decoder wrote it
                said = " ".join(body.split())[:40]
                self._step_down(mode, "prompted", f"ignores it (it answered prose: '{said}...')")
            if data is None:
                reason = f"answer is not JSON: {e.msg} at char {e.pos}"
                raise AnswerError(reason, raw_text=text) from None
        if not isinstance(data, dict):
            raise AnswerError(f"answer is JSON {type(data).__name__}, not an object", raw_text=text)
        if self.mode() == mode:
            self._settled = True
        model = completion.model or self.model
        return LLMResponse(data=data, raw_text=text, usage=usage_of(completion), provider=self.name, model=model)

    def estimate_cost(self, usage: Usage) -> float | None:
        """Configured `prices` first, then OpenAI's list prices (api.openai.com only); None for
        any other model, i.e. every local one."""
        model = _DATED.sub("", self.model)
        prices = self.options.prices.get(model)
        if prices is None and self._official():
            prices = PRICES.get(model)
        return None if prices is None else cost_at(prices, usage)

    # -- capabilities -----------------------------------------------------------------------
    async def probe(self) -> Capabilities:
        """`GET /v1/models`, then (structured_output auto, a server other than OpenAI's, mode not
        yet settled) one tiny structured call; both are remembered for the run."""
        client = self._client_for_loop()
        notes: list[str] = []
        models = await self._listed_models(client)
        if models is None:
            notes.append("the server lists no models (GET /v1/models failed)")
        elif self.model not in models and f"{self.model}:latest" not in models:  # Ollama's default tag
            shown = ", ".join(models[:8]) + (", ..." if len(models) > 8 else "")
            notes.append(f"the server does not list model '{self.model}' (it lists: {shown or 'none'})")
        if self.options.structured_output == "auto" and not self._official() and not self._settled:
            notes += await self._probe_structured(client)
        notes += self._why  # why it left json_schema, one line a step
        self._announced = self.mode()  # the probe's report says it: no notice mid-run
        return Capabilities(
            structured_output=self.mode(), prompt_caching=self._official(), batches=False, models=models, notes=notes
        )

    async def _listed_models(self, client: openai.AsyncOpenAI) -> list[str] | None:
        import openai

        async def listing() -> list[str] | None:
            try:
                page = await client.models.list()
            except (openai.NotFoundError, openai.APIResponseValidationError):
                return None
            return sorted(m.id for m in page.data)

        return await self.retrying(listing)

    async def _probe_structured(self, client: openai.AsyncOpenAI) -> list[str]:
        """One tiny call through the same steps as a real one; its answer shows whether the server
        enforces a schema. Lines for anything inconclusive."""
        request = LLMRequest(
            task="statements",
            system="This is a health check of the answer format.",
            messages=[Message(role="user", content="Say hello.")],
            output_schema=_PROBE_SCHEMA,
            schema_name="mksap_probe",
            max_tokens=256,
        )
        try:
            async with asyncio.timeout(self.settings.call_timeout):
                response = await self._answer(client, request)
        except AnswerError as e:
            return [f"the test call got no usable JSON ({e})"]
        except ProviderError as e:  # e.g. a model the server does not have: the run will say it again
            return [f"the test call failed: {e}"]
        except TimeoutError:
            return [f"the test call got no answer within {self.settings.call_timeout:g} s"]
        if self.mode() == "json_schema" and response.data != {"status": "ready"}:
            self._step_down("json_schema", "json_mode", "does not enforce it (the test answer broke the schema)")
        return []

    async def aclose(self) -> None:
        """Close the client and its connection pool."""
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()


# -- helpers (pure) -----------------------------------------------------------------------------


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema as OpenAI's strict structured output accepts it: every object closed
    (`additionalProperties: false`) with every property required (an optional one is nullable
    already in our answer models), and no `default`s."""

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(n) for n in node]
        if not isinstance(node, dict):
            return node
        out = {k: walk(v) for k, v in node.items() if k != "default"}
        if out.get("type") == "object" or "properties" in out:
            out["additionalProperties"] = False
            out["required"] = list(out.get("properties", {}))
        return out

    result: dict[str, Any] = walk(schema)
    return result


def first_json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in `text` (prose, code fences and all around it), or None."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None


def wait_of(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asks us to wait: `retry-after(-ms)`, else the latest
    `x-ratelimit-reset-requests/-tokens` of a limit that is used up (OpenAI, vLLM and routers
    send these), else an epoch `x-ratelimit-reset` (OpenRouter)."""
    hint = retry_after(headers)
    if hint is not None:
        return hint
    resets = []
    for kind in ("requests", "tokens"):
        reset = duration(headers.get(f"x-ratelimit-reset-{kind}"))
        remaining = headers.get(f"x-ratelimit-remaining-{kind}")
        if reset is not None and (remaining is None or remaining.strip() == "0"):
            resets.append(reset)
    if resets:
        return max(resets)
    epoch = duration(headers.get("x-ratelimit-reset"))
    if epoch is not None and epoch > 1e9:
        return (epoch / 1000 if epoch > 1e12 else epoch) - time.time()
    return epoch


def usage_of(completion: ChatCompletion) -> Usage:
    """Token usage of one answer. OpenAI counts cached tokens inside `prompt_tokens`; mksap's
    `input_tokens` are the uncached ones, as Anthropic counts them."""
    u = completion.usage
    if u is None:
        return Usage()
    details = u.prompt_tokens_details
    cached = (details.cached_tokens or 0) if details is not None else 0
    prompt = u.prompt_tokens or 0
    output = u.completion_tokens or 0
    return Usage(input_tokens=max(0, prompt - cached), output_tokens=output, cache_read_input_tokens=cached)


def cost_at(prices: tuple[float, float, float], usage: Usage) -> float:
    """USD for `usage` at (input, output, cached input) per million tokens; OpenAI charges no cache write."""
    uncached = usage.input_tokens + usage.cache_creation_input_tokens
    inp, out, cached = prices
    return (uncached * inp + usage.output_tokens * out + usage.cache_read_input_tokens * cached) / 1_000_000
