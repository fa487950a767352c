"""parse: question JSON + tables -> cleaned, structured source (no LLM)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from mksap.bank import QUESTION_ID, SYSTEMS
from mksap.contracts.errors import InputError
from mksap.contracts.output import source_document
from mksap.contracts.stage import Stage, StageJob
from mksap_plugins.stages.html_tables import ParsedTable, parse_table
from mksap_plugins.stages.sentences import split_sentences, strip_html


class ParsedQuestion(BaseModel):
    """The parse artifact."""

    qid: str
    system: str
    document: dict[str, Any] = Field(description="the source JSON minus mksap's output fields")
    objective: str
    critique: list[str] = Field(description="critique sentences, glued paragraphs repaired")
    key_points: list[str]
    tables: list[ParsedTable] = Field(description="clinical tables (they yield statements)")
    skipped_tables: list[str] = Field(description="lab panels: no teaching content")


def read_question(path: Path) -> dict[str, Any]:
    """The question JSON, or an InputError naming the file and what is wrong with it."""
    if not path.is_file():
        raise InputError(f"{path}: missing (expected <data>/<system>/<qid>/<qid>.json)")
    raw = path.read_bytes()
    if not raw.strip():
        raise InputError(f"{path}: empty file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 (byte {e.start}); re-export it as UTF-8") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    if not isinstance(doc, dict):
        raise InputError(f"{path}: expected a JSON object, found {type(doc).__name__}")
    return doc


def _table_files(doc: dict[str, Any], folder: Path, path: Path) -> list[tuple[str, Path, dict[str, Any]]]:
    media = doc.get("media") or {}
    listed = media.get("tables") or [] if isinstance(media, dict) else []
    meta = {
        str(m.get("file")): m
        for m in ((doc.get("media_metadata") or {}).get("tables") or [])
        if isinstance(m, dict)
    }
    files = []
    root = folder.resolve()
    for rel in listed:
        if not isinstance(rel, str):
            raise InputError(f"{path}: media.tables holds a non-string entry {rel!r}")
        target = (folder / rel).resolve()
        if not target.is_relative_to(root):
            raise InputError(f"{path}: media path '{rel}' points outside the question folder; refused")
        if not target.is_file():
            raise InputError(f"{path}: table '{rel}' is listed in media but missing")
        files.append((rel, target, meta.get(rel, {})))
    return files


class ParseStage(Stage):
    """Read and clean a question: sentences, key points, clinical tables, lab panels skipped."""

    name = "parse"
    version = "2"
    reads_source = True

    def run(self, job: StageJob) -> ParsedQuestion:
        q = job.question
        path = q.json_path
        if q.system not in SYSTEMS:
            raise InputError(f"{path}: folder '{q.system}' is not a system code (valid: {' '.join(SYSTEMS)})")
        doc = read_question(path)
        qid = doc.get("question_id")
        if qid != q.qid:
            raise InputError(f"{path}: question_id {qid!r} does not match its folder '{q.qid}'")
        if not QUESTION_ID.match(q.qid):
            raise InputError(f"{path}: '{q.qid}' is not a question id like cvmcq24001")
        critique = doc.get("critique")
        if not isinstance(critique, str) or not critique.strip():
            raise InputError(f"{path}: missing or empty 'critique'")
        key_points = doc.get("key_points") or []
        if not isinstance(key_points, list) or not all(isinstance(k, str) for k in key_points):
            raise InputError(f"{path}: 'key_points' must be a list of strings")

        tables: list[ParsedTable] = []
        skipped: list[str] = []
        for rel, file, meta in _table_files(doc, q.folder, path):
            try:
                markup = file.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                raise InputError(f"{file}: not UTF-8") from None
            notes = [str(n) for n in meta.get("footnotes") or []]
            table = parse_table(markup, Path(rel).name, notes, titled=bool(meta.get("title")))
            if not table.caption and meta.get("title"):
                table = table.model_copy(update={"caption": strip_html(str(meta["title"]))})
            if table.kind == "lab-panel":
                skipped.append(table.file)
            else:
                tables.append(table)

        return ParsedQuestion(
            qid=q.qid,
            system=q.system,
            document=source_document(doc),
            objective=strip_html(str(doc.get("educational_objective") or "")),
            critique=split_sentences(critique),
            key_points=[strip_html(k) for k in key_points if k.strip()],
            tables=tables,
            skipped_tables=skipped,
        )
