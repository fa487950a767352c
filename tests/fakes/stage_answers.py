"""A responder for the fake Messages API server that answers mksap's stage requests.

The user message of every mksap request is the JSON payload the prompt was rendered from, so
the fake can answer like the offline rules would, through real HTTP and the real SDK. Optional
defects can be seeded to exercise validation and repair.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from mksap_plugins.providers.offline import cloze_candidates, generalise, table_statements

from .anthropic_server import Reply


def answer_for(payload: dict[str, Any]) -> dict[str, Any]:
    """What a sensible model would answer to one mksap request payload."""
    if "items" in payload:  # repair
        return {
            "items": [
                {
                    "statement_id": i["statement_id"],
                    "statement": i["statement"],
                    "cloze_candidates": i["cloze_candidates"],
                }
                for i in payload["items"]
            ]
        }
    if "statements" in payload and "sentences" not in payload:  # cloze
        return {
            "items": [
                {"statement_id": s["id"], "cloze_candidates": cloze_candidates(s["text"], s.get("terms", []))}
                for s in payload["statements"]
            ]
        }
    if payload.get("source") == "table":
        return {"statements": table_statements(payload)}
    return {
        "statements": [
            {"statement": text, "extra_field": None, "source_index": sent["index"]}
            for sent in payload.get("sentences", [])
            for text in generalise(sent["text"])
        ]
    }


def stage_responder(
    tweak: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]] | None = None,
) -> Callable[[dict[str, Any]], Reply]:
    """A FakeAnthropicServer responder; `tweak(payload, answer)` may alter the answer."""

    def respond(body: dict[str, Any]) -> Reply:
        payload = json.loads(body["messages"][0]["content"])
        answer = answer_for(payload)
        if tweak is not None:
            answer = tweak(payload, answer)
        return Reply.json_object(answer)

    return respond
