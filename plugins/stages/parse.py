"""parse: question JSON + tables -> cleaned, structured source (no LLM)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from mksap.bank import QUESTION_ID, SYSTEMS
from mksap.contracts.errors import InputError, LimitError
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


@dataclass(frozen=True)
class InputLimits:
    """The per-question input limits (the `max_*` settings), checked before anything is built
    from the input, so a hostile file costs bounded memory and time."""

    question_bytes: int = 2_000_000
    critique_chars: int = 200_000
    table_bytes: int = 1_000_000
    table_cells: int = 20_000
    nesting: int = 100

    @classmethod
    def of(cls, settings: Any) -> InputLimits:
        return cls(
            question_bytes=settings.max_question_bytes,
            critique_chars=settings.max_critique_chars,
            table_bytes=settings.max_table_bytes,
            table_cells=settings.max_table_cells,
            nesting=settings.max_nesting,
        )


def _not_finite(name: str) -> float:
    raise ValueError(name)


def _depth(value: Any, limit: int) -> int:
    """How deeply arrays and objects nest in `value` (iteratively: no recursion to exhaust),
    stopping once past `limit`."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


def read_question(path: Path, limits: InputLimits | None = None) -> dict[str, Any]:
    """The question JSON, or an InputError naming the file and what is wrong with it."""
    limits = limits or InputLimits()
    if not path.is_file():
        if os.path.lexists(path):
            raise InputError(f"{path}: not a readable file (a broken or looping link?)")
        raise InputError(f"{path}: missing (expected <data>/<system>/<qid>/<qid>.json)")
    size = path.stat().st_size
    if size > limits.question_bytes:
        raise LimitError(f"{path}", f"{size:,} bytes", "max_question_bytes", limits.question_bytes)
    with path.open("rb") as f:
        raw = f.read(limits.question_bytes + 1)  # it may have grown since the stat
    if len(raw) > limits.question_bytes:
        raise LimitError(
            f"{path}", f"over {limits.question_bytes:,} bytes", "max_question_bytes", limits.question_bytes
        )
    if not raw.strip():
        raise InputError(f"{path}: empty file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 (byte {e.start}); re-export it as UTF-8") from None
    try:
        doc = json.loads(text, parse_constant=_not_finite)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except ValueError as e:  # NaN, Infinity, -Infinity: not JSON, and not writable back as JSON
        raise InputError(f"{path}: holds the number {e}, which JSON does not allow; write null or a number") from None
    except RecursionError:  # deeper than the parser can go: no limit raised would help
        raise InputError(
            f"{path}: nested too deeply to read (far more than the max_nesting limit of {limits.nesting} levels)"
        ) from None
    if not isinstance(doc, dict):
        raise InputError(f"{path}: expected a JSON object, found {type(doc).__name__}")
    depth = _depth(doc, limits.nesting)
    if depth > limits.nesting:
        raise LimitError(f"{path}", f"nested more than {limits.nesting} levels deep", "max_nesting", limits.nesting)
    if "\\u" in text:  # an escape may name half a surrogate pair, which no UTF-8 file can hold
        try:
            json.dumps(doc, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as e:
            bad = f"\\u{ord(e.object[e.start]):04x}"
            raise InputError(f"{path}: holds the escape {bad}, half of a surrogate pair; fix the text") from None
    return doc


def _object(doc: dict[str, Any], key: str, path: Path) -> dict[str, Any]:
    value = doc.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"{path}: '{key}' must be an object, found {_kind(value)}")
    return value


def _list(parent: dict[str, Any], key: str, where: str, path: Path) -> list[Any]:
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InputError(f"{path}: '{where}' must be a list, found {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def _inside(target: Path, folder: Path) -> bool:
    return target.resolve().is_relative_to(folder.resolve())


def _table_files(doc: dict[str, Any], folder: Path, path: Path) -> list[tuple[str, Path, dict[str, Any]]]:
    listed = _list(_object(doc, "media", path), "tables", "media.tables", path)
    described = _list(_object(doc, "media_metadata", path), "tables", "media_metadata.tables", path)
    if not all(isinstance(m, dict) for m in described):
        raise InputError(f"{path}: media_metadata.tables must hold one object per table")
    meta = {str(m.get("file")): m for m in described}
    files = []
    root = folder.resolve()
    for rel in listed:
        if not isinstance(rel, str):
            raise InputError(f"{path}: media.tables holds a non-string entry {rel!r}"[:300])
        target = (folder / rel).resolve()
        if not target.is_relative_to(root):
            raise InputError(f"{path}: media path '{rel}' points outside the question folder; refused")
        if not target.is_file():
            raise InputError(f"{path}: table '{rel}' is listed in media but missing")
        files.append((rel, target, meta.get(rel, {})))
    return files


def read_table(file: Path, limits: InputLimits) -> str:
    """A table file's markup, within `max_table_bytes`."""
    size = file.stat().st_size
    if size > limits.table_bytes:
        raise LimitError(f"table {file}", f"{size:,} bytes", "max_table_bytes", limits.table_bytes)
    with file.open("rb") as f:
        raw = f.read(limits.table_bytes + 1)
    if len(raw) > limits.table_bytes:
        raise LimitError(f"table {file}", f"over {limits.table_bytes:,} bytes", "max_table_bytes", limits.table_bytes)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{file}: not UTF-8") from None


class ParseStage(Stage):
    """Read and clean a question: sentences, key points, clinical tables, lab panels skipped."""

    name = "parse"
    version = "2"
    reads_source = True

    def config(self) -> dict[str, Any]:
        # The limits decide which questions build: changing one reruns parse (nothing after
        # it reruns unless a question's parse result changes).
        return {"limits": vars(InputLimits.of(self.settings))}

    def run(self, job: StageJob) -> ParsedQuestion:
        q = job.question
        path = q.json_path
        if q.problem:
            raise InputError(q.problem)
        if q.system not in SYSTEMS:
            raise InputError(f"{path}: folder '{q.system}' is not a system code (valid: {' '.join(SYSTEMS)})")
        if not QUESTION_ID.match(q.qid):
            raise InputError(f"{path}: '{q.qid}' is not a question id like cvmcq24001")
        if os.path.lexists(path) and not _inside(path, q.folder):
            raise InputError(f"{path}: a symlink to {path.resolve()}, outside the question folder; refused")
        limits = InputLimits.of(job.settings)
        doc = read_question(path, limits)
        qid = doc.get("question_id")
        if qid != q.qid:
            raise InputError(f"{path}: question_id {str(qid)[:80]!r} does not match its folder '{q.qid}'")
        critique = doc.get("critique")
        if not isinstance(critique, str) or not critique.strip():
            raise InputError(f"{path}: missing or empty 'critique'")
        if len(critique) > limits.critique_chars:
            raise LimitError(
                f"{path}: the critique", f"{len(critique):,} characters", "max_critique_chars", limits.critique_chars
            )
        key_points = doc.get("key_points") or []
        if not isinstance(key_points, list) or not all(isinstance(k, str) for k in key_points):
            raise InputError(f"{path}: 'key_points' must be a list of strings")
        for n, k in enumerate(key_points, 1):
            if len(k) > limits.critique_chars:
                raise LimitError(
                    f"{path}: key point {n}", f"{len(k):,} characters", "max_critique_chars", limits.critique_chars
                )

        tables: list[ParsedTable] = []
        skipped: list[str] = []
        for rel, file, meta in _table_files(doc, q.folder, path):
            markup = read_table(file, limits)
            notes = [str(n) for n in _list(meta, "footnotes", "media_metadata.tables[].footnotes", path)]
            table = parse_table(
                markup,
                Path(rel).name,
                notes,
                titled=bool(meta.get("title")),
                max_cells=limits.table_cells,
                max_chars=limits.table_bytes,
                where=str(file),
            )
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
