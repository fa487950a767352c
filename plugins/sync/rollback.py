"""`mksap sync anki --rollback`: undo the newest sync not undone yet, from its snapshot.

Notes it added are deleted, the fields and tags of those it updated put back, `mksap::gone`
removed from those it tagged; a note whose fields were edited in Anki since that sync is left
alone and listed. The state goes back to the records the sync replaced, and the snapshot is
marked `rolled back`, so a second `--rollback` undoes the sync before it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mksap.settings import Settings
from mksap_plugins.sync.anki import AnkiSyncOptions, build_lock, connect, note_line, notes_info, read_anki, tag_actions
from mksap_plugins.sync.ankiconnect import AnkiConnect
from mksap_plugins.sync.notes import GONE_TAG, AnkiNote
from mksap_plugins.sync.report import RollbackReport
from mksap_plugins.sync.store import Record, Snapshot, SyncState, SyncStore, UpdatedEntry, now


@dataclass
class Undo:
    delete: list[AnkiNote] = field(default_factory=list)
    restore: list[tuple[UpdatedEntry, AnkiNote]] = field(default_factory=list)
    ungone: list[AnkiNote] = field(default_factory=list)
    kept: set[str] = field(default_factory=set)  # record keys of notes left alone


def rollback_anki(settings: Settings, options: AnkiSyncOptions, *, dry_run: bool = False) -> RollbackReport:
    """Undo the newest sync not undone yet (see the module doc); `dry_run` only lists it."""
    started = time.monotonic()
    client, profile = connect(options)
    store = SyncStore.open(settings, profile)
    report = RollbackReport(url=client.url, profile=profile, dry_run=dry_run)
    with build_lock(settings, dry_run):
        snapshot = store.latest()
        if snapshot is not None:
            report.snapshot, report.synced_at = str(store.path_of(snapshot)), snapshot.created
            state = store.load_state()
            undo = plan_undo(snapshot, read_anki(client).notes, state, report)
            if not dry_run:
                _undo(client, store, state, snapshot, undo)
    report.seconds = round(time.monotonic() - started, 3)
    return report


def plan_undo(snapshot: Snapshot, notes: Mapping[int, AnkiNote], state: SyncState, report: RollbackReport) -> Undo:
    """What undoing `snapshot` does to each note it changed, as report lines."""
    undo = Undo()
    unrecorded = {
        n.stable_id: n for n in sorted(notes.values(), key=lambda n: -n.note_id) if str(n.note_id) not in state.notes
    }
    for a in snapshot.added:
        # an interrupted sync may not have read its new notes back: find them by stable id
        note = notes.get(a.note_id) if a.note_id is not None else unrecorded.get(a.stable_id)
        if note is None:
            report.missing.append(
                note_line(a.stable_id, a.note_id, a.text, "added by that sync, deleted in Anki since")
            )
        elif note.edited_since(a.fields):
            report.kept_edited.append(note_line(a.stable_id, note.note_id, note.text, "added by that sync"))
            undo.kept.add(str(note.note_id))
        else:
            undo.delete.append(note)
            report.deleted.append(note_line(a.stable_id, note.note_id, note.text))
    for u in snapshot.updated:
        note = notes.get(u.note_id)
        if note is None:
            report.missing.append(
                note_line(u.stable_id, u.note_id, u.text, "updated by that sync, deleted in Anki since")
            )
        elif note.edited_since(u.fields) and not _holds(note, u):
            report.kept_edited.append(note_line(u.stable_id, note.note_id, note.text, "updated by that sync"))
            undo.kept.add(str(note.note_id))
        else:
            undo.restore.append((u, note))
            report.restored.append(note_line(u.stable_id, note.note_id, u.before_fields.get("Text", "")))
    for g in snapshot.gone:
        note = notes.get(g.note_id)
        if note is None:
            report.missing.append(
                note_line(g.stable_id, g.note_id, g.text, "tagged gone by that sync, deleted in Anki since")
            )
        elif note.is_gone:
            undo.ungone.append(note)
            report.ungone.append(note_line(g.stable_id, note.note_id, note.text))
    return undo


def _holds(note: AnkiNote, entry: UpdatedEntry) -> bool:
    """The note already holds what it held before the sync (a rollback cut short, run again)."""
    return not note.changed_fields(entry.before_fields) and not any(note.tag_changes(entry.before_tags))


def _undo(client: AnkiConnect, store: SyncStore, state: SyncState, snapshot: Snapshot, undo: Undo) -> None:
    actions: list[tuple[str, dict[str, Any]]] = []
    if undo.delete:
        actions.append(("deleteNotes", {"notes": [n.note_id for n in undo.delete]}))
    for entry, note in undo.restore:
        if fields := note.changed_fields(entry.before_fields):
            actions.append(("updateNoteFields", {"note": {"id": note.note_id, "fields": fields}}))
    actions += tag_actions((n.note_id, *n.tag_changes(e.before_tags)) for e, n in undo.restore)
    if undo.ungone:
        actions.append(("removeTags", {"notes": [n.note_id for n in undo.ungone], "tags": GONE_TAG}))
    client.multi_results(actions)

    back = notes_info(client, [n.note_id for _, n in undo.restore] + [n.note_id for n in undo.ungone])
    records = {k: rec for k, rec in snapshot.previous.items() if k not in undo.kept}
    records |= {str(n.note_id): None for n in undo.delete}
    for note_id, note in back.items():  # put back as the sync found them, with their mod now
        previous = snapshot.previous.get(str(note_id))
        records[str(note_id)] = Record.of(note, previous.guid, previous.stable_id) if previous else None
    state.apply(records)
    snapshot.status, snapshot.rolled_back = "rolled back", now()
    store.save_snapshot(snapshot)
    store.save_state(state)
