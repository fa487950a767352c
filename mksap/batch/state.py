"""What a `--batch` run keeps on disk, under `<cache_dir>/batches/`:

  state.json               our batches (id, status, counts, round, fetched or not), the
                           request keys whose batch item errored, expired or was canceled, and
                           the creates sent whose answer was never seen (`pending`)
  pending/<token>.json     the request keys of such a create, written before it is sent
  results/<kk>/<key>.json  answers fetched from ended batches, by request key, waiting for the
                           next round's build to validate and cache them

A create is recorded as pending *before* it is sent, and replaced by its batch the moment the
answer says which: a crash in between (SIGKILL while the create is in flight) leaves the pending
record, and the next run finds the batch again by listing the API's batches (`resolve`), so its
requests are never paid for twice and `mksap batches cancel` can still reach it.

A request's batch `custom_id` is its cache key (a SHA-256 hex digest: exactly the 64 characters
the API allows), so the custom_id -> key mapping is the identity and needs no file.
Answers stay outside the LLM cache until a stage has validated them (the runtime takes one on a
cache miss, runs the stage's `accept`, then caches it): an invalid answer never enters the
cache. Every write is atomic, so an interrupted run resumes polling instead of paying again.
Nothing here holds an API key: ids, counts, hashes and answers only.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from mksap.atomic import write_json
from mksap.batch.api import BatchCounts, BatchInfo, BatchStatus
from mksap.contracts.errors import MksapError
from mksap.contracts.provider import LLMResponse
from mksap.settings import Settings

STATE_FILE = "state.json"
KEY = re.compile(r"^[0-9a-f]{64}$")


class BatchRecord(BaseModel):
    """One batch we submitted, as last seen."""

    id: str
    status: BatchStatus
    counts: BatchCounts
    requests: int
    created_at: str
    ended_at: str | None = None
    round: int
    provider: str
    model: str
    canceled: bool = False
    archived: bool = False
    fetched: bool = False  # results are in the store (or were unavailable)
    adopted: bool = False  # found again by listing, after a create whose answer was lost

    @classmethod
    def submitted(cls, info: BatchInfo, *, requests: int, round_no: int, provider: str, model: str) -> BatchRecord:
        return cls(requests=requests, round=round_no, provider=provider, model=model, **_seen(info))

    def seen(self, info: BatchInfo) -> BatchRecord:
        """This record updated with what the API says now."""
        return self.model_copy(update=_seen(info))


def _seen(info: BatchInfo) -> dict[str, object]:
    return {name: getattr(info, name) for name in BatchInfo.model_fields}


class PendingCreate(BaseModel):
    """A batch create that was sent (or about to be) and whose answer was not seen yet."""

    token: str
    requests: int
    round: int
    provider: str
    model: str
    started_at: str  # our clock (UTC), just before the create was sent

    @classmethod
    def before_create(cls, *, requests: int, round_no: int, provider: str, model: str) -> PendingCreate:
        now = datetime.now(UTC).isoformat(timespec="seconds")
        return cls(
            token=uuid.uuid4().hex, requests=requests, round=round_no, provider=provider, model=model, started_at=now
        )

    def record(self, info: BatchInfo) -> BatchRecord:
        """The batch this create made (found by `resolve`)."""
        return BatchRecord.submitted(
            info, requests=self.requests, round_no=self.round, provider=self.provider, model=self.model
        ).model_copy(update={"adopted": True})


class ItemFailure(BaseModel):
    """Why a request got no answer from its batch."""

    outcome: Literal["errored", "expired"]
    reason: str
    batch_id: str


class BatchState(BaseModel):
    version: Literal[1] = 1
    batches: list[BatchRecord] = Field(default_factory=list)
    failures: dict[str, ItemFailure] = Field(default_factory=dict)
    pending: list[PendingCreate] = Field(default_factory=list)

    def unfetched(self) -> list[BatchRecord]:
        return [b for b in self.batches if not b.fetched]

    def replace(self, record: BatchRecord) -> None:
        self.batches = [record if b.id == record.id else b for b in self.batches]


class StoredAnswer(BaseModel):
    """A batch answer waiting for validation: a parsed response, or why it was unusable."""

    response: LLMResponse | None = None
    error: str | None = None
    raw_text: str = ""


class BatchStore:
    """The `<cache_dir>/batches/` folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def for_settings(cls, settings: Settings) -> BatchStore:
        return cls(settings.cache_dir / "batches")

    @property
    def state_file(self) -> Path:
        return self.root / STATE_FILE

    def load(self) -> BatchState:
        try:
            return BatchState.model_validate_json(self.state_file.read_bytes())
        except FileNotFoundError:
            return BatchState()
        except (ValidationError, ValueError) as e:
            raise MksapError(
                f"batch state {self.state_file} is unreadable ({type(e).__name__}); it lists the batches "
                "already paid for, so fix it or, to forget them, move it aside"
            ) from None

    def save(self, state: BatchState) -> None:
        write_json(self.state_file, state.model_dump(mode="json"))

    def _pending_path(self, token: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{32}", token):
            raise ValueError(f"not a pending token: {token[:80]!r}")
        return self.root / "pending" / f"{token}.json"

    def begin_create(self, state: BatchState, pending: PendingCreate, keys: list[str]) -> None:
        """Record a create before it is sent: its request keys, then the pending record."""
        write_json(self._pending_path(pending.token), {"keys": keys}, compact=True)
        state.pending.append(pending)
        self.save(state)

    def end_create(self, state: BatchState, pending: PendingCreate, record: BatchRecord | None) -> None:
        """The create's outcome is known: its batch (or None, there is none) replaces it."""
        state.pending = [p for p in state.pending if p.token != pending.token]
        if record is not None and all(b.id != record.id for b in state.batches):
            state.batches.append(record)
        self.save(state)
        self._pending_path(pending.token).unlink(missing_ok=True)
        folder = self.root / "pending"
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()

    def pending_keys(self, pending: PendingCreate) -> set[str]:
        """The request keys of a pending create (empty when its file is gone)."""
        try:
            data = json.loads(self._pending_path(pending.token).read_bytes())
            return {k for k in data.get("keys", []) if isinstance(k, str) and KEY.match(k)}
        except (OSError, ValueError, AttributeError):
            return set()

    def _result_path(self, key: str) -> Path:
        if not KEY.match(key):  # custom_ids come back from the network: never a path we did not make
            raise ValueError(f"not a request key: {key[:80]!r}")
        return self.root / "results" / key[:2] / f"{key}.json"

    def put(self, key: str, answer: StoredAnswer) -> None:
        write_json(self._result_path(key), answer.model_dump(mode="json"), compact=True)

    def get(self, key: str) -> StoredAnswer | None:
        """The stored answer for `key`; None when there is none (an unreadable one counts as none)."""
        try:
            return StoredAnswer.model_validate_json(self._result_path(key).read_bytes())
        except (FileNotFoundError, ValidationError, ValueError, json.JSONDecodeError):
            return None

    def result_count(self) -> int:
        folder = self.root / "results"
        return sum(1 for _ in folder.glob("*/*.json")) if folder.is_dir() else 0

    def drop(self, keys: set[str]) -> None:
        """Forget the answers of `keys` (validated and cached by now)."""
        for key in keys:
            self._result_path(key).unlink(missing_ok=True)
        folder = self.root / "results"
        if folder.is_dir() and not any(folder.glob("*/*.json")):
            shutil.rmtree(folder, ignore_errors=True)
