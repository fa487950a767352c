"""Helpers for tests that need a real Anki collection (Anki's own `anki` library).

Open a fresh collection under a test's tmp_path, import an .apkg the way Anki's import
dialog does, study what is due through the scheduler (so cards get review history), and
read notes back by GUID::

    with fresh_collection(tmp_path / "anki") as col:
        summary = import_apkg(col, deck_apkg)          # GUI defaults: update notes "if newer"
        answered = study_due_cards(col)                 # one answer per due card, revlog rows
        notes = notes_by_guid(col)                      # guid -> NoteState

Everything Anki writes (the collection, its `.media` folder and media database) stays in the
folder given; nothing needs the network.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from anki.collection import Collection, ImportAnkiPackageOptions

__all__ = [
    "ImportSummary",
    "NoteState",
    "fresh_collection",
    "gui_import_options",
    "import_apkg",
    "notes_by_guid",
    "open_collection",
    "study_due_cards",
]

COLLECTION_NAME = "collection.anki2"


def open_collection(folder: Path, name: str = COLLECTION_NAME) -> Collection:
    """The collection `folder/name`, created (with its folder) when missing. Close it."""
    from anki.collection import Collection

    folder.mkdir(parents=True, exist_ok=True)
    return Collection(str(folder / name))


@contextmanager
def fresh_collection(folder: Path, name: str = COLLECTION_NAME) -> Iterator[Collection]:
    """A new, empty collection in `folder` (which must not hold one yet), closed on exit."""
    if (folder / name).exists():
        raise FileExistsError(f"{folder / name} already exists; give fresh_collection a new folder")
    col = open_collection(folder, name)
    try:
        yield col
    finally:
        col.close()


def gui_import_options(col: Collection, **overrides: Any) -> ImportAnkiPackageOptions:
    """The options Anki's import dialog starts from: the collection's import presets. In a
    fresh collection they are update notes and note types "if newer"
    (`IMPORT_ANKI_PACKAGE_UPDATE_CONDITION_IF_NEWER`), no merging of note types, no
    scheduling, no deck presets. `overrides` set fields of `ImportAnkiPackageOptions`."""
    # The dialog reads them through the backend; the Collection has no public getter.
    options = col._backend.get_import_anki_package_presets()
    for field, value in overrides.items():
        setattr(options, field, value)
    return options


@dataclass(frozen=True)
class ImportSummary:
    """Note ids per outcome of one import (Anki's import log)."""

    new: tuple[int, ...]
    updated: tuple[int, ...]
    duplicate: tuple[int, ...]  # same GUID, not updated (the update rule said no)
    conflicting: tuple[int, ...]  # same GUID, different note type: skipped
    first_field_match: tuple[int, ...]
    missing_notetype: tuple[int, ...]
    missing_deck: tuple[int, ...]
    empty_first_field: tuple[int, ...]
    found_notes: int


def import_apkg(
    col: Collection, package: Path, options: ImportAnkiPackageOptions | None = None
) -> ImportSummary:
    """Import `package` with Anki's importer (`Collection.import_anki_package`), by default
    with the import dialog's options (`gui_import_options`). GUIDs are the match key."""
    from anki.collection import ImportAnkiPackageRequest

    request = ImportAnkiPackageRequest(
        package_path=str(package), options=options or gui_import_options(col)
    )
    log = col.import_anki_package(request).log

    def ids(outcome: str) -> tuple[int, ...]:
        return tuple(int(note.id.nid) for note in getattr(log, outcome))

    return ImportSummary(
        new=ids("new"),
        updated=ids("updated"),
        duplicate=ids("duplicate"),
        conflicting=ids("conflicting"),
        first_field_match=ids("first_field_match"),
        missing_notetype=ids("missing_notetype"),
        missing_deck=ids("missing_deck"),
        empty_first_field=ids("empty_first_field"),
        found_notes=log.found_notes,
    )


def study_due_cards(col: Collection, ease: int = 3) -> list[int]:
    """Answer every card the scheduler offers today once, with `ease` (1 Again .. 4 Easy),
    deck by deck from each top-level deck (its subdecks included, within the decks' daily
    limits). A card the scheduler offers again (a learning step) is not answered twice.
    Returns the ids of the cards answered; each answer writes one revlog row."""
    answered: list[int] = []
    seen: set[int] = set()
    for deck in col.decks.all_names_and_ids():
        if "::" in deck.name:
            continue
        col.decks.select(deck.id)
        while (card := col.sched.getCard()) is not None and card.id not in seen:
            col.sched.answerCard(card, ease)
            seen.add(card.id)
            answered.append(int(card.id))
    return answered


@dataclass(frozen=True)
class NoteState:
    """One note as the collection holds it."""

    note_id: int
    guid: str
    model: str
    fields: dict[str, str]
    tags: tuple[str, ...]
    mod: int
    card_ids: tuple[int, ...]
    revlog: int  # review-history rows of its cards


def notes_by_guid(col: Collection) -> dict[str, NoteState]:
    """guid -> NoteState of every note in the collection."""
    revlog = dict(
        col.db.all("select c.nid, count() from revlog r join cards c on c.id = r.cid group by c.nid")
    )
    states: dict[str, NoteState] = {}
    for nid in col.find_notes(""):
        note = col.get_note(nid)
        states[note.guid] = NoteState(
            note_id=int(note.id),
            guid=note.guid,
            model=note.note_type()["name"],
            fields=dict(note.items()),
            tags=tuple(note.tags),
            mod=note.mod,
            card_ids=tuple(col.db.list("select id from cards where nid = ? order by ord", nid)),
            revlog=revlog.get(nid, 0),
        )
    return states
