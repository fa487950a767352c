"""Statements: the unit everything else is about, and the shapes the models answer in."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, Field

SourceKind = Literal["critique", "key_point", "table"]
Severity = Literal["error", "warning"]


class Finding(BaseModel):
    """One validation finding on one statement."""

    code: str
    severity: Severity
    message: str


class Statement(BaseModel):
    """A flashcard statement. The first three fields are the earlier tool's schema."""

    statement: str
    extra_field: str | None = None
    cloze_candidates: list[str] = Field(default_factory=list)
    id: str = Field(
        description="stable identity within the question, anchored in the source unit's content, never its "
        "position: kind prefix + 8 hex of the unit's normalised text + the statement's index within the unit "
        "(`c:1a2b3c4d.1`, `k:…`, `t:<table stem>:…`); kept when other units move and when the unit is lightly edited"
    )
    source: SourceKind
    table_source: str | None = None
    findings: list[Finding] = Field(default_factory=list)
    source_index: int | None = Field(
        None,
        description="where the source unit sits in this build (a table: rows, then footnotes): locates it, never "
        "identifies it; kept in build artifacts, not written to the output file",
    )


class StatementDraft(BaseModel):
    """What an extraction answer holds for one statement."""

    statement: str = Field(description="one atomic, general, self-contained fact from the source")
    extra_field: str | None = Field(None, description="context the source gives, or null")
    source_index: int = Field(description="index of the source sentence or table row it comes from")


class StatementDrafts(BaseModel):
    """The answer of an extraction request."""

    statements: list[StatementDraft]


class ClozeChoice(BaseModel):
    statement_id: str
    cloze_candidates: list[str] = Field(description="2-5 verbatim substrings of the statement")


class ClozeAnswer(BaseModel):
    """The answer of a cloze request."""

    items: list[ClozeChoice]


def candidate_spans(text: str, candidates: Iterable[str]) -> list[tuple[int, int, int]]:
    """(start, end, candidate index) of each candidate's first occurrence not overlapping a
    longer one, placed longest first, in text order. A candidate with no free occurrence is left
    out (it is usually inside a longer candidate)."""
    spans: list[tuple[int, int, int]] = []
    indexed = sorted(enumerate(candidates), key=lambda ic: (-len(ic[1]), ic[0]))
    for index, cand in indexed:
        start = text.find(cand) if cand else -1
        while start >= 0 and any(start < e and s < start + len(cand) for s, e, _ in spans):
            start = text.find(cand, start + 1)
        if start >= 0:
            spans.append((start, start + len(cand), index))
    return sorted(spans)


def aligned_starts(text: str, cand: str) -> list[int]:
    """Starts of the occurrences of `cand` in `text` that do not cut a word."""
    starts, start = [], text.find(cand) if cand else -1
    while start >= 0:
        end = start + len(cand)
        before = text[start - 1] if start else " "
        after = text[end] if end < len(text) else " "
        if not ((before.isalnum() and cand[0].isalnum()) or (after.isalnum() and cand[-1].isalnum())):
            starts.append(start)
        start = text.find(cand, start + 1)
    return starts
