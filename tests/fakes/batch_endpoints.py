"""The Message Batches part of the fake Anthropic API (used by ``FakeAnthropicServer``).

Endpoints, shaped like the real ones (see the SDK's ``types/messages/message_batch*.py``):

- ``POST /v1/messages/batches``                 create; every item is answered at once, through
                                               the server's queue/responder, like ``/v1/messages``
- ``GET  /v1/messages/batches``                 list, newest first
- ``GET  /v1/messages/batches/{id}``            retrieve; the batch says ``in_progress`` for
                                               ``polls_before_end`` retrieves, then ``ended``
- ``GET  /v1/messages/batches/{id}/results``    JSONL, one line per item, in random order
- ``POST /v1/messages/batches/{id}/cancel``     ``canceling``; the next retrieve ends it with
                                               every item ``canceled``

The list answers like the real one: ``{"data": [...], "has_more", "first_id", "last_id"}``,
newest first, each item the very batch object a retrieve returns (the real API lists no
custom_ids and no metadata: a batch is told apart by its id, created time and request counts).

Scripting (attributes of ``server.batches``): ``polls_before_end`` (read at every retrieve, so
changing it affects batches already created), ``outcome(custom_id, params)`` returning
``"errored"`` / ``"expired"`` to override an item (None: answer it), ``created`` (how many
batches were created) and ``created_ids`` (custom_ids of every batch, in creation order).
``stall_create`` makes the next creates hang, so a test can kill the client mid-create:
``"after"`` creates the batch (the API did the work) and then never answers, ``"before"``
never creates it; ``stalled`` is set once a create hangs, ``release()`` lets hanging creates
end (an "after" one answers, a "before" one fails with 500 and creates nothing).
"""

from __future__ import annotations

import json
import random
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MAX_REQUESTS = 100_000

#: (status, JSON body or None, raw bytes or None, content type)
Answer = tuple[int, Any, bytes | None, str]
#: params -> (HTTP status, body) of what /v1/messages would answer
ItemAnswerer = Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]


def _stamp(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat().replace("+00:00", "Z")


def _error(status: int, err_type: str, message: str) -> Answer:
    return status, {"type": "error", "error": {"type": err_type, "message": message}}, None, "application/json"


@dataclass
class FakeBatch:
    id: str
    created_at: datetime
    results: list[dict[str, Any]]  # {"custom_id", "result"} as they will be when the batch ends
    polls: int = 0
    status: str = "in_progress"
    ended_at: datetime | None = None
    cancel_initiated_at: datetime | None = None
    final: list[dict[str, Any]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(("processing", "succeeded", "errored", "canceled", "expired"), 0)
        if self.status != "ended":
            counts["processing"] = len(self.results)
            return counts
        for line in self.final:
            counts[line["result"]["type"]] += 1
        return counts

    def as_json(self, base_url: str) -> dict[str, Any]:
        ended = self.status == "ended"
        return {
            "id": self.id,
            "type": "message_batch",
            "processing_status": self.status,
            "request_counts": self.counts(),
            "created_at": _stamp(self.created_at),
            "expires_at": _stamp(self.created_at + timedelta(hours=24)),
            "ended_at": _stamp(self.ended_at),
            "cancel_initiated_at": _stamp(self.cancel_initiated_at),
            "archived_at": None,
            "results_url": f"{base_url}/v1/messages/batches/{self.id}/results" if ended else None,
        }

    def end(self) -> None:
        if self.status == "canceling":
            self.final = [{"custom_id": r["custom_id"], "result": {"type": "canceled"}} for r in self.results]
        else:
            self.final = list(self.results)
        self.status, self.ended_at = "ended", datetime.now(UTC)


class FakeBatches:
    """State and request handling of the batch endpoints; thread-safe."""

    def __init__(self, answer_item: ItemAnswerer) -> None:
        self.answer_item = answer_item
        self.polls_before_end = 0
        self.outcome: Callable[[str, dict[str, Any]], str | None] | None = None
        self.created = 0
        self.created_ids: list[list[str]] = []
        self.batches: dict[str, FakeBatch] = {}
        self.stall_create: str | None = None  # "after" | "before" | None
        self.stalled = threading.Event()
        self._release = threading.Event()
        self._lock = threading.Lock()
        self._random = random.Random(20_240_101)

    def release(self) -> None:
        """Let every hanging create end (and later ones not hang)."""
        self.stall_create = None
        self._release.set()

    def _stall(self) -> None:
        self.stalled.set()
        self._release.wait(timeout=120)

    def end_all(self) -> None:
        """End every batch still processing (as if a day had passed)."""
        with self._lock:
            for batch in self.batches.values():
                if batch.status != "ended":
                    batch.end()

    def handle(self, method: str, path: str, body: Any, base_url: str) -> Answer:
        parts = path.removeprefix("/v1/messages/batches").strip("/").split("/")
        if method == "POST" and parts == [""]:
            return self._create(body, base_url)
        if method == "GET" and parts == [""]:
            with self._lock:
                data = [b.as_json(base_url) for b in reversed(self.batches.values())]
            first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
            return 200, {"data": data, "has_more": False, "first_id": first, "last_id": last}, None, "application/json"
        with self._lock:
            batch = self.batches.get(parts[0])
            if batch is None:
                return _error(404, "not_found_error", f"batch {parts[0]} not found")
            if method == "GET" and len(parts) == 1:
                batch.polls += 1
                due = batch.status == "in_progress" and batch.polls > self.polls_before_end
                if due or batch.status == "canceling":
                    batch.end()
                return 200, batch.as_json(base_url), None, "application/json"
            if method == "POST" and parts[1:] == ["cancel"]:
                if batch.status == "in_progress":
                    batch.status, batch.cancel_initiated_at = "canceling", datetime.now(UTC)
                return 200, batch.as_json(base_url), None, "application/json"
            if method == "GET" and parts[1:] == ["results"]:
                if batch.status != "ended":
                    return _error(400, "invalid_request_error", f"batch {batch.id} is still processing")
                lines = list(batch.final)
        self._random.shuffle(lines)
        if len(lines) > 1 and [x["custom_id"] for x in lines] == [x["custom_id"] for x in batch.final]:
            lines.reverse()  # always out of submission order
        raw = "".join(json.dumps(line) + "\n" for line in lines).encode()
        return 200, None, raw, "application/binary"

    def _create(self, body: Any, base_url: str) -> Answer:
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            return _error(400, "invalid_request_error", "requests: a non-empty list is required")
        if len(requests) > MAX_REQUESTS:
            return _error(400, "invalid_request_error", f"requests: at most {MAX_REQUESTS} per batch")
        ids = [r.get("custom_id") if isinstance(r, dict) else None for r in requests]
        bad = [i for i in ids if not isinstance(i, str) or not CUSTOM_ID.match(i)]
        if bad:
            return _error(400, "invalid_request_error", f"custom_id {bad[0]!r} must match {CUSTOM_ID.pattern}")
        if len(set(ids)) != len(ids):
            return _error(400, "invalid_request_error", "custom_id values must be unique within a batch")
        stall = self.stall_create
        if stall == "before":
            self._stall()
            return _error(500, "api_error", "fake: the create was lost before it was processed")
        results = [{"custom_id": r["custom_id"], "result": self._item_result(r)} for r in requests]
        batch = FakeBatch(id="msgbatch_" + uuid.uuid4().hex[:24], created_at=datetime.now(UTC), results=results)
        with self._lock:
            self.batches[batch.id] = batch
            self.created += 1
            self.created_ids.append([str(i) for i in ids])
            answer = batch.as_json(base_url)
        if stall == "after":
            self._stall()
        return 200, answer, None, "application/json"

    def _item_result(self, request: dict[str, Any]) -> dict[str, Any]:
        params = request.get("params")
        if not isinstance(params, dict):
            return {"type": "errored", "error": _error(400, "invalid_request_error", "params: object required")[1]}
        forced = self.outcome(request["custom_id"], params) if self.outcome else None
        if forced == "expired":
            return {"type": "expired"}
        if forced == "errored":
            message = "fake: this batch item errored"
            return {"type": "errored", "error": _error(500, "api_error", message)[1]}
        status, answer = self.answer_item(params)
        if status != 200:
            return {"type": "errored", "error": answer}
        return {"type": "succeeded", "message": answer}
