"""What a sync keeps between runs, under the build state: `<cache_dir>/sync/anki/<profile>/`.

- `state.json`: for each note a sync left in Anki (by Anki note id), what it left: the note's
  GUID when we gave it one, its stable id, digests of its content and fields, and its `mod`
  right after our last change. A later `mod` with other fields means the user edited it.
- `snapshots/NNNN.json`: one per sync that changed Anki, written before Anki is touched
  (`planned`) and again once every change is read back (`done`): the notes it added, the
  fields and tags of those it updated as they were before, those it tagged gone, and the
  state records it replaced (`previous`). `--rollback` undoes the newest one not yet undone
  and marks it `rolled back`.

Every file is written atomically (`mksap.atomic`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from mksap.atomic import write_json
from mksap.contracts.errors import MksapError
from mksap.settings import Settings
from mksap_plugins.sync.notes import AnkiNote


class Record(BaseModel):
    """What the last sync left in Anki for one note."""

    guid: str | None = None  # the GUID we gave it (None: a note already in Anki, e.g. from an .apkg)
    stable_id: str
    content: str  # content digest (fields + mksap tags) as we left it
    fields: str  # fields digest as we left them
    mod: int | None  # the note's mod right after our last change
    gone: bool = False

    @classmethod
    def of(cls, note: AnkiNote, guid: str | None, stable_id: str | None = None) -> Record:
        return cls(
            guid=guid,
            stable_id=stable_id or note.stable_id,
            content=note.content,
            fields=note.fields_digest,
            mod=note.mod,
            gone=note.is_gone,
        )


class SyncState(BaseModel):
    mksap: int = 1
    kind: Literal["anki-sync-state"] = "anki-sync-state"
    profile: str
    notes: dict[str, Record] = {}  # Anki note id -> record

    def apply(self, records: dict[str, Record | None]) -> None:
        for key, rec in records.items():
            if rec is None:
                self.notes.pop(key, None)
            else:
                self.notes[key] = rec


class AddedEntry(BaseModel):
    stable_id: str
    guid: str
    note_id: int | None = None  # None until the import is read back
    fields: str  # fields digest (planned, then as read back)
    mod: int | None = None
    text: str = ""


class UpdatedEntry(BaseModel):
    stable_id: str
    note_id: int
    before_fields: dict[str, str]
    before_tags: list[str]
    fields: str  # fields digest after the update (planned, then as read back)
    mod: int | None = None
    text: str = ""


class GoneEntry(BaseModel):
    stable_id: str
    note_id: int
    text: str = ""


class Snapshot(BaseModel):
    """One sync's changes to Anki, enough to undo them."""

    mksap: int = 1
    kind: Literal["anki-sync-snapshot"] = "anki-sync-snapshot"
    number: int
    created: str
    status: Literal["planned", "done", "rolled back"] = "planned"
    url: str
    profile: str
    added: list[AddedEntry] = []
    updated: list[UpdatedEntry] = []
    gone: list[GoneEntry] = []
    previous: dict[str, Record | None] = {}  # note id -> the record this sync replaced (None: none)
    rolled_back: str | None = None


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _slug(profile: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", profile).strip("._") or "profile"


@dataclass
class SyncStore:
    """The state and snapshots of syncs to one Anki profile."""

    root: Path
    profile: str

    @classmethod
    def open(cls, settings: Settings, profile: str) -> SyncStore:
        return cls(settings.cache_dir / "sync" / "anki" / _slug(profile), profile)

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    def load_state(self) -> SyncState:
        try:
            return SyncState.model_validate_json(self.state_file.read_bytes())
        except FileNotFoundError:
            return SyncState(profile=self.profile)
        except ValueError as e:
            raise MksapError(
                f"{self.state_file} is unreadable ({type(e).__name__}); move it away to start over"
            ) from None

    def save_state(self, state: SyncState) -> None:
        write_json(self.state_file, state.model_dump(mode="json"))

    def _paths(self) -> list[Path]:
        return sorted((self.root / "snapshots").glob("[0-9][0-9][0-9][0-9]*.json"))

    def new_snapshot(self, url: str) -> Snapshot:
        paths = self._paths()
        number = int(paths[-1].stem) + 1 if paths else 1
        return Snapshot(number=number, created=now(), url=url, profile=self.profile)

    def path_of(self, snapshot: Snapshot) -> Path:
        return self.root / "snapshots" / f"{snapshot.number:04d}.json"

    def save_snapshot(self, snapshot: Snapshot) -> None:
        write_json(self.path_of(snapshot), snapshot.model_dump(mode="json"))

    def latest(self) -> Snapshot | None:
        """The newest snapshot not rolled back yet."""
        for path in reversed(self._paths()):
            try:
                snapshot = Snapshot.model_validate_json(path.read_bytes())
            except ValueError as e:
                raise MksapError(f"{path} is unreadable ({type(e).__name__}); move it away to go on") from None
            if snapshot.status != "rolled back":
                return snapshot
        return None
