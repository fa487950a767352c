"""The offline provider: rule-based answers from the structured request context.

Needs no key and no network, so the tool does real work on a fresh machine. It keeps source
sentences that state general facts (dropping case-specific ones), splits joined clauses, and
picks cloze candidates from the nlp stage's terms. Its outputs are marked provider=offline.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from mksap.provider import LLMRequest, LLMResponse, Provider

_OPTION_REF = re.compile(r"\s*\((?:Options?|Answers?) [A-E](?:(?:,| and| or) [A-E])*\)")
_CASE = re.compile(
    r"\b(this|the) (patient|woman|man|case)\b|\b(she|he|her|his|him)\b|\d+-year-old|\bOption [A-E]\b|"
    r"\b(in|for) this\b|\bcorrect answer\b|\bincorrect\b|\bmost appropriate\b",
    re.I,
)
_OPENING = re.compile(r"^(this|these|those|it|they|such|both|that|however|therefore|thus)\b", re.I)
MIN_WORDS = 6


def generalise(sentence: str) -> list[str]:
    """General statements from one source sentence: [] when it is about the case."""
    text = _OPTION_REF.sub("", sentence).strip()
    if _CASE.search(text) or _OPENING.match(text) or text.endswith("?"):
        return []
    parts = [p.strip() for p in text.split("; ")]
    if len(parts) > 1 and all(len(p.split()) >= MIN_WORDS for p in parts):
        out = [p[0].upper() + p[1:] for p in parts]
    else:
        out = [text]
    return [s if s.endswith(".") else s + "." for s in out if len(s.split()) >= MIN_WORDS]


def table_statements(ctx: dict[str, Any]) -> list[dict[str, Any]]:
    caption = ctx.get("caption") or None
    columns: list[str] = ctx.get("columns") or []
    drafts = []
    for row in ctx.get("rows", []):
        cells = row["cells"]
        if not cells or not cells[0]:
            continue
        label = cells[0]
        for j, value in enumerate(cells[1:], start=1):
            if not value or value == label:
                continue
            header = columns[j] if j < len(columns) else ""
            text = f"{label} ({header}): {value}" if header else f"{label}: {value}"
            drafts.append({"statement": text, "extra_field": caption, "source_index": row["index"]})
    return drafts


def cloze_candidates(statement: str, terms: list[str]) -> list[str]:
    """Up to 3 terms (2 for short statements): abbreviations and numbers first, then phrases."""
    limit = 2 if len(statement.split()) <= 12 else 3
    ranked = sorted(
        dict.fromkeys(t for t in terms if t in statement and t.rstrip(".") != statement.rstrip(".")),
        key=lambda t: (not t.endswith(")"), not any(c.isdigit() for c in t), -len(t)),
    )
    chosen: list[str] = []
    spans: list[tuple[int, int]] = []
    for term in ranked:
        start = statement.find(term)
        end = start + len(term)
        if any(start < e and s < end for s, e in spans):
            continue
        chosen.append(term)
        spans.append((start, end))
        if len(chosen) == limit:
            break
    return chosen


class OfflineProvider(Provider):
    """Rule-based extraction on the nlp stage's output; no key, no network."""

    name = "offline"
    local: ClassVar[bool] = True

    @property
    def model(self) -> str:
        return "rules-1"

    async def complete(self, request: LLMRequest) -> LLMResponse:
        ctx = request.context
        if request.task == "statements":
            if ctx.get("source") == "table":
                data: dict[str, Any] = {"statements": table_statements(ctx)}
            else:
                data = {
                    "statements": [
                        {"statement": s, "extra_field": None, "source_index": sent["index"]}
                        for sent in ctx.get("sentences", [])
                        for s in generalise(sent["text"])
                    ]
                }
        elif request.task == "cloze":
            data = {
                "items": [
                    {"statement_id": s["id"], "cloze_candidates": cloze_candidates(s["text"], s.get("terms", []))}
                    for s in ctx.get("statements", [])
                ]
            }
        else:  # repair: drop option references; what cannot be fixed by rules stays as it is
            data = {"items": [self._repair(item) for item in ctx.get("items", [])]}
        return LLMResponse(
            data=data, raw_text=json.dumps(data, ensure_ascii=False), provider=self.name, model=self.model
        )

    @staticmethod
    def _repair(item: dict[str, Any]) -> dict[str, Any]:
        text = _OPTION_REF.sub("", item["statement"]).strip()
        kept = [c for c in item.get("cloze_candidates", []) if c in text]
        return {"statement_id": item["statement_id"], "statement": text, "cloze_candidates": kept}
