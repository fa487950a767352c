"""The output question file: the one model that reads and writes it.

On disk it is the input question with every original field untouched (same order, same
values) plus four top-level keys that mksap owns (`OUTPUT_KEYS`). The statement records keep
the earlier tool's fields first (`statement`, `extra_field`, `cloze_candidates`), so downstream
scripts keep working; `table_source` appears only on table statements, as it always has.

Everything that reads or writes this file goes through `OutputDocument`: the assemble stage
builds one, the engine writes its `model_dump()`, and `show`, `validate`, the exporters and the
build's file checker read it back with `OutputDocument.read` / `source_document`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_serializer, model_validator

from mksap.contracts.errors import InputError
from mksap.contracts.statements import SourceKind, Statement

#: Top-level fields mksap adds to a question; everything else belongs to the source.
OUTPUT_KEYS = ("true_statements", "table_statements", "rejected_statements", "mksap")
#: The earlier tool's statement fields, written first.
LEGACY_FIELDS = ("statement", "extra_field", "cloze_candidates")


class NotBuiltError(InputError):
    """An output file is missing, or holds no statements (it was never built)."""


def source_document(doc: dict[str, Any]) -> dict[str, Any]:
    """The question as the extractor wrote it: without mksap's output fields."""
    return {k: v for k, v in doc.items() if k not in OUTPUT_KEYS}


def holds_output(path: Path) -> bool:
    """Whether a question file holds mksap's output (cheap: no JSON parse; it runs for every
    question on in-place up-to-date checks)."""
    try:
        return b'"true_statements"' in path.read_bytes()
    except OSError:
        return False


def statement_record(s: Statement) -> dict[str, Any]:
    """One statement as the file stores it: legacy fields first, then what mksap adds."""
    record: dict[str, Any] = {k: getattr(s, k) for k in LEGACY_FIELDS}
    if s.source == "table" or s.table_source is not None:
        record["table_source"] = s.table_source
    record["id"] = s.id
    record["source"] = s.source
    record["findings"] = [f.model_dump(mode="json") for f in s.findings]
    return record


class TrueStatements(BaseModel):
    from_critique: list[Statement] = Field(default_factory=list)
    from_key_points: list[Statement] = Field(default_factory=list)


class TableStatements(BaseModel):
    statements: list[Statement] = Field(default_factory=list)
    tables_processed: int = 0
    tables_skipped: int = 0


class Provenance(BaseModel):
    """What produced the statements: tool, provider, model, stage and prompt versions, time."""

    model_config = ConfigDict(extra="allow")

    tool: str | None = None
    provider: str | None = None
    model: str | None = None
    stages: dict[str, str] = Field(default_factory=dict)
    prompts: dict[str, str | None] = Field(default_factory=dict)
    nlp: str | None = None
    built_at: str | None = None


class Validation(BaseModel):
    """The validate stage's record for the question."""

    model_config = ConfigDict(extra="allow")

    accepted: int = 0
    rejected: int = 0
    repair_attempted: int = 0
    repaired: int = 0
    repaired_ids: list[str] = Field(default_factory=list)
    repair_failed_ids: list[str] = Field(default_factory=list)
    findings_by_code: dict[str, int] = Field(default_factory=dict)
    lab_panels_skipped: list[str] = Field(default_factory=list)
    clinical_tables: list[str] = Field(default_factory=list)


class MksapRecord(BaseModel):
    """The `mksap` block: provenance and validation."""

    model_config = ConfigDict(extra="allow")

    provenance: Provenance = Field(default_factory=Provenance)
    validation: Validation = Field(default_factory=Validation)


# Where each statement list lives, and the source kind its statements come from. A file
# written before statements carried `source` gets it from the list (rejected ones from their
# table_source / id, the only trace those files kept).
def _fill_kinds(doc: dict[str, Any]) -> None:
    def fill(items: Any, kind: SourceKind | None, prefix: str) -> None:
        for n, item in enumerate(items if isinstance(items, list) else []):
            if not isinstance(item, dict):
                continue
            if "source" not in item:
                item["source"] = kind or _legacy_kind(item)
            item.setdefault("id", f"{prefix}{n:02d}")  # the earlier tool wrote no ids

    ts = doc.get("true_statements")
    if isinstance(ts, dict):
        fill(ts.get("from_critique"), "critique", "c")
        fill(ts.get("from_key_points"), "key_point", "k")
    tables = doc.get("table_statements")
    if isinstance(tables, dict):
        fill(tables.get("statements"), "table", "t")
    fill(doc.get("rejected_statements"), None, "r")


def _legacy_kind(item: dict[str, Any]) -> SourceKind:
    sid = str(item.get("id", ""))
    if item.get("table_source") or sid.startswith("t:"):
        return "table"
    return "key_point" if sid.startswith("k") else "critique"


class OutputDocument(BaseModel):
    """An output question file. `source` holds every original field, untouched and in order."""

    source: dict[str, Any]
    true_statements: TrueStatements = Field(default_factory=TrueStatements)
    table_statements: TableStatements = Field(default_factory=TableStatements)
    rejected_statements: list[Statement] = Field(default_factory=list)
    mksap: MksapRecord = Field(default_factory=MksapRecord)

    @model_validator(mode="before")
    @classmethod
    def _from_file_shape(cls, data: Any) -> Any:
        """Accept the file's flat shape: source fields beside mksap's own keys."""
        if not isinstance(data, dict) or "source" in data and set(data) <= {"source", *OUTPUT_KEYS}:
            return data
        if "true_statements" not in data:
            raise ValueError("no true_statements: this question was never built")
        doc = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
        for key in ("true_statements", "table_statements"):
            if isinstance(doc.get(key), dict):
                doc[key] = {k: _copied(v) for k, v in doc[key].items()}
        doc["rejected_statements"] = _copied(doc.get("rejected_statements") or [])
        _fill_kinds(doc)
        return {"source": source_document(doc), **{k: doc[k] for k in OUTPUT_KEYS if doc.get(k) is not None}}

    @model_serializer(mode="plain")
    def _to_file_shape(self) -> dict[str, Any]:
        return {
            **self.source,
            "true_statements": {
                "from_critique": [statement_record(s) for s in self.true_statements.from_critique],
                "from_key_points": [statement_record(s) for s in self.true_statements.from_key_points],
            },
            "table_statements": {
                "statements": [statement_record(s) for s in self.table_statements.statements],
                "tables_processed": self.table_statements.tables_processed,
                "tables_skipped": self.table_statements.tables_skipped,
            },
            "rejected_statements": [statement_record(s) for s in self.rejected_statements],
            "mksap": self.mksap.model_dump(mode="json"),
        }

    @classmethod
    def read(cls, path: Path) -> OutputDocument:
        """The built question at `path`; `NotBuiltError` when it is missing, holds no
        statements, or is not a question file mksap wrote."""
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise NotBuiltError(f"{path} is missing") from None
        except OSError as e:
            raise NotBuiltError(f"{path} cannot be read ({e.strerror})") from None
        try:
            return cls.model_validate_json(raw)
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(x) for x in err["loc"])
            detail = err["msg"].removeprefix("Value error, ")
            at = f"{where}: " if where else ""
            raise NotBuiltError(f"{path} holds no usable statements ({at}{detail})") from None

    @property
    def question_id(self) -> str:
        return str(self.source.get("question_id", ""))

    def output_fields(self) -> dict[str, Any]:
        """The question id and mksap's own fields, as the file holds them (`show --json`)."""
        flat = self.model_dump(mode="json")
        return {"question_id": self.question_id, **{k: flat[k] for k in OUTPUT_KEYS}}

    def statements(self) -> Iterator[tuple[Statement, bool]]:
        """Every statement in output order, with whether validation rejected it (rejected last)."""
        for s in (*self.true_statements.from_critique, *self.true_statements.from_key_points):
            yield s, False
        for s in self.table_statements.statements:
            yield s, False
        for s in self.rejected_statements:
            yield s, True


def _copied(value: Any) -> Any:
    """A list of statement records copied one level deep (validation fills in missing keys)."""
    if isinstance(value, list):
        return [dict(item) if isinstance(item, dict) else item for item in value]
    return value
