"""The exporter contract: the `Exporter` plugin base class and the statements it reads.

Nothing here runs doit: an exporter plugin imports only this module (and `mksap.atomic` to
write its file). How an export runs as a doit task is `mksap.export.run`'s business.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, Field

from mksap.contracts.output import OutputDocument
from mksap.contracts.statements import Finding, SourceKind
from mksap.settings import PluginOptions


def text_digest(text: str) -> str:
    """16 hex digits of a digest of `text`, case and spacing aside."""
    return hashlib.sha256(" ".join(text.split()).casefold().encode()).hexdigest()[:16]


class StatementDecision(BaseModel):
    """A reader's triage decision on a statement (`mksap decisions import`), as exporters see it."""

    action: Literal["accept", "reject", "edit"]
    text: str | None = None  # the edited statement (action "edit")
    at: str | None = None
    current: bool = Field(
        description="the statement is still the one decided on; False: it was rebuilt from a changed source "
        "since, the decision needs a new look and is not applied"
    )


class StatementCopy(BaseModel):
    """Another question's copy of a statement of a shared table, written as the same note."""

    question_id: str
    system: str
    statement_id: str
    guid: str | None = Field(None, description="the GUID the previous export of the file gave this copy's note")

    @property
    def stable_id(self) -> str:
        return f"{self.question_id}/{self.statement_id}"


def shared_table_key(table_digest: str, statement_id: str, table_source: str | None, text: str) -> str:
    """What makes two table statements one: the table's content, the row unit and index the
    statement comes from (its id without the `t:<table stem>:` prefix, so the file name does
    not count) and its text. Never the question."""
    stem = (table_source or "").removesuffix(".html")
    unit = statement_id.removeprefix(f"t:{stem}:")
    return f"{table_digest}:{unit}:{text_digest(text)}"


class ExportStatement(BaseModel):
    """One statement of a built question, with what every exporter needs beside it.

    A statement of a table copied into several questions comes once per export: the core
    merges the copies (`mksap.export.shared`) into the one that keeps its note, and lists the
    others in `copies`; an exporter writes it once, for every question in `question_ids`."""

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
    guid: str | None = Field(
        None,
        description="the note GUID an earlier export of the same file gave this statement (set by the core "
        "from `<file>.guids.json`); an exporter writing notes uses it instead of deriving one",
    )

    decision: StatementDecision | None = Field(
        None, description="the stored triage decision on this statement (set by the core), if any"
    )
    share_key: str | None = Field(
        None,
        description="set on table statements by the core (`shared_table_key()`): statements of several questions "
        "with the same key are copies of one statement of one table",
    )
    copies: list[StatementCopy] = Field(
        default_factory=list,
        description="the other questions' copies of this statement, merged into it by the core: one note",
    )

    @property
    def stable_id(self) -> str:
        """`<qid>/<statement id>`: the statement's identity across rebuilds (not its text)."""
        return f"{self.question_id}/{self.statement_id}"

    @property
    def question_ids(self) -> list[str]:
        """Every question this statement is written for (more than one: a shared table's), sorted."""
        return sorted({self.question_id, *(c.question_id for c in self.copies)})

    @property
    def systems(self) -> list[str]:
        """The systems of `question_ids`, sorted."""
        return sorted({self.system, *(c.system for c in self.copies)})

    @property
    def source_digest(self) -> str:
        """A digest of the statement as built from its source unit: a decision keeps the one it was
        made on, and a rebuild from a changed source (a new text) no longer matches it."""
        return text_digest(self.statement)


class ExportQuestion(BaseModel):
    """A built question as exporters see it: its statements in output order, rejected last."""

    question_id: str
    system: str
    category_name: str | None = None
    objective: str | None = None
    provider: str | None = None
    model: str | None = None
    statements: list[ExportStatement]

    @classmethod
    def from_document(cls, doc: OutputDocument, system: str, tables: Mapping[str, str] | None = None) -> ExportQuestion:
        """The exporters' view of one built question. `tables` maps the file name of each of
        its tables to a digest of the file's content (`mksap.export.shared.table_digests`):
        its table statements then get their `share_key`."""
        qid = doc.question_id
        tables = tables or {}
        statements = []
        for s, rejected in doc.statements():
            digest = tables.get(s.table_source or "") if s.source == "table" else None
            statements.append(
                ExportStatement(
                    question_id=qid,
                    system=system,
                    statement_id=s.id,
                    source=s.source,
                    table_source=s.table_source,
                    statement=s.statement,
                    extra_field=s.extra_field,
                    cloze_candidates=s.cloze_candidates,
                    findings=s.findings,
                    flagged=rejected or any(f.severity == "error" for f in s.findings),
                    share_key=shared_table_key(digest, s.id, s.table_source, s.statement) if digest else None,
                )
            )
        provenance = doc.mksap.provenance
        return cls(
            question_id=qid,
            system=system,
            category_name=doc.source.get("category_name"),
            objective=doc.source.get("educational_objective"),
            provider=provenance.provider,
            model=provenance.model,
            statements=statements,
        )


class ExportOptions(PluginOptions):
    """Options every exporter takes; an exporter subclasses this for its own.

    Each field becomes an option of `mksap export <name>` (`--include-flagged`, its
    description the help text) and can be given a default in `[plugins.<name>]` of the config.
    """

    include_flagged: bool = Field(False, description="keep statements flagged by validation (tagged as flagged)")


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
      default_file   the file written when no -o is given (default: mksap<suffix>)
      unit           what one written item is, for the report ("notes", "lines")
      options_model  the pydantic model of this exporter's options
      reviews        see below: whether the exporter sees the triage decisions or their result

    Instance attribute:
      state_dir      a folder of the build state (`<cache_dir>/build/exports/<name>/`) where the
                     exporter may keep files between exports (create it when writing there),
                     set by the core before `export` runs; None outside a build. An exporter
                     that keeps nothing ignores it.
    """

    name: ClassVar[str]
    version: ClassVar[str]
    suffix: ClassVar[str]
    default_file: ClassVar[str | None] = None
    unit: ClassVar[str] = "statements"
    options_model: ClassVar[type[ExportOptions]] = ExportOptions
    state_dir: Path | None = None
    #: True: `export` gets every statement as built, each with its `decision` (a review tool);
    #: False: the core applies the decisions first (rejected statements removed, edits applied).
    reviews: ClassVar[bool] = False

    @classmethod
    def default_path(cls) -> Path:
        return Path(cls.default_file or f"mksap{cls.suffix}")

    @abstractmethod
    def export(self, questions: list[ExportQuestion], options: OptionsT, path: Path) -> ExportWritten:
        """Write `path` atomically (`mksap.atomic.write_bytes`, or a temporary file in the same
        folder then `os.replace`) from the built questions. Raise `ExportError` when the data
        cannot be exported; an `OSError` while writing is reported as an unwritable path."""

    @classmethod
    def search(cls, stable_ids: list[str]) -> str | None:
        """An Anki search (the browser's search box) that finds the notes of these statements
        as this exporter wrote them, to tell the user where notes it no longer writes are (the
        copies of a shared table merged into one note). The default knows none."""
        return None

    def read_notes(self, path: Path) -> dict[str, str]:
        """GUID -> statement text (plain, as built) of the notes in a file this exporter wrote
        at `path` earlier. The core asks only when that file's `<file>.guids.json` does not keep
        the statements' text (an export of an earlier mksap, with positional statement ids), to
        hand those GUIDs on to the same statements; an exporter of notes may implement it. The
        default knows none: such GUIDs are then reported as gone."""
        return {}


def selected(question: ExportQuestion, options: ExportOptions) -> tuple[list[ExportStatement], int]:
    """The statements to export and how many flagged ones were left out."""
    keep = [s for s in question.statements if options.include_flagged or not s.flagged]
    return keep, len(question.statements) - len(keep)
