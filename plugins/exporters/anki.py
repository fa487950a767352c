"""anki: an .apkg deck (genanki) with one cloze note per statement.

The note type and deck ids are fixed (derived from names, never from time), and each note's
GUID comes from its question id and the statement's stable id, never from its text: importing
a newer deck updates the notes already in Anki instead of adding duplicates.

A statement of a table copied into several questions is one note (the core merges the copies,
`mksap.export.shared`): tagged with every question and system that uses the table, its Source
naming them all, in the deck of the question that keeps the note.

A note's modification time is when its content last changed in mksap, not the export time
(genanki stamps every note with the latter). Anki's import updates a note only when the
incoming one is newer, so an unchanged note never overwrites what the user edited in Anki,
and a changed one does update. The times are kept in the build state (`NoteTimes`).
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import itertools
import json
import os
import re
import sqlite3
import tempfile
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, ValidationError

from mksap.atomic import write_json
from mksap.contracts.errors import ExportError
from mksap.contracts.exporter import (
    Exporter,
    ExportOptions,
    ExportQuestion,
    ExportStatement,
    ExportWritten,
    selected,
)
from mksap.contracts.statements import aligned_starts, candidate_spans
from mksap_plugins.stages.quantities import paired_quantities

if TYPE_CHECKING:
    import genanki

MODEL_ID = 1_692_407_311  # fixed forever: Anki matches the note type by id on import
MODEL_NAME = "mksap cloze"
FIELDS = ("Text", "Extra", "Source", "StableId")
CSS = """.card { font-family: system-ui, sans-serif; font-size: 20px; text-align: left;
  color: #111; background: #fff; }
.cloze { font-weight: bold; color: #0645ad; }
.extra { margin-top: 1em; color: #333; }
.source { margin-top: 1em; font-size: 13px; color: #777; }
.nightMode .cloze { color: #8ab4f8; } .nightMode .extra { color: #ddd; }"""
FRONT = "{{cloze:Text}}"
BACK = (
    "{{cloze:Text}}{{#Extra}}<div class=extra>{{Extra}}</div>{{/Extra}}"
    "<div class=source>{{Source}}</div>"
)


class AnkiOptions(ExportOptions):
    deck: str = Field(
        "MKSAP", min_length=1, description="parent deck; one subdeck per system under it"
    )
    cloze_mode: Literal["all", "single"] = Field(
        "all", description="all: one cloze (card) per candidate; single: the first only"
    )
    max_clozes: int | None = Field(None, ge=1, description="at most N clozes per note")


def note_guid(question_id: str, statement_id: str) -> str:
    """The note's GUID: stable across rebuilds that rephrase the statement."""
    import genanki

    return str(genanki.guid_for("mksap", question_id, statement_id))


class NoteTime(BaseModel):
    """What a note was when its modification time was last set."""

    content: str  # digest of what the user sees: Text, Extra, Source and tags
    stable_id: str
    mod: int  # whole seconds, as Anki keeps a note's mtime


class NoteTimes(BaseModel):
    """GUID -> NoteTime of every note this exporter wrote (`<state_dir>/notes.json`)."""

    mksap: int = 1
    notes: dict[str, NoteTime] = Field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> NoteTimes:
        try:
            return cls.model_validate_json(path.read_bytes())
        except (OSError, ValidationError):
            return cls()

    def stamp(self, guid: str, content: str, stable_id: str, now: int) -> int:
        """The note's mod for this export, recorded: unchanged content keeps its time; a note
        whose only change is its StableId (an id scheme change) gets the smallest newer time,
        so Anki refreshes it where the user left it alone and keeps the user's edits; changed
        content gets now (always later than before); a new note gets now."""
        prior = self.notes.get(guid)
        if prior is None:
            mod = now
        elif prior.content == content:
            mod = prior.mod if prior.stable_id == stable_id else prior.mod + 1
        else:
            mod = max(now, prior.mod + 1)
        self.notes[guid] = NoteTime(content=content, stable_id=stable_id, mod=mod)
        return mod


def content_digest(fields: list[str], note_tags: list[str]) -> str:
    """Digest of a note's content apart from its StableId (the last field)."""
    payload = json.dumps([fields[:-1], sorted(note_tags)], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def statement_guid(s: ExportStatement) -> str:
    """The GUID of a statement's note: the one an earlier export of the file gave it (kept by
    the core in the file's GUID map), else `note_guid`."""
    return s.guid or note_guid(s.question_id, s.statement_id)


def deck_id(name: str) -> int:
    """A positive 62-bit id derived from the deck name (Anki deck ids are signed 64-bit)."""
    return int.from_bytes(hashlib.sha256(f"mksap::{name}".encode()).digest()[:8], "big") >> 2 or 2


def _escape(text: str, inside_cloze: bool = False) -> str:
    """HTML-escape, and turn the characters of cloze syntax into entities so statement text
    can never open, close or split a cloze (they render the same)."""
    out = html.escape(text, quote=False).replace("{", "&#123;").replace("}", "&#125;")
    return out.replace(":", "&#58;") if inside_cloze else out


def cloze_groups(text: str, candidates: list[str]) -> list[list[tuple[int, int]]]:
    """The spans each cloze number hides, numbered in text order (the first group is c1).
    Each candidate is placed as `candidate_spans` places it (longest first, first free
    occurrence); its other whole-word occurrences join its group (a visible copy would give
    the answer away), and so does a quantity's restatement in other units ("≥200 mg/dL
    (11.1 mmol/L)": one fact, one cloze number, whether or not both are candidates)."""
    spans = candidate_spans(text, candidates)
    taken = [(a, b) for a, b, _ in spans]
    groups: dict[int, list[tuple[int, int]]] = {i: [(a, b)] for a, b, i in spans}

    def free(a: int, b: int) -> bool:
        return not any(a < e and s < b for s, e in taken)

    for index, members in list(groups.items()):
        cand = candidates[index]
        for start in aligned_starts(text, cand):
            if free(start, start + len(cand)):
                members.append((start, start + len(cand)))
                taken.append((start, start + len(cand)))
    owner = {span: i for i, members in groups.items() for span in members}
    for first, second in paired_quantities(text):
        a, b = owner.get(first), owner.get(second)
        if a is not None and b is not None and a != b:
            groups[a] += groups.pop(b)
            owner.update({span: a for span in groups[a]})
        elif (a is None) != (b is None):
            missing, group = (second, a) if a is not None else (first, b)
            if free(*missing) and group is not None:
                groups[group].append(missing)
                taken.append(missing)
                owner[missing] = group
    return sorted((sorted(members) for members in groups.values()), key=lambda m: m[0])


def cloze_text(
    s: ExportStatement, mode: str = "all", max_clozes: int | None = None
) -> tuple[str, int]:
    """The statement as cloze markup and the number of clozes (cards). `all`: c1..cN, one per
    placed candidate, numbered in the order they appear in the text; `single`: the first
    candidate only, as c1. See `cloze_groups` for what one number hides."""
    candidates = s.cloze_candidates[:1] if mode == "single" else s.cloze_candidates[:max_clozes]
    groups = cloze_groups(s.statement, candidates)
    number = {span: n for n, members in enumerate(groups, start=1) for span in members}
    parts: list[str] = []
    pos = 0
    for start, end in sorted(number):
        parts.append(_escape(s.statement[pos:start]))
        parts.append(
            f"{{{{c{number[(start, end)]}::{_escape(s.statement[start:end], inside_cloze=True)}}}}}"
        )
        pos = end
    parts.append(_escape(s.statement[pos:]))
    return "".join(parts), len(groups)


def source_line(s: ExportStatement) -> str:
    """`<qid> · <system> · <kind>[ · <table>]`; a shared table's note names every question
    and system (`cvmcq24102, npmcq24102 · cv, np · table · cvtab24101.html`)."""
    kind = s.source.replace("_", " ")
    parts = [", ".join(s.question_ids), ", ".join(s.systems), kind] + ([s.table_source] if s.table_source else [])
    return " · ".join(parts)


def tags(s: ExportStatement) -> list[str]:
    """The note's mksap tags: its systems, its questions (several for a shared table), its
    source kind and its validation state."""
    state = "flagged" if s.flagged else "ok"
    return [
        *(f"mksap::{system}" for system in s.systems),
        *(f"mksap::{qid}" for qid in s.question_ids),
        f"mksap::source::{s.source}",
        f"mksap::validation::{state}",
    ]


def search_literal(text: str) -> str:
    """`text` inside a quoted term of Anki's search syntax: its wildcards and quotes escaped."""
    return re.sub(r'([\\"*_])', r"\\\1", text)


def field_search(field: str, values: list[str], pattern: str = "{}") -> str:
    """An Anki search for the notes whose `field` matches `pattern` with one of `values`."""
    return " OR ".join(f'"{field}:{pattern.format(search_literal(v))}"' for v in values)


def note_rows(
    questions: list[ExportQuestion], options: AnkiOptions
) -> tuple[list[tuple[ExportStatement, str]], dict[str, int]]:
    """(statement, cloze text) of each note to write, and how many statements were left out why."""
    rows: list[tuple[ExportStatement, str]] = []
    skipped = {"flagged": 0, "no cloze candidate": 0}
    for q in questions:
        keep, flagged = selected(q, options)
        skipped["flagged"] += flagged
        for s in keep:
            text, n = cloze_text(s, options.cloze_mode, options.max_clozes)
            if n == 0:
                skipped["no cloze candidate"] += 1
                continue
            rows.append((s, text))
    return rows, skipped


class AnkiExporter(Exporter[AnkiOptions]):
    """An Anki deck (.apkg): one cloze note per statement, one subdeck per system."""

    name = "anki"
    version = "2"  # 2: a shared table's statements are one note, tagged with every question
    suffix = ".apkg"
    unit = "notes"
    options_model = AnkiOptions

    def export(
        self, questions: list[ExportQuestion], options: AnkiOptions, path: Path
    ) -> ExportWritten:
        import genanki

        model = self.model()
        rows, skipped = note_rows(questions, options)
        decks: dict[str, genanki.Deck] = {
            options.deck: genanki.Deck(deck_id(options.deck), options.deck)
        }
        notes: dict[str, str] = {}
        guids = [statement_guid(s) for s, _ in rows]
        times, now = self.note_times(path, guids), int(time.time())
        mods: dict[str, int] = {}
        for (s, text), guid in zip(rows, guids, strict=True):
            name = f"{options.deck}::{s.system}"
            deck = decks.setdefault(name, genanki.Deck(deck_id(name), name))
            fields = [
                text,
                _escape(s.extra_field or ""),
                html.escape(source_line(s), quote=False),
                s.stable_id,
            ]
            deck.add_note(genanki.Note(model=model, fields=fields, tags=tags(s), guid=guid))
            notes[guid] = s.stable_id
            mods[guid] = times.stamp(guid, content_digest(fields, tags(s)), s.stable_id, now)
        write_apkg(genanki.Package(list(decks.values())), path, mods)
        if self.state_dir is not None:
            write_json(self.state_dir / "notes.json", times.model_dump(mode="json"))
        return ExportWritten(items=len(rows), skipped=skipped, notes=notes)

    def note_times(self, path: Path, guids: list[str]) -> NoteTimes:
        """The times kept in the build state; a note they do not know yet that the file at
        `path` already holds (written before the build state kept times, or the state was
        deleted) starts from that file's content and time."""
        times = NoteTimes.read(self.state_dir / "notes.json") if self.state_dir else NoteTimes()
        if any(g not in times.notes for g in guids):
            for guid, note in read_apkg(path).items():
                if guid not in times.notes and len(note.fields) == len(FIELDS):
                    content = content_digest(note.fields, note.tags)
                    times.notes[guid] = NoteTime(content=content, stable_id=note.fields[-1], mod=note.mod)
        return times

    @classmethod
    def search(cls, stable_ids: list[str]) -> str | None:
        """The notes of these statements, by their StableId field."""
        return field_search("StableId", stable_ids) if stable_ids else None

    def read_notes(self, path: Path) -> dict[str, str]:
        """GUID -> statement text of the notes of an .apkg this exporter wrote at `path`."""
        return {guid: plain_text(note.fields[0]) for guid, note in read_apkg(path).items() if note.fields}

    @staticmethod
    def model() -> genanki.Model:
        import genanki

        return genanki.Model(
            MODEL_ID,
            MODEL_NAME,
            fields=[{"name": f} for f in FIELDS],
            templates=[{"name": "Cloze", "qfmt": FRONT, "afmt": BACK}],
            css=CSS,
            model_type=genanki.Model.CLOZE,
        )


_CLOZE = re.compile(r"\{\{c\d+::(.*?)(?:::[^}]*)?\}\}", re.DOTALL)


def plain_text(text: str) -> str:
    """A Text field back to the statement: cloze markup removed, entities decoded."""
    return html.unescape(_CLOZE.sub(lambda m: m.group(1), text))


class ApkgNote(BaseModel):
    fields: list[str]
    tags: list[str]
    mod: int


def read_apkg(path: Path) -> dict[str, ApkgNote]:
    """GUID -> fields, tags and mod of every note of the .apkg at `path` ({} when there is
    none or it cannot be read: it only seeds what the build state does not know)."""
    try:
        with zipfile.ZipFile(path) as z, tempfile.TemporaryDirectory() as tmp:
            db = z.extract("collection.anki2", tmp)
            conn = sqlite3.connect(db)
            try:
                rows = conn.execute("select guid, flds, tags, mod from notes").fetchall()
            finally:
                conn.close()
    except (OSError, KeyError, zipfile.BadZipFile, sqlite3.Error):
        return {}
    return {
        str(guid): ApkgNote(fields=str(flds).split("\x1f"), tags=str(note_tags).split(), mod=int(mod))
        for guid, flds, note_tags, mod in rows
    }


def write_apkg(package: Any, path: Path, mods: dict[str, int] | None = None) -> None:
    """The .apkg (a zip holding the SQLite collection) written beside `path`, then renamed over
    it. genanki's own `write_to_file` leaves its database in the temp folder; this does not.
    `mods` (GUID -> seconds) replace the export time genanki gives the notes and their cards."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    db_fd, db = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".anki2")
    os.close(db_fd)
    try:
        conn = sqlite3.connect(db)
        try:
            timestamp = time.time()
            package.write_to_db(conn.cursor(), timestamp, itertools.count(int(timestamp * 1000)))
            conn.executemany("update notes set mod = ? where guid = ?", [(m, g) for g, m in (mods or {}).items()])
            conn.execute("update cards set mod = (select mod from notes where notes.id = cards.nid)")
            conn.commit()
        finally:
            conn.close()
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            z.write(db, "collection.anki2")
            z.writestr("media", "{}")
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except sqlite3.Error as e:
        raise ExportError(f"could not write the Anki collection for {path}: {e}") from None
    finally:
        for leftover in (tmp, db):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)
