"""The two sides a sync compares: the notes mksap wants (read back from the exporter's own
.apkg, so a sync writes exactly what `mksap export anki` writes) and the notes of mksap's note
type in Anki (as AnkiConnect's `notesInfo` shows them).

A note's *content* is its four fields and its `mksap::` tags; every other tag is the user's and
is never compared, added or removed.
"""

from __future__ import annotations

import html
import json
import re
import sqlite3
import tempfile
import unicodedata
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any

from mksap.contracts.errors import MksapError
from mksap_plugins.exporters.anki import FIELDS

GONE_TAG = "mksap::gone"
MANAGED_PREFIX = "mksap::"
STABLE_FIELD = "StableId"
TEXT_FIELD = "Text"
_CLOZE = re.compile(r"\{\{c\d+::(.*?)(?:::[^}]*)?\}\}", re.DOTALL)


def managed(tags: Iterable[str]) -> list[str]:
    """The tags mksap manages, lower-cased (Anki's tags are case-insensitive), sorted."""
    return sorted({t.lower() for t in tags if t.lower().startswith(MANAGED_PREFIX)})


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)  # Anki keeps note text NFC-normalised


def fields_digest(fields: Mapping[str, str]) -> str:
    values = [nfc(fields.get(name, "")) for name in FIELDS]
    return sha256(json.dumps(values, ensure_ascii=False).encode()).hexdigest()[:32]


def content_digest(fields: Mapping[str, str], tags: Iterable[str]) -> str:
    """What a sync compares: mksap's fields and the mksap tags."""
    return sha256(json.dumps([fields_digest(fields), managed(tags)]).encode()).hexdigest()[:32]


def plain_text(text: str) -> str:
    """A Text field back to its statement: cloze markup and tags removed, entities decoded."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", _CLOZE.sub(r"\1", text))).split())


def text_key(text: str) -> str:
    """What "the same statement" compares when ids differ: the plain text, case and spacing aside."""
    return plain_text(text).casefold()


def first_line(text: str, width: int = 96) -> str:
    """A Text field as one short readable line, each cloze shown as [answer]."""
    plain = plain_text(_CLOZE.sub(r"[\1]", text))
    return plain if len(plain) <= width else plain[: width - 1] + "…"


def question_of(stable_id: str) -> str:
    return stable_id.split("/", 1)[0].lower()


@dataclass(frozen=True)
class WantedNote:
    """A note as mksap wants it in Anki."""

    stable_id: str
    guid: str
    deck: str
    fields: dict[str, str]
    tags: tuple[str, ...]

    @property
    def content(self) -> str:
        return content_digest(self.fields, self.tags)

    @property
    def text(self) -> str:
        return self.fields.get(TEXT_FIELD, "")


@dataclass(frozen=True)
class AnkiNote:
    """A note of mksap's note type in Anki. `mod` is None from an add-on too old to send it;
    then only its fields tell whether the user edited it."""

    note_id: int
    fields: dict[str, str]
    tags: tuple[str, ...]
    mod: int | None

    @classmethod
    def from_info(cls, info: Mapping[str, Any]) -> AnkiNote:
        fields = {name: str(v.get("value", "")) for name, v in info.get("fields", {}).items()}
        mod = info.get("mod")
        return cls(int(info["noteId"]), fields, tuple(info.get("tags", [])), None if mod is None else int(mod))

    @property
    def stable_id(self) -> str:
        return html.unescape(self.fields.get(STABLE_FIELD, "")).strip()

    @property
    def text(self) -> str:
        return self.fields.get(TEXT_FIELD, "")

    @property
    def content(self) -> str:
        return content_digest(self.fields, self.tags)

    @property
    def fields_digest(self) -> str:
        return fields_digest(self.fields)

    @property
    def is_gone(self) -> bool:
        return GONE_TAG in managed(self.tags)

    def edited_since(self, digest: str) -> bool:
        """Its fields were edited in Anki since a sync left them with fields `digest`. An edit
        moves the note's `mod` too, but `mod` counts whole seconds (an edit in the second of
        our write keeps it) and moves for tag changes as well, which are not edits of ours."""
        return self.fields_digest != digest

    def changed_fields(self, wanted: Mapping[str, str]) -> dict[str, str]:
        """The fields of `wanted` (name -> value) this note holds differently."""
        return {f: v for f, v in wanted.items() if nfc(self.fields.get(f, "")) != nfc(v)}

    def tag_changes(self, wanted: Iterable[str]) -> tuple[list[str], list[str]]:
        """(mksap tags to add, mksap tags to remove) to make this note's mksap tags `wanted`."""
        want, have = managed(wanted), managed(self.tags)
        return [t for t in want if t not in have], [t for t in have if t not in want]


def read_package(path: Path) -> dict[str, WantedNote]:
    """stable id -> note of every note in an .apkg the exporter wrote (its SQLite read directly)."""
    with tempfile.TemporaryDirectory(prefix=".read-", dir=path.parent) as tmp:
        with zipfile.ZipFile(path) as z:
            db = z.extract("collection.anki2", tmp)
        conn = sqlite3.connect(db)
        try:
            decks_json, models_json = conn.execute("select decks, models from col").fetchone()
            decks = {int(k): v["name"] for k, v in json.loads(decks_json).items()}
            names = {
                int(k): [f["name"] for f in sorted(m["flds"], key=lambda f: f["ord"])]
                for k, m in json.loads(models_json).items()
            }
            deck_of = dict(conn.execute("select nid, did from cards where ord = 0"))
            rows = conn.execute("select id, guid, mid, flds, tags from notes").fetchall()
        finally:
            conn.close()
    notes: dict[str, WantedNote] = {}
    for nid, guid, mid, flds, tags in rows:
        fields = dict(zip(names[mid], flds.split("\x1f"), strict=True))
        stable_id = html.unescape(fields[STABLE_FIELD]).strip()
        if stable_id in notes:
            raise MksapError(f"two notes of {path.name} have the StableId {stable_id}; please report it")
        notes[stable_id] = WantedNote(stable_id, guid, decks[deck_of[nid]], fields, tuple(tags.split()))
    return notes
