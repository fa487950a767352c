"""The one provider interface: a typed request in, a typed response out, asynchronously.

A request carries both the rendered prompt (for language models) and the structured context
it was rendered from (for the rule-based offline provider), so every provider answers the same
question and the cache key covers everything that shaped the answer.
"""

from __future__ import annotations

import hashlib
import json
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from mksap.settings import Configured, Settings

TaskKind = Literal["statements", "cloze", "repair"]


class Message(BaseModel):
    role: Literal["user", "assistant"]
    content: str


class LLMRequest(BaseModel):
    """Everything that determines an answer. Its `key()` is the cache key."""

    task: TaskKind
    system: str = Field(description="shared instructions (cached by providers that can)")
    messages: list[Message]
    output_schema: dict[str, Any] = Field(description="JSON schema the answer must satisfy")
    schema_name: str
    context: dict[str, Any] = Field(default_factory=dict, description="structured source of the prompt")
    max_tokens: int = 4096
    options: dict[str, Any] = Field(default_factory=dict)

    def key(self, provider: str, model: str) -> str:
        """sha256 of the canonical JSON of the full request plus provider and model."""
        canonical = json.dumps(
            {"provider": provider, "model": model, **self.model_dump(mode="json")},
            sort_keys=True,
            ensure_ascii=False,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


@cache
def schema_of(answer: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema of an answer model, computed once (pydantic takes ~2 ms a call).
    Treat the result as read-only: it is shared."""
    return answer.model_json_schema()


class Usage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(**{k: getattr(self, k) + getattr(other, k) for k in Usage.model_fields})


class LLMResponse(BaseModel):
    """A parsed, schema-valid answer."""

    data: dict[str, Any]
    raw_text: str
    usage: Usage = Field(default_factory=Usage)
    provider: str
    model: str
    from_cache: bool = False


StructuredOutput = Literal["json_schema", "json_mode", "prompted"]


class Capabilities(BaseModel):
    """What a provider (or the server behind it) can do, as `Provider.probe()` found it."""

    structured_output: StructuredOutput = Field(
        "prompted",
        description="json_schema: the server enforces the answer's schema; json_mode: it guarantees "
        "JSON only (the schema goes in the prompt); prompted: the schema is in the prompt and the "
        "first JSON object of the answer is used",
    )
    prompt_caching: bool = Field(False, description="shared instructions are read from a prompt cache")
    batches: bool = Field(False, description="a batch API for `mksap run --batch`")
    models: list[str] | None = Field(None, description="models the server lists, None when it lists none")
    notes: list[str] = Field(default_factory=list, description="what it lacks or got wrong, one line each")


class Provider(Configured, ABC):
    """Base class of provider plugins. One instance per run, used from one event loop.

    Class attributes:
      name           what `--provider` accepts
      local          True when answers are computed locally for free (no cache, no limits)
      options_model  the pydantic model of its own options (`[plugins.<name>]` in config)
      capabilities   what the class declares it can do (`probe()` reports it by default)
      reports_rate_limits  True when it hands each API answer's headers to `report_rate_limits()`:
                     its calls then start at a few in flight and follow the server's rate limits
                     up to `max_concurrency` (False: a fixed `max_concurrency`)
    """

    local: ClassVar[bool] = False
    capabilities: ClassVar[Capabilities] = Capabilities()
    reports_rate_limits: ClassVar[bool] = False
    _notice: Callable[[str], None] | None = None
    _rate_observer: Callable[[Mapping[str, str], bool], None] | None = None

    async def probe(self) -> Capabilities:
        """What this provider can do, checked once per run before the first call (runs on the
        runtime's event loop). The default reports what the class declares, without network;
        a provider talking to a server of unknown abilities asks it, remembers what it found
        for the rest of the run, and says in `notes` what the server lacks."""
        declared = type(self).capabilities
        has_batches = declared.batches or callable(getattr(self, "batch_api", None))
        return declared.model_copy(update={"batches": has_batches})

    def bind_notice(self, notice: Callable[[str], None]) -> None:
        """Route `notice()` to the run's notice channel (the runtime's `notice`)."""
        self._notice = notice

    def notice(self, message: str) -> None:
        """Tell the user `message` (e.g. a fallback chosen mid-run); the provider says each
        thing once. Unbound (see `bind_notice`), it goes to stderr as `mksap: <message>`,
        as the CLI prints notices."""
        if self._notice is not None:
            self._notice(message)
        else:
            print(f"mksap: {message}", file=sys.stderr)

    def bind_rate_observer(self, observer: Callable[[Mapping[str, str], bool], None]) -> None:
        """Route `report_rate_limits()` to the runtime, which paces and sizes this provider's
        calls by what it hears (`observer(headers, refused)`)."""
        self._rate_observer = observer

    def report_rate_limits(self, headers: Mapping[str, str], *, refused: bool = False) -> None:
        """Hand the runtime the headers of one HTTP answer to a call (`refused`: it was a 429
        rate-limit refusal, to be retried). Call it on the event loop, inside `complete()`, for
        every attempt. Unbound (see `bind_rate_observer`), it does nothing."""
        if self._rate_observer is not None:
            self._rate_observer(headers, refused)

    @classmethod
    def unready(cls, settings: Settings) -> str | None:
        """Why this provider cannot be used with `settings` (no key, executable missing), or
        None when it can. Cheap: no network, no heavy import. `provider = auto` takes the
        first provider of `auto_providers` that is ready."""
        return None

    @classmethod
    def health(cls, settings: Settings) -> list[str]:
        """Lines for `mksap doctor`, each starting 'ok: ' or 'error: ': whether it is usable."""
        reason = cls.unready(settings)
        return [f"error: {reason}"] if reason else ["ok: usable"]

    @property
    def model(self) -> str:
        return self.settings.model

    @abstractmethod
    async def complete(self, request: LLMRequest) -> LLMResponse:
        """Answer `request` with data valid against `request.output_schema`.

        Raise `ProviderStopError` for auth/quota failures, `ProviderError` when the call could
        not be made, `StageError` when the model answered but unusably.
        """

    def estimate_cost(self, usage: Usage) -> float | None:
        """Estimated USD for `usage` at this provider's list prices, or None if unknown."""
        return None

    async def aclose(self) -> None:
        """Release connections or child processes. Called once at the end of a run."""
