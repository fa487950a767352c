"""The offline provider: rule-based answers from the structured request context.

Needs no key and no network, so the tool does real work on a fresh machine. From a source
sentence it keeps the general facts: option and table references are removed, "Option C is
incorrect because <fact>" gives the fact, a clause about the case is cut away when the rest
stands on its own, and a sentence that is only about the case is dropped. Table rows become
"For <row>, the <column> is <cell>." statements with the caption as context. Cloze
candidates are the nlp stage's terms, best first. Its outputs are marked provider=offline.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from mksap.contracts.provider import LLMRequest, LLMResponse, Provider
from mksap.settings import Settings
from mksap_plugins.stages.cloze import candidate_range, select_candidates
from mksap_plugins.stages.wording import (
    OPTION_PARENTHESIS,
    PRONOUN_OPENING,
    TABLE_PARENTHESIS,
    case_wording,
)

MIN_WORDS = 6
_INCORRECT_BECAUSE = re.compile(r"^.{0,80}?\bis (?:incorrect|not correct|wrong)(?:,)? because (?P<fact>.+)$", re.I)
_DISCOURSE = re.compile(r"^(?:additionally|also|moreover|furthermore|in addition|however|therefore|thus),?\s+", re.I)
_AS_IN_CASE = re.compile(r",\s*as in this (?:patient|case),\s*")
_CASE_CLAUSE = re.compile(
    r",\s*(?:as in this (?:patient|case)|which (?:does not|doesn't|do not) (?:apply|fit)[^,;.]*"
    r"|none of which (?:is|are) present|which (?:he|she) does not have|and neither applies here)(?=[,;.]|$)",
    re.I,
)
_SPLIT_CLAUSES = re.compile(r",\s(?:and|but|so)\s(?=[A-Za-z])")
_GENERIC_HEADERS = {"comments", "comment", "notes", "note", "remarks", "details", "description", "value"}
_IMPERATIVE = re.compile(
    r"^(?:Add|Avoid|Titrate|Check|Measure|Start|Stop|Use|Give|Consider|Do|Repeat|Monitor|Obtain|Perform|Treat)\b"
)


def _sentence(text: str) -> str:
    text = _DISCOURSE.sub("", text.strip(" ,;"))
    if not text:
        return ""
    if "a" <= text[0] <= "z":  # never "Β-blockers" from "β-blockers"
        text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def _general(piece: str) -> bool:
    return len(piece.split()) >= MIN_WORDS and not case_wording(piece) and not PRONOUN_OPENING.match(piece)


def generalise(sentence: str) -> list[str]:
    """General statements from one source sentence: [] when it is only about the case."""
    text = TABLE_PARENTHESIS.sub("", OPTION_PARENTHESIS.sub("", sentence)).strip()
    if not text or text.endswith("?"):
        return []
    if m := _INCORRECT_BECAUSE.match(text):
        text = m.group("fact")
    text = _CASE_CLAUSE.sub("", _AS_IN_CASE.sub(" ", text))
    pieces = _top_level_split(text, "; ")
    if not all(len(p.split()) >= MIN_WORDS for p in pieces):
        pieces = [text]  # a semicolon list of short items, not independent clauses
    out: list[str] = []
    for piece in pieces:
        whole = _sentence(piece)
        if _general(whole):
            out.append(whole)
        elif case_wording(whole):
            out += [c for c in (_sentence(p) for p in _top_level_split(piece, _SPLIT_CLAUSES)) if _general(c)]
    return out


def _top_level_split(text: str, sep: str | re.Pattern[str]) -> list[str]:
    """`text` split at `sep`, but never inside parentheses."""
    pattern = sep if isinstance(sep, re.Pattern) else re.compile(re.escape(sep))
    pieces, start = [], 0
    for m in pattern.finditer(text):
        before = text[: m.start()]
        if before.count("(") == before.count(")"):
            pieces.append(text[start : m.start()].strip())
            start = m.end()
    pieces.append(text[start:].strip())
    return [p for p in pieces if p]


def _lower_first(text: str) -> str:
    """'Normal or high' -> 'normal or high'; 'ACE inhibitor', 'HFrEF', 'eGFR' stay as written."""
    first = text.split(" ", 1)[0]
    return text[0].lower() + text[1:] if first[:1].isupper() and first[1:].islower() else text


def _noun(header: str) -> str:
    parts = [p.strip() for p in header.split(" / ") if p.strip()]
    named = [p for p in parts if p.lower() not in _GENERIC_HEADERS]
    return " ".join(_lower_first(w) for w in (named[-1] if named else "").split())


def row_statement(subject: str, header: str, value: str) -> str:
    """One readable statement from a row subject, a column label and a cell paragraph."""
    is_sentence = value.rstrip().endswith(".") or _IMPERATIVE.match(value)
    value = value.rstrip(" .;")
    noun = _noun(header)
    if not noun or is_sentence:
        return f"{subject}: {value}."
    verb = "are" if noun.endswith("s") and not noun.endswith("ss") else "is"
    return f"For {_lower_first(subject)}, the {noun} {verb} {_lower_first(value)}."


def _cell_items(paragraphs: list[str]) -> list[str]:
    """A cell's paragraphs that state something: a heading ending in ':' is no statement, and
    the items under a heading that points at them ("one of the following:") need it: skipped."""
    items, under_deictic = [], False
    for p in paragraphs:
        if p.rstrip().endswith(":"):
            under_deictic = bool(case_wording(p))
        elif p and not under_deictic:
            items.append(p)
    return items


def table_statements(ctx: dict[str, Any]) -> list[dict[str, Any]]:
    """Statements from a table request: one per cell paragraph, read with its column label."""
    caption = ctx.get("caption") or None
    columns: list[str] = ctx.get("columns") or []
    first = _noun(columns[0]) if columns else ""
    drafts = []
    for row in ctx.get("rows", []):
        cells: list[str] = row.get("cells") or []
        paragraphs: list[list[str]] = row.get("paragraphs") or [[c] for c in cells]
        if len(cells) < 2 or not cells[0]:
            continue
        label = cells[0].rstrip(":")
        subject = f"{first} {label}" if first and len(label.split()) == 1 and len(label) <= 4 else label
        if row.get("group"):
            subject = f"{row['group'].rstrip(':')}, {subject}"
        for j, parts in enumerate(paragraphs[1:], start=1):
            header = columns[j] if j < len(columns) else ""
            for value in _cell_items(parts):
                if value != label:
                    text = row_statement(subject, header, value)
                    drafts.append({"statement": text, "extra_field": caption, "source_index": row["index"]})
    for note in ctx.get("footnotes", []):
        text = str(note.get("text", ""))
        body = re.sub(r"^[a-z*†‡§¶#]: ", "", text)
        if body != text or " = " not in body:  # a marked note teaches; a legend only defines
            for s in generalise(body):
                drafts.append({"statement": s, "extra_field": caption, "source_index": note["index"]})
    return drafts


def cloze_candidates(statement: str, terms: list[str]) -> list[str]:
    """Two candidates (three in a statement of 20 words or more) from the ranked terms."""
    low, high = candidate_range(statement)
    want = min(high, 3 if len(statement.split()) >= 20 else 2)
    return select_candidates(statement, terms, want)


def repair(item: dict[str, Any]) -> dict[str, Any]:
    """What rules can fix: option/table references and case clauses; otherwise unchanged."""
    pieces = generalise(item["statement"])
    text = pieces[0] if pieces else item["statement"]
    kept = [c for c in item.get("cloze_candidates", []) if c in text]
    return {"statement_id": item["statement_id"], "statement": text, "cloze_candidates": kept}


class OfflineProvider(Provider):
    """Rule-based extraction on the nlp stage's output; no key, no network."""

    name = "offline"
    local: ClassVar[bool] = True

    @property
    def model(self) -> str:
        return "rules-2"

    @classmethod
    def health(cls, settings: Settings) -> list[str]:
        return ["ok: usable (no key, no network)"]

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
        else:
            data = {"items": [repair(item) for item in ctx.get("items", [])]}
        return LLMResponse(
            data=data, raw_text=json.dumps(data, ensure_ascii=False), provider=self.name, model=self.model
        )
