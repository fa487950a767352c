"""The contract between `mksap run --batch` and a provider that offers a batch API.

A provider supports batches when it has a `batch_api()` method returning a `BatchAPI`
(`isinstance(provider, SupportsBatches)`). The core orchestrates rounds, persistence and the
cache (`mksap.batches`); the provider only speaks its API. Every coroutine here runs on the
provider runtime's event loop (`ProviderRuntime.call`), like `Provider.complete`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from mksap.contracts.errors import ProviderError
from mksap.contracts.provider import LLMRequest, LLMResponse, Usage

#: The Message Batches API's limits per batch (requests, and bytes of the create request).
MAX_BATCH_REQUESTS = 100_000
MAX_BATCH_BYTES = 256 * 1024 * 1024

BatchStatus = Literal["in_progress", "canceling", "ended"]
ItemOutcome = Literal["succeeded", "errored", "expired", "canceled"]


class BatchCounts(BaseModel):
    """Requests of a batch by state (the API fills in outcomes only once the batch has ended)."""

    processing: int = 0
    succeeded: int = 0
    errored: int = 0
    canceled: int = 0
    expired: int = 0

    @property
    def total(self) -> int:
        return self.processing + self.succeeded + self.errored + self.canceled + self.expired


class BatchInfo(BaseModel):
    """A batch as the API describes it (ids and counts only: never a prompt, never a key)."""

    id: str
    status: BatchStatus
    counts: BatchCounts
    created_at: str
    ended_at: str | None = None
    canceled: bool = False  # a cancel was initiated
    archived: bool = False  # results are no longer available


class BatchItemResult(BaseModel):
    """One request's result, matched to its request by `custom_id`.

    `succeeded` with `response`: a parsed answer (not yet validated against the stage's
    answer model); `succeeded` with `error`: the model answered unusably (`raw_text` kept for
    the repair round); other outcomes carry a one-line `error` reason.
    """

    custom_id: str
    outcome: ItemOutcome
    response: LLMResponse | None = None
    error: str | None = None
    raw_text: str = ""
    usage: Usage = Field(default_factory=Usage)


class BatchPendingError(ProviderError):
    """Collect mode: the request missed the cache and goes into the next batch; not sent now."""


@runtime_checkable
class BatchAPI(Protocol):
    """One provider's batch endpoint. Errors are `ProviderError` / `ProviderStopError`."""

    def item(self, custom_id: str, request: LLMRequest) -> dict[str, Any]:
        """The JSON-able entry of `request` in a create call (its size counts against the limit)."""
        ...

    async def create(self, items: list[dict[str, Any]]) -> BatchInfo:
        """Submit one batch (within the limits above). Not retried when the outcome is unknown."""
        ...

    async def retrieve(self, batch_id: str) -> BatchInfo:
        """The batch's current state (idempotent; used for polling)."""
        ...

    async def cancel(self, batch_id: str) -> BatchInfo:
        """Ask the API to cancel a batch that is still processing."""
        ...

    async def fetch_results(self, batch_id: str, on_item: Callable[[BatchItemResult], None]) -> int:
        """Stream an ended batch's results (any order) into `on_item`; returns how many."""
        ...


@runtime_checkable
class SupportsBatches(Protocol):
    """A provider with a batch API."""

    def batch_api(self) -> BatchAPI: ...


@runtime_checkable
class ListsBatches(Protocol):
    """A batch API that can list the account's batches (optional, and strongly advised: it
    is how a batch whose create answer was lost, e.g. to a SIGKILL, is found again instead of
    its requests being paid for twice)."""

    async def list_batches(self, since: str) -> list[BatchInfo]:
        """Every batch created at or after `since` (ISO 8601, UTC), newest first (paging
        through the API's list until it reaches older ones)."""
        ...
