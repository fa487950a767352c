"""Statements: the unit everything else is about, and the shapes the models answer in."""

from __future__ import annotations

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
    id: str = Field(description="stable identity within the question: source kind + source position")
    source: SourceKind
    table_source: str | None = None
    findings: list[Finding] = Field(default_factory=list)


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
