"""The exporter contract: the `Exporter` plugin base class and the statements it reads.

Nothing here runs doit: an exporter plugin imports only this module (and `mksap.atomic` to
write its file). How an export runs as a doit task is `mksap.export.run`'s business.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from mksap.contracts.errors import ExportError
from mksap.contracts.statements import Finding, SourceKind


class ExportStatement(BaseModel):
    """One statement of a built question, with what every exporter needs beside it."""

    question_id: str
    system: str
    statement_id: str
    source: SourceKind
    table_source: str | None = None
    statement: str
    extra_field: str | None = None
    cloze_candidates: list[str]
    findings: list[Finding]
    flagged: bool  # rejected by validation, or carrying an error finding

    @property
    def stable_id(self) -> str:
        """`<qid>/<statement id>`: the statement's identity across rebuilds (not its text)."""
        return f"{self.question_id}/{self.statement_id}"


class ExportQuestion(BaseModel):
    """A built question as exporters see it: its statements in output order, rejected last."""

    question_id: str
    system: str
    category_name: str | None = None
    objective: str | None = None
    provider: str | None = None
    model: str | None = None
    statements: list[ExportStatement]


class ExportOptions(BaseModel):
    """Options every exporter takes; an exporter subclasses this for its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    include_flagged: bool = False


class ExportWritten(BaseModel):
    """What an exporter wrote: items (notes, lines, statements) and what it left out, by reason.

    `notes` maps each note GUID to its statement's stable id when the file holds Anki notes;
    the core keeps it beside the file to report notes that disappeared since the last export.
    """

    items: int
    skipped: dict[str, int] = {}
    notes: dict[str, str] | None = None


OptionsT = TypeVar("OptionsT", bound=ExportOptions)


class Exporter(ABC, Generic[OptionsT]):
    """Base class of exporter plugins.

    Class attributes:
      name           unique exporter name (`mksap export <name>`), also in the doit task name
      version        bump when the output format changes: every export file is rewritten
      suffix         default file suffix, e.g. ".apkg"
      options_model  the pydantic model of this exporter's options
    """

    name: ClassVar[str]
    version: ClassVar[str]
    suffix: ClassVar[str]
    options_model: ClassVar[type[ExportOptions]] = ExportOptions

    @abstractmethod
    def export(
        self, questions: list[ExportQuestion], options: OptionsT, path: Path
    ) -> ExportWritten:
        """Write `path` atomically (`mksap.atomic.write_bytes`, or a temporary file in the same
        folder then `os.replace`) from the built questions. Raise `ExportError` when the data
        cannot be exported; an `OSError` while writing is reported as an unwritable path."""


def selected(question: ExportQuestion, options: ExportOptions) -> tuple[list[ExportStatement], int]:
    """The statements to export and how many flagged ones were left out."""
    keep = [s for s in question.statements if options.include_flagged or not s.flagged]
    return keep, len(question.statements) - len(keep)


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


def _kind(raw: dict[str, Any]) -> SourceKind:
    sid = str(raw.get("id", ""))
    if raw.get("table_source") or sid.startswith("t:"):
        return "table"
    return "key_point" if sid.startswith("k") else "critique"


def load_question(path: Path, system: str) -> ExportQuestion:
    """Read one output question file into the exporters' model."""
    try:
        doc = json.loads(path.read_bytes())
        ts = doc["true_statements"]
        groups: list[tuple[list[dict[str, Any]], bool]] = [
            (ts.get("from_critique", []), False),
            (ts.get("from_key_points", []), False),
            ((doc.get("table_statements") or {}).get("statements", []), False),
            (doc.get("rejected_statements") or [], True),
        ]
        qid = doc.get("question_id") or path.stem
        statements = [
            ExportStatement(
                question_id=qid,
                system=system,
                statement_id=raw["id"],
                source=_kind(raw),
                table_source=raw.get("table_source"),
                statement=raw["statement"],
                extra_field=raw.get("extra_field"),
                cloze_candidates=raw.get("cloze_candidates") or [],
                findings=raw.get("findings") or [],
                flagged=rejected
                or any(f.get("severity") == "error" for f in raw.get("findings") or []),
            )
            for raw_list, rejected in groups
            for raw in raw_list
        ]
        provenance = (doc.get("mksap") or {}).get("provenance") or {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError, ValidationError) as e:
        detail = f"{type(e).__name__}: {e}".splitlines()[0][:200]
        raise ExportError(
            f"{path}: not a built question ({detail}); run: mksap run {path.stem} --force"
        ) from None
    return ExportQuestion(
        question_id=qid,
        system=system,
        category_name=doc.get("category_name"),
        objective=doc.get("educational_objective"),
        provider=provenance.get("provider"),
        model=provenance.get("model"),
        statements=statements,
    )
