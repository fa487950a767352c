"""Finding the batch of a create whose answer was lost.

A create is recorded as pending before it is sent (`BatchStore.begin_create`). When the answer
never came (the process was killed while the create was in flight, or the connection dropped
and the outcome is unknown), the next run asks the API for the batches created since: the one
that is not ours yet, holds as many requests and was created within the window is that create's
batch. When several could be, those that have ended are told apart by their results' custom_ids
(our request keys). None at all: the create never reached the API, and its requests go out
again normally.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from mksap.batch.api import BatchAPI, BatchInfo, BatchItemResult, ListsBatches
from mksap.batch.state import BatchState, BatchStore, PendingCreate
from mksap.llm.runtime import ProviderRuntime

#: How far the API's clock may be behind ours.
SKEW = timedelta(minutes=5)
#: How long after it was sent a create may have been processed (a large upload takes a while).
LATEST = timedelta(hours=1)


@dataclass
class Lookup:
    """What the API says about a pending create."""

    found: BatchInfo | None = None  # its batch
    never_created: bool = False  # no batch could be it
    candidates: list[BatchInfo] = field(default_factory=list)  # several could be, none told apart
    unlisted: str | None = None  # why the API could not be asked

    def describe(self, pending: PendingCreate) -> str:
        """One line for `mksap batches` and the run's notices."""
        what = f"a batch create of {pending.requests} request(s) sent at {pending.started_at} and cut short"
        if self.found is not None:
            return f"{what} made batch {self.found.id}"
        if self.never_created:
            return f"{what} never reached the API; its requests go out again"
        if self.unlisted:
            return f"{what} cannot be looked up ({self.unlisted}); if it was created, check the provider's console"
        ids = ", ".join(b.id for b in self.candidates)
        return f"{what} may have made any of {ids}; they are told apart by their results once they have ended"


def look_up(
    api: BatchAPI, runtime: ProviderRuntime, state: BatchState, store: BatchStore, pending: PendingCreate
) -> Lookup:
    """Find the batch `pending` made, if any (read-only: the caller records what it decides)."""
    if not isinstance(api, ListsBatches):
        return Lookup(unlisted=f"provider '{pending.provider}' cannot list its batches")
    started = _when(pending.started_at)
    listed = runtime.call(api.list_batches((started - SKEW).isoformat(timespec="seconds")))
    known = {b.id for b in state.batches}
    candidates = [
        b
        for b in listed
        if b.id not in known
        and b.counts.total == pending.requests
        and started - SKEW <= _when(b.created_at) <= started + LATEST
    ]
    if len(candidates) == 1:
        return Lookup(found=candidates[0])
    if not candidates:
        return Lookup(never_created=True)
    keys = store.pending_keys(pending)
    ours = [b for b in candidates if b.status == "ended" and keys and _custom_ids(api, runtime, b.id) == keys]
    if len(ours) == 1:
        return Lookup(found=ours[0])
    return Lookup(candidates=candidates)


def _custom_ids(api: BatchAPI, runtime: ProviderRuntime, batch_id: str) -> set[str]:
    ids: set[str] = set()

    def keep(item: BatchItemResult) -> None:
        ids.add(item.custom_id)

    runtime.call(api.fetch_results(batch_id, keep))
    return ids


def _when(stamp: str) -> datetime:
    when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
