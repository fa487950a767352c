"""Message Batches for the anthropic provider: its `mksap.batch_api.BatchAPI` (half price,
answered within 24 hours).

A batch item carries the very `messages.create` arguments of a direct call
(`AnthropicProvider._params`), and a succeeded item's message is parsed by the same code as a
direct answer (`AnthropicProvider._response`), so the two are interchangeable in the cache.
Calls go through the provider's retry loop; creating a batch is retried only when the API says
nothing was done (429/529), so a timeout never submits (and pays for) the same batch twice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mksap.batch.api import BatchCounts, BatchInfo, BatchItemResult
from mksap.contracts.errors import AnswerError, ProviderError
from mksap.contracts.provider import LLMRequest

from .anthropic import usage_of

if TYPE_CHECKING:
    from anthropic.types.messages import MessageBatch, MessageBatchIndividualResponse

    from .anthropic import AnthropicProvider


class AnthropicBatchAPI:
    """`client.messages.batches` on the provider's shared async client."""

    def __init__(self, provider: AnthropicProvider) -> None:
        self.provider = provider

    def item(self, custom_id: str, request: LLMRequest) -> dict[str, Any]:
        return {"custom_id": custom_id, "params": self.provider._params(request)}

    async def create(self, items: list[dict[str, Any]]) -> BatchInfo:
        client = self.provider._client_for_loop()
        batch = await self.provider.retrying(
            lambda: client.messages.batches.create(requests=items),  # type: ignore[arg-type]
            repeatable=False,
        )
        return batch_info(batch)

    async def retrieve(self, batch_id: str) -> BatchInfo:
        client = self.provider._client_for_loop()
        return batch_info(await self.provider.retrying(lambda: client.messages.batches.retrieve(batch_id)))

    async def cancel(self, batch_id: str) -> BatchInfo:
        client = self.provider._client_for_loop()
        return batch_info(await self.provider.retrying(lambda: client.messages.batches.cancel(batch_id)))

    async def list_batches(self, since: str) -> list[BatchInfo]:
        """Every batch created at or after `since` (ISO time), newest first: how a run finds a
        batch whose create answer it never saw (mksap.batch.api.ListsBatches)."""
        client = self.provider._client_for_loop()
        oldest = datetime.fromisoformat(since)
        page = await self.provider.retrying(lambda: client.messages.batches.list(limit=100))
        found: list[BatchInfo] = []
        while True:
            for batch in page.data:
                if batch.created_at < oldest:
                    return found
                found.append(batch_info(batch))
            if not page.has_next_page():
                return found
            page = await self.provider.retrying(page.get_next_page)

    async def fetch_results(self, batch_id: str, on_item: Callable[[BatchItemResult], None]) -> int:
        import anthropic

        client = self.provider._client_for_loop()
        lines = await self.provider.retrying(lambda: client.messages.batches.results(batch_id))
        count = 0
        try:
            async for line in lines:
                on_item(self._result(line))
                count += 1
        except anthropic.APIError as e:
            raise ProviderError(
                f"anthropic: reading the results of {batch_id} failed ({type(e).__name__}); "
                "run again to fetch them (results stay available for 29 days)"
            ) from None
        return count

    def _result(self, line: MessageBatchIndividualResponse) -> BatchItemResult:
        result, custom_id = line.result, line.custom_id
        if result.type == "succeeded":
            usage = usage_of(result.message)
            try:
                response = self.provider._response(result.message)
            except AnswerError as e:
                return BatchItemResult(
                    custom_id=custom_id, outcome="succeeded", error=str(e), raw_text=e.raw_text, usage=usage
                )
            return BatchItemResult(custom_id=custom_id, outcome="succeeded", response=response, usage=usage)
        if result.type == "errored":
            err = result.error.error
            reason = self.provider._scrub(" ".join(f"{err.type}: {err.message}".split())[:300])
            return BatchItemResult(custom_id=custom_id, outcome="errored", error=reason)
        return BatchItemResult(custom_id=custom_id, outcome=result.type, error=f"the batch request {result.type}")


def batch_info(batch: MessageBatch) -> BatchInfo:
    """The SDK's `MessageBatch` as mksap's `BatchInfo`."""
    c = batch.request_counts
    counts = BatchCounts(
        processing=c.processing, succeeded=c.succeeded, errored=c.errored, canceled=c.canceled, expired=c.expired
    )
    return BatchInfo(
        id=batch.id,
        status=batch.processing_status,
        counts=counts,
        created_at=_iso(batch.created_at) or "",
        ended_at=_iso(batch.ended_at),
        canceled=batch.cancel_initiated_at is not None,
        archived=batch.archived_at is not None,
    )


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat(timespec="seconds")
