"""anki: an .apkg deck (genanki) with one cloze note per statement.

The note type and deck ids are fixed (derived from names, never from time), and each note's
GUID comes from its question id and the statement's stable id, never from its text: importing
a newer deck updates the notes already in Anki instead of adding duplicates.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import itertools
import os
import sqlite3
import tempfile
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from mksap.contracts.errors import ExportError
from mksap.contracts.exporter import (
    Exporter,
    ExportOptions,
    ExportQuestion,
    ExportStatement,
    ExportWritten,
    selected,
)
from mksap.contracts.statements import candidate_spans

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


def deck_id(name: str) -> int:
    """A positive 62-bit id derived from the deck name (Anki deck ids are signed 64-bit)."""
    return int.from_bytes(hashlib.sha256(f"mksap::{name}".encode()).digest()[:8], "big") >> 2 or 2


def _escape(text: str, inside_cloze: bool = False) -> str:
    """HTML-escape, and turn the characters of cloze syntax into entities so statement text
    can never open, close or split a cloze (they render the same)."""
    out = html.escape(text, quote=False).replace("{", "&#123;").replace("}", "&#125;")
    return out.replace(":", "&#58;") if inside_cloze else out


def cloze_text(
    s: ExportStatement, mode: str = "all", max_clozes: int | None = None
) -> tuple[str, int]:
    """The statement as cloze markup and the number of clozes. `all`: c1..cN, one per placed
    candidate (one card each); `single`: the first candidate only, as c1."""
    candidates = s.cloze_candidates[:1] if mode == "single" else s.cloze_candidates[:max_clozes]
    spans = candidate_spans(s.statement, candidates)
    number = {index: n for n, index in enumerate(sorted(i for _, _, i in spans), start=1)}
    parts: list[str] = []
    pos = 0
    for start, end, index in spans:
        parts.append(_escape(s.statement[pos:start]))
        parts.append(
            f"{{{{c{number[index]}::{_escape(s.statement[start:end], inside_cloze=True)}}}}}"
        )
        pos = end
    parts.append(_escape(s.statement[pos:]))
    return "".join(parts), len(spans)


def source_line(s: ExportStatement) -> str:
    kind = s.source.replace("_", " ")
    parts = [s.question_id, s.system, kind] + ([s.table_source] if s.table_source else [])
    return " · ".join(parts)


def tags(s: ExportStatement) -> list[str]:
    state = "flagged" if s.flagged else "ok"
    return [
        f"mksap::{s.system}",
        f"mksap::{s.question_id}",
        f"mksap::source::{s.source}",
        f"mksap::validation::{state}",
    ]


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
    version = "1"
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
        for s, text in rows:
            name = f"{options.deck}::{s.system}"
            deck = decks.setdefault(name, genanki.Deck(deck_id(name), name))
            guid = note_guid(s.question_id, s.statement_id)
            fields = [
                text,
                _escape(s.extra_field or ""),
                html.escape(source_line(s), quote=False),
                s.stable_id,
            ]
            deck.add_note(genanki.Note(model=model, fields=fields, tags=tags(s), guid=guid))
            notes[guid] = s.stable_id
        write_apkg(genanki.Package(list(decks.values())), path)
        return ExportWritten(items=len(rows), skipped=skipped, notes=notes)

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


def write_apkg(package: Any, path: Path) -> None:
    """The .apkg (a zip holding the SQLite collection) written beside `path`, then renamed over
    it. genanki's own `write_to_file` leaves its database in the temp folder; this does not."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    db_fd, db = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".anki2")
    os.close(db_fd)
    try:
        conn = sqlite3.connect(db)
        try:
            timestamp = time.time()
            package.write_to_db(conn.cursor(), timestamp, itertools.count(int(timestamp * 1000)))
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
