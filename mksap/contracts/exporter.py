"""The exporter contract: the `Exporter` plugin base class and the statements it reads.

Nothing here runs doit: an exporter plugin imports only this module (and `mksap.atomic` to
write its file). How an export runs as a doit task is `mksap.export.run`'s business.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
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
    guid: str | None = Field(
        None,
        description="the note GUID an earlier export of the same file gave this statement (set by the core "
        "from `<file>.guids.json`); an exporter writing notes uses it instead of deriving one",
    )

    decision: StatementDecision | None = Field(
        None, description="the stored triage decision on this statement (set by the core), if any"
    )

    @property
    def stable_id(self) -> str:
        """`<qid>/<statement id>`: the statement's identity across rebuilds (not its text)."""
        return f"{self.question_id}/{self.statement_id}"

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
    def from_document(cls, doc: OutputDocument, system: str) -> ExportQuestion:
        """The exporters' view of one built question."""
        qid = doc.question_id
        statements = [
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
            )
            for s, rejected in doc.statements()
        ]
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
