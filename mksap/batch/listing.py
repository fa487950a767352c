"""Our Message Batches as `mksap batches` shows them, and `mksap batches cancel`.

"Ours" means recorded in this build's `<cache_dir>/batches/state.json`. The saved state is
refreshed from the API when a key is at hand, but never written here: a `mksap run --batch` in
another terminal owns that file, and sees a cancel at its next poll.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from mksap.batch.api import BatchAPI, SupportsBatches
from mksap.batch.pending import look_up
from mksap.batch.state import BatchRecord, BatchStore
from mksap.contracts.errors import MksapError, ProviderError
from mksap.contracts.registry import Registry
from mksap.llm.runtime import ProviderRuntime
from mksap.settings import Settings


class BatchListing(BaseModel):
    """Our batches, oldest first; `note` says why they could not be refreshed, if so."""

    batches: list[BatchRecord]
    refreshed: bool
    note: str | None = None
    canceled: list[str] = Field(default_factory=list)
    waiting_answers: int = 0  # fetched answers not yet taken by a build


def batch_listing(
    settings: Settings, *, cancel: list[str] | None = None, registry: Registry | None = None
) -> BatchListing:
    """Our batches, refreshed from the API. With `cancel`, first ask the API to cancel ours
    that are still processing: those named, or every one when the list is empty.

    A create an interrupted run sent without seeing its answer (`state.pending`) is looked up
    too: the batch it made is listed (and can be canceled) as ours, though only the next
    `mksap run --batch` records it."""
    store = BatchStore.for_settings(settings)
    state = store.load()
    records = list(state.batches)
    listing = BatchListing(batches=[], refreshed=True, waiting_answers=store.result_count())
    open_ = [i for i, b in enumerate(records) if b.status != "ended"]
    if not open_ and not state.pending:
        _check_ours(cancel, records)
        return listing.model_copy(update={"batches": records})
    registry = registry or Registry.load()
    notes: list[str] = []
    names = sorted({records[i].provider for i in open_} | {p.provider for p in state.pending})
    runtimes = {name: ProviderRuntime(settings.model_copy(update={"provider": name}), registry) for name in names}
    try:
        apis: dict[str, BatchAPI] = {}
        for name, runtime in runtimes.items():  # first what the pending creates made: ours too
            try:
                apis[name] = _api(name, runtime)
                for pending in (p for p in state.pending if p.provider == name):
                    lookup = look_up(apis[name], runtime, state, store, pending)
                    notes.append(lookup.describe(pending))
                    if lookup.found is not None:
                        records.append(pending.record(lookup.found))
                        open_.append(len(records) - 1)
            except ProviderError as e:
                if cancel is not None:
                    raise
                listing.refreshed = False
                notes.append(f"saved state, not refreshed: {e}")
        _check_ours(cancel, records)
        for i in (i for i in open_ if records[i].provider in apis):
            record, api, runtime = records[i], apis[records[i].provider], runtimes[records[i].provider]
            try:
                wanted = cancel is not None and (not cancel or record.id in cancel)
                if wanted and record.status == "in_progress":
                    records[i] = record.seen(runtime.call(api.cancel(record.id)))
                    listing.canceled.append(record.id)
                elif record.status != "ended":
                    records[i] = record.seen(runtime.call(api.retrieve(record.id)))
            except ProviderError as e:
                if cancel is not None:
                    raise
                listing.refreshed = False
                notes.append(f"saved state, not refreshed: {e}")
    finally:
        for runtime in runtimes.values():
            runtime.close()
    return listing.model_copy(update={"batches": records, "note": "; ".join(dict.fromkeys(notes)) or None})


def _api(name: str, runtime: ProviderRuntime) -> BatchAPI:
    provider = runtime.providers()[0]
    if not isinstance(provider, SupportsBatches):
        raise ProviderError(f"provider '{name}' that sent these batches has no batch API now")
    return provider.batch_api()


def _check_ours(cancel: list[str] | None, records: list[BatchRecord]) -> None:
    ours = {b.id for b in records}
    unknown = [i for i in cancel or [] if i not in ours]
    if unknown:
        listed = ", ".join(sorted(ours)) or "none"
        raise MksapError(f"not a batch of this build: {', '.join(unknown)} (ours: {listed}; see `mksap batches`)")
