"""A responder for the fake Messages API server that answers mksap's stage requests.

The user message of every mksap request is the JSON payload the prompt was rendered from, so
the fake can answer like a model following the v3 prompts would, through real HTTP and the
real SDK:

- statements: what the v3 rules write (the prompts' worked examples teach the same moves:
  clauses split with their subject, abbreviations spelled out, answer framing and citations
  dropped, natural table sentences), with `extra_field` set as the prompts ask (the sentence
  that names the subject, else the objective; a table's caption);
- cloze: the key terms, proposed the way models do, with their usual slips mixed in: a number
  without its comparator or unit, a restatement in other units as a candidate of its own, the
  same term in another case, a term nested in another, a fragment ending in a function word,
  a generic word. The cloze stage must clean these up, so the output shows what it keeps;
- repair: the rules applied again with the neighbouring sentences the request now carries.

Optional defects can be seeded to exercise validation and repair.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from mksap_plugins.providers.offline import cloze_candidates, repair, source_statements, table_statements
from mksap_plugins.stages.quantities import paired_quantities, quantity_spans

from .anthropic_server import Reply

_GENERIC = ("diagnosis", "management", "treatment", "therapy", "patients")
_FUNCTION = ("due", "of", "to", "with", "for", "in")


def model_slips(text: str, good: list[str]) -> list[str]:
    """Candidates a model proposes for `text` besides the good ones, as models do."""
    slips: list[str] = []
    for q in quantity_spans(text)[:1]:
        bare = re.search(r"\d+(?:\.\d+)?", q)
        if bare and bare.group(0) != q:
            slips.append(bare.group(0))  # "200" of "≥200 mg/dL"
    for _, (start, end) in paired_quantities(text)[:1]:
        slips.append(text[start:end])  # "11.1 mmol/L" of "≥200 mg/dL (11.1 mmol/L)"
    if good:
        first = good[0]
        slips.append(first.lower() if first[:1].isupper() else first[:1].upper() + first[1:])
        words = first.split()
        if len(words) >= 2:
            slips.append(" ".join(words[-2:]) if len(words) > 2 else words[-1])  # nested in `first`
        m = re.search(re.escape(good[-1]) + r" (\w+)", text)
        if m and m.group(1).lower() in _FUNCTION:
            slips.append(f"{good[-1]} {m.group(1)}")  # "bradycardia due"
    slips += [w for w in _GENERIC if re.search(rf"\b{w}\b", text)][:1]
    return slips


def answer_for(payload: dict[str, Any]) -> dict[str, Any]:
    """What a model following the v3 prompts would answer to one mksap request payload."""
    if "items" in payload:  # repair
        return {"items": [repair(i) for i in payload["items"]]}
    if "statements" in payload and "sentences" not in payload:  # cloze
        items = []
        for s in payload["statements"]:
            good = cloze_candidates(s["text"], s.get("terms", []))
            proposed = [*good[:1], *model_slips(s["text"], good), *good[1:]]  # the key term first, as models do
            items.append({"statement_id": s["id"], "cloze_candidates": proposed})
        return {"items": items}
    if payload.get("source") == "table":
        return {"statements": table_statements(payload)}
    return {"statements": source_statements(payload)}


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
