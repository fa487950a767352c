"""Watching our Message Batches until they end, and keeping their answers.

Every state change is saved the moment it is seen (`BatchStore`), so an interrupted run, or
one started again the next day, polls the batches it already paid for instead of paying again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mksap.batch.api import BatchAPI, BatchItemResult
from mksap.batch.state import KEY, BatchRecord, BatchState, BatchStore, ItemFailure, StoredAnswer
from mksap.contracts.provider import Provider
from mksap.llm.runtime import ProviderRuntime


@dataclass
class BatchWatcher:
    """Polls our unfinished batches, stores their results by request key, says what it sees."""

    api: BatchAPI
    store: BatchStore
    state: BatchState
    runtime: ProviderRuntime
    provider: Provider
    poll_interval: float
    status_every: float
    say: Callable[[str], None]
    notice: Callable[[str], None]
    seen_running: set[str] = field(default_factory=set)  # batches seen processing, uncanceled
    _last_line: dict[str, tuple[float, str]] = field(default_factory=dict)

    def wait_and_fetch(self) -> bool:
        """Poll our unfinished batches until they end, then store their results. True when
        one was canceled while this run watched it (someone ran `mksap batches cancel`)."""
        runtime = self.runtime
        while True:
            for record in [b for b in self.state.unfetched() if b.status != "ended"]:
                updated = record.seen(runtime.call(self.api.retrieve(record.id)))
                if updated != record:
                    self.state.replace(updated)
                    self.store.save(self.state)
                if updated.status == "in_progress" and not updated.canceled:
                    self.seen_running.add(updated.id)
                self._status(updated)
            if all(b.status == "ended" for b in self.state.unfetched()):
                break
            time.sleep(self.poll_interval)
        canceled_meanwhile = False
        for record in self.state.unfetched():
            self.fetch(record)
            canceled_meanwhile |= record.canceled and record.id in self.seen_running
        return canceled_meanwhile

    def fetch(self, record: BatchRecord) -> None:
        """Store an ended batch's answers by request key; remember errored and expired ones."""
        if record.archived:
            self.notice(f"results of batch {record.id} are no longer available; its requests will be sent again")
        else:
            self.runtime.call(self.api.fetch_results(record.id, lambda item: self._keep(record.id, item)))
        self.state.replace(record.model_copy(update={"fetched": True}))
        self.store.save(self.state)

    def _keep(self, batch_id: str, item: BatchItemResult) -> None:
        key = item.custom_id
        if not KEY.match(key):
            return  # not a request of ours
        if item.outcome == "succeeded":
            self.runtime.add_batch_usage(self.provider.name, self.provider.model, item.usage)
            self.store.put(key, StoredAnswer(response=item.response, error=item.error, raw_text=item.raw_text))
            self.state.failures.pop(key, None)
        elif item.outcome in ("errored", "expired"):
            reason = item.error or item.outcome
            self.state.failures[key] = ItemFailure(outcome=item.outcome, reason=reason, batch_id=batch_id)
        # canceled: nothing kept, so the request is recorded again and resubmitted

    def _status(self, record: BatchRecord) -> None:
        """A status line when a batch's state changes, or every `status_every` seconds."""
        c = record.counts
        text = (
            f"batch {record.id}: {record.status}, {c.succeeded}/{record.requests} succeeded, "
            f"{c.errored} errored, {c.expired} expired" + (f", {c.canceled} canceled" if c.canceled else "")
        )
        now = time.monotonic()
        last = self._last_line.get(record.id)
        if last is None or last[1] != text or now - last[0] >= self.status_every:
            self._last_line[record.id] = (now, text)
            self.say(text)
