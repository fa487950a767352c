"""`mksap sync anki` end to end: the real CLI (in-process) against the fake AnkiConnect, whose
actions run on a real Anki collection, so every assertion reads back what Anki stores.

Each test builds the example bank in its own workspace and syncs it into its own collection.
Changes on the mksap side come from Anki exporter options (`MKSAP_ANKI_CLOZE_MODE=single`
rewrites the Text of every note with several clozes) or from editing the workspace's copy of
the bank and rebuilding; changes on the Anki side are made in the collection directly, as the
user would in Anki.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mksap.contracts.errors import ExitCode
from mksap_plugins.exporters.anki import MODEL_ID, MODEL_NAME
from tests.anki_collection import gui_import_options, import_apkg, notes_by_guid
from tests.conftest import Result, Workspace, load_json
from tests.fakes.ankiconnect_server import KEY_ERROR, FakeAnkiConnect

GONE = "mksap::gone"
#: What a sync with nothing to do may ask Anki: reads only.
READS = {
    "version",
    "getActiveProfile",
    "multi",
    "modelNamesAndIds",
    "deckNames",
    "findNotes",
    "modelFieldNames",
    "notesInfo",
}


# -- helpers --------------------------------------------------------------------------------
def sync(ws: Workspace, anki: FakeAnkiConnect, *args: str) -> Result:
    """`mksap sync anki ARGS` on this workspace's locations and the fake's URL."""
    return ws.cli("sync", "anki", *args, *ws.location_flags(), "--url", anki.url, locations=False)


def sync_json(ws: Workspace, anki: FakeAnkiConnect, *args: str) -> dict[str, Any]:
    result = sync(ws, anki, *args, "--json")
    assert result.code == 0, result.text
    envelope = json.loads(result.out)
    assert envelope["mksap"] == 1 and envelope["kind"] in ("sync", "sync-rollback")
    return envelope["data"]


def stable_ids(lines: list[dict[str, Any]]) -> set[str]:
    return {line["stable_id"] for line in lines}


def collection(anki: FakeAnkiConnect) -> dict[str, tuple[int, dict[str, str], tuple[str, ...]]]:
    """guid -> (note id, fields, sorted tags) of every note in the fake's collection."""
    with anki.collection() as col:
        return {g: (n.note_id, n.fields, tuple(sorted(n.tags))) for g, n in notes_by_guid(col).items()}


def notes_by_guid_of(anki: FakeAnkiConnect) -> dict[str, Any]:
    with anki.collection() as col:
        return notes_by_guid(col)


def by_stable_id(anki: FakeAnkiConnect) -> dict[str, tuple[int, dict[str, str], tuple[str, ...]]]:
    notes = collection(anki).values()
    found = {fields["StableId"]: (nid, fields, tags) for nid, fields, tags in notes}
    assert len(found) == len(notes), "two notes share a StableId"
    return found


def export_deck(ws: Workspace, name: str, *args: str) -> tuple[Path, dict[str, tuple[dict[str, str], list[str]]]]:
    """`mksap export anki -o NAME` and guid -> (fields, tags) of the notes it wrote."""
    path = ws.root / name
    result = ws.cli("export", "anki", "-o", str(path), *args, *ws.location_flags(), locations=False)
    assert result.code == 0, result.text
    with zipfile.ZipFile(path) as z:
        db = Path(z.extract("collection.anki2", ws.root / f"{name}.unzipped"))
    conn = sqlite3.connect(db)
    try:
        models = json.loads(conn.execute("select models from col").fetchone()[0])
        [names] = [[f["name"] for f in m["flds"]] for m in models.values()]
        rows = conn.execute("select guid, flds, tags from notes").fetchall()
    finally:
        conn.close()
    return path, {g: (dict(zip(names, flds.split("\x1f"), strict=True)), tags.split()) for g, flds, tags in rows}


def several_clozes(anki: FakeAnkiConnect, count: int) -> list[tuple[int, str]]:
    """(note id, StableId) of `count` notes with at least two clozes (single mode rewrites them)."""
    notes = sorted((nid, f["StableId"]) for nid, f, _ in collection(anki).values() if "{{c2::" in f["Text"])
    assert len(notes) >= count
    return notes[:count]


def edit_in_anki(anki: FakeAnkiConnect, note_id: int, *, extra: str | None = None, tag: str | None = None) -> None:
    """What the user does in Anki's editor: change a field or add a tag (Anki moves `mod`)."""
    with anki.collection() as col:
        note = col.get_note(note_id)
        if extra is not None:
            note["Extra"] = extra
        if tag is not None:
            note.tags.append(tag)
        col.update_note(note)
        col.db.execute("update notes set mod = mod + 5 where id = ?", note_id)  # later than the sync's second


def drop_last_critique_sentence(ws: Workspace, qid: str) -> None:
    path = ws.question_json(qid)
    doc = load_json(path)
    head, sep, _ = doc["critique"].rpartition(". ")
    assert sep, "the critique should have several sentences"
    doc["critique"] = head + "."
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def snapshots(ws: Workspace) -> list[Path]:
    return sorted((ws.cache / "sync" / "anki").glob("*/snapshots/*.json"))


@pytest.fixture
def anki(ws: Workspace) -> Iterator[FakeAnkiConnect]:
    with FakeAnkiConnect(ws.root / "anki" / "collection.anki2") as server:
        yield server


@pytest.fixture
def synced(built: Workspace, anki: FakeAnkiConnect) -> Workspace:
    """The examples built and synced once into the fake's empty collection."""
    result = sync(built, anki)
    assert result.code == 0, result.text
    return built


# -- tests ----------------------------------------------------------------------------------
def test_dry_run_changes_nothing_and_prints_the_diff(built: Workspace, anki: FakeAnkiConnect) -> None:
    _, exported = export_deck(built, "deck.apkg")
    with anki.collection() as col:
        decks_before = sorted(d.name for d in col.decks.all_names_and_ids())
        models_before = sorted(m.name for m in col.models.all_names_and_ids())

    result = sync(built, anki, "--dry-run")
    assert result.code == 0, result.text
    assert f"added ({len(exported)}):" in result.out
    first = min(fields["StableId"] for fields, _ in exported.values())
    assert f"  + {first}  " in result.out  # the first lines of the diff name the notes
    assert f"… and {len(exported) - 10} more" in result.out
    assert f"dry run, nothing changed; a sync would make: {len(exported)} added, 0 updated" in result.out

    with anki.collection() as col:
        assert col.note_count() == 0
        assert sorted(d.name for d in col.decks.all_names_and_ids()) == decks_before
        assert sorted(m.name for m in col.models.all_names_and_ids()) == models_before
    assert set(c["action"] for c in anki.calls) <= READS
    assert not (built.cache / "sync").exists()  # no state, no snapshot


def test_first_sync_adds_every_note_with_mksaps_guids_and_a_rerun_changes_nothing(
    built: Workspace, anki: FakeAnkiConnect
) -> None:
    result = sync(built, anki)
    assert result.code == 0, result.text
    deck, exported = export_deck(built, "deck.apkg")
    assert f"synced: {len(exported)} added, 0 updated" in result.out
    assert "--rollback" in result.out and len(snapshots(built)) == 1

    notes = collection(anki)
    assert set(notes) == set(exported)  # the GUIDs of `mksap export anki`, not random ones
    for guid, (_, fields, tags) in notes.items():
        assert fields == exported[guid][0] and sorted(tags) == sorted(exported[guid][1])
    with anki.collection() as col:
        model = col.models.by_name(MODEL_NAME)
        assert model is not None and model["id"] == MODEL_ID  # the exporter's note type, with its id
        decks = {col.decks.name(card.did) for nid in col.find_notes("") for card in col.get_note(nid).cards()}
    assert decks == {f"MKSAP::{system}" for system in {f["StableId"][:2] for f, _ in exported.values()}}
    batched = [c for c in anki.calls if c["action"] != "multi"]
    assert len(anki.calls) - len(batched) <= 12  # hundreds of notes, a dozen requests at most

    state = (built.cache / "sync" / "anki" / "User_1" / "state.json").read_bytes()
    mods = {g: n.mod for g, n in notes_by_guid_of(anki).items()}
    anki.calls.clear()
    again = sync(built, anki)
    assert again.code == 0, again.text
    counts = f"0 added, 0 updated, 0 skipped (edited in Anki), 0 tagged gone, {len(exported)} unchanged"
    assert f"nothing to sync: Anki is up to date ({counts}" in again.out
    assert set(c["action"] for c in anki.calls) <= READS
    assert collection(anki) == notes and {g: n.mod for g, n in notes_by_guid_of(anki).items()} == mods
    assert (built.cache / "sync" / "anki" / "User_1" / "state.json").read_bytes() == state
    assert len(snapshots(built)) == 1

    # Anki's own import of the export (the GUI's defaults) matches every synced note by GUID
    with anki.collection() as col:
        summary = import_apkg(col, deck, gui_import_options(col))
        assert not summary.new and not summary.conflicting and summary.found_notes == len(exported)
        assert col.note_count() == len(exported)


def test_a_note_edited_in_anki_is_kept_and_reported_skipped(
    synced: Workspace, anki: FakeAnkiConnect, monkeypatch: pytest.MonkeyPatch
) -> None:
    (edited, edited_sid), (tagged, tagged_sid) = several_clozes(anki, 2)
    [(single, single_sid)] = [
        (nid, f["StableId"]) for nid, f, _ in collection(anki).values() if "{{c2::" not in f["Text"]
    ][:1]
    edit_in_anki(anki, edited, extra="my mnemonic")
    edit_in_anki(anki, tagged, tag="mine")  # a tag of the user's own is not an edit of ours
    edit_in_anki(anki, single, extra="my note")  # mksap has nothing new for this one
    before = by_stable_id(anki)

    monkeypatch.setenv("MKSAP_ANKI_CLOZE_MODE", "single")  # mksap's side changes: one cloze each
    report = sync_json(synced, anki)
    assert stable_ids(report["skipped_edited"]) == {edited_sid}
    assert tagged_sid in stable_ids(report["updated"])
    assert edited_sid not in stable_ids(report["updated"]) and single_sid not in stable_ids(report["updated"])
    assert not report["added"] and not report["gone"] and not report["failed"]

    after = by_stable_id(anki)
    assert after[edited_sid] == before[edited_sid]  # the user's edit stands, untouched
    assert after[edited_sid][1]["Extra"] == "my mnemonic"
    assert after[single_sid] == before[single_sid]
    assert "{{c2::" not in after[tagged_sid][1]["Text"] and "mine" in after[tagged_sid][2]
    assert after[tagged_sid][0] == before[tagged_sid][0]  # the same note: its history stays

    text = sync(synced, anki)  # still withheld, and said so again; nothing else to do
    assert text.code == 0, text.text
    assert "skipped, edited in Anki since the last sync (1):" in text.out and edited_sid in text.out
    assert "0 added, 0 updated, 1 skipped (edited in Anki), 0 tagged gone" in text.out


def test_a_statement_removed_from_the_source_is_tagged_gone(synced: Workspace, anki: FakeAnkiConnect) -> None:
    _, exported_before = export_deck(synced, "before.apkg")
    drop_last_critique_sentence(synced, "cvmcq24101")
    rebuilt = synced.cli("run", "-q")
    assert rebuilt.code == 0, rebuilt.text
    _, exported_after = export_deck(synced, "after.apkg")
    vanished = {f["StableId"] for f, _ in exported_before.values()} - {
        f["StableId"] for f, _ in exported_after.values()
    }
    assert vanished and all(sid.startswith("cvmcq24101/") for sid in vanished)
    count_before = len(collection(anki))

    result = sync(synced, anki)
    assert result.code == 0, result.text
    assert f"gone from mksap, tagged {GONE} ({len(vanished)}):" in result.out
    notes = by_stable_id(anki)
    assert {sid for sid, (_, _, tags) in notes.items() if GONE in tags} == vanished  # tagged, not deleted
    assert len(notes) >= count_before
    assert "nothing to sync" in sync(synced, anki).out  # tagged once
    with anki.collection() as col:  # the user keeps one as their own: the tag stays off
        kept = min(vanished)
        col.tags.bulk_remove([notes[kept][0]], GONE)
    assert "nothing to sync" in sync(synced, anki).out
    assert GONE not in by_stable_id(anki)[kept][2]


def test_rollback_restores_the_state_before_the_last_sync_then_an_apkg_import_adds_no_duplicate(
    built: Workspace, anki: FakeAnkiConnect, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = sync(built, anki, "cv")  # the state to come back to: the cv notes only
    assert first.code == 0, first.text
    s1 = collection(anki)
    assert s1 and all(fields["StableId"].startswith("cv") for _, fields, _ in s1.values())

    monkeypatch.setenv("MKSAP_ANKI_CLOZE_MODE", "single")  # updates the cv notes with several clozes
    drop_last_critique_sentence(built, "cvmcq24101")  # a cv note gone
    assert built.cli("run", "-q").code == 0
    second = sync_json(built, anki)  # every system: the others are added
    assert second["added"] and second["updated"] and second["gone"] and not second["failed"]
    assert collection(anki) != s1

    result = sync(built, anki, "--rollback")
    assert result.code == 0, result.text
    counts = (len(second["added"]), len(second["updated"]), len(second["gone"]))
    assert f"restored: {counts[0]} deleted, {counts[1]} put back, {counts[2]} un-gone, 0 left alone" in result.out
    assert collection(anki) == s1  # the same notes (note ids), fields and tags as before that sync

    # the state went back too: the same sync would make the same changes again
    again = sync_json(built, anki, "--dry-run")
    assert [stable_ids(again[k]) for k in ("added", "updated", "gone")] == [
        stable_ids(second[k]) for k in ("added", "updated", "gone")
    ]
    assert "nothing to roll back" not in sync(built, anki, "--rollback", "--dry-run").out  # the cv sync is next

    monkeypatch.delenv("MKSAP_ANKI_CLOZE_MODE")
    deck, exported = export_deck(built, "deck.apkg")
    with anki.collection() as col:
        summary = import_apkg(col, deck, gui_import_options(col))
    assert not summary.conflicting
    notes = by_stable_id(anki)  # asserts no StableId twice: no duplicate
    kept = {g for g in s1 if g in exported}
    assert len(summary.new) == len(exported) - len(kept)
    assert all(collection(anki)[g][0] == s1[g][0] for g in kept)  # matched by GUID, same notes
    assert len(notes) == len(set(exported) | set(s1))


def test_an_update_lost_in_ankis_browser_is_reported_and_retried(
    synced: Workspace, anki: FakeAnkiConnect, monkeypatch: pytest.MonkeyPatch
) -> None:
    [(open_note, open_sid)] = several_clozes(anki, 1)
    anki.show_in_browser(open_note)  # AnkiConnect answers success and keeps the old fields
    monkeypatch.setenv("MKSAP_ANKI_CLOZE_MODE", "single")
    result = sync(synced, anki)
    assert result.code == ExitCode.FAILED, result.text
    assert "failed (1):" in result.out and open_sid in result.out and "open in Anki's browser" in result.out

    anki.show_in_browser(None)
    report = sync_json(synced, anki)
    assert stable_ids(report["updated"]) == {open_sid} and not report["failed"]
    assert "{{c2::" not in by_stable_id(anki)[open_sid][1]["Text"]


# -- errors ---------------------------------------------------------------------------------
def one_line_error(result: Result) -> str:
    assert result.code == ExitCode.ERROR, result.text
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mksap: error: "), result.err
    return lines[0]


def test_anki_not_running_is_a_one_line_error(ws: Workspace) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = ws.cli("sync", "anki", "--url", f"http://127.0.0.1:{port}", *ws.location_flags(), locations=False)
    line = one_line_error(result)
    assert f"cannot reach AnkiConnect at http://127.0.0.1:{port} (connection refused)" in line
    assert "start Anki" in line


def test_a_wrong_api_key_is_a_one_line_error(ws: Workspace) -> None:
    with FakeAnkiConnect(ws.root / "anki" / "collection.anki2", api_key="s3cret") as anki:
        for key in (["--api-key", "wrong-key"], []):
            line = one_line_error(sync(ws, anki, *key))
            assert KEY_ERROR in line and "--api-key" in line and "wrong-key" not in line


def test_an_unexpected_protocol_version_is_a_one_line_error(ws: Workspace) -> None:
    class OlderAnkiConnect(FakeAnkiConnect):
        def handle(self, request: dict[str, Any]) -> Any:
            if request.get("action") == "version":
                return {"result": 5, "error": None}
            return super().handle(request)

    with OlderAnkiConnect(ws.root / "anki" / "collection.anki2") as anki:
        line = one_line_error(sync(ws, anki, "--dry-run"))
        assert "protocol version 5; mksap needs version 6" in line


def test_url_and_key_come_from_config_and_environment(built: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeAnkiConnect(built.root / "anki" / "collection.anki2", api_key="s3cret") as anki:
        (built.root / "mksap.toml").write_text(f'[plugins.anki-sync]\nurl = "{anki.url}"\n', encoding="utf-8")
        monkeypatch.setenv("MKSAP_ANKI_SYNC_API_KEY", "s3cret")
        result = built.cli("sync", "anki", "cv", "--dry-run", *built.location_flags(), locations=False)
        assert result.code == 0, result.text
        assert f"at {anki.url}:" in result.out and "s3cret" not in result.text


def test_rollback_leaves_alone_a_note_edited_since_the_sync(
    synced: Workspace, anki: FakeAnkiConnect, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = by_stable_id(anki)
    monkeypatch.setenv("MKSAP_ANKI_CLOZE_MODE", "single")
    updated = stable_ids(sync_json(synced, anki)["updated"])
    assert len(updated) >= 2
    after_sync = by_stable_id(anki)
    edited = min(updated)
    edit_in_anki(anki, after_sync[edited][0], extra="written after the sync")

    report = sync_json(synced, anki, "--rollback")
    assert stable_ids(report["kept_edited"]) == {edited}
    assert stable_ids(report["restored"]) == updated - {edited}
    now = by_stable_id(anki)
    assert (
        now[edited][1]["Extra"] == "written after the sync" and now[edited][1]["Text"] == after_sync[edited][1]["Text"]
    )
    assert {sid: now[sid] for sid in now if sid != edited} == {sid: before[sid] for sid in before if sid != edited}
    again = sync(synced, anki, "--rollback")  # the first sync is next: its notes are deleted, the edited one kept
    assert again.code == 0 and "left alone, edited in Anki since that sync (1):" in again.out
    assert set(by_stable_id(anki)) == {edited}
    assert "nothing to roll back" in sync(synced, anki, "--rollback").out


def test_notes_of_an_apkg_import_are_taken_over_not_duplicated(built: Workspace, anki: FakeAnkiConnect) -> None:
    deck, exported = export_deck(built, "deck.apkg")
    with anki.collection() as col:  # the first import, by hand in Anki
        assert len(import_apkg(col, deck, gui_import_options(col)).new) == len(exported)
        # three notes as an earlier mksap exported them: positional ids in StableId
        renamed: dict[int, str] = {}
        for position, nid in enumerate(sorted(col.find_notes(""))[:3], start=1):
            note = col.get_note(nid)
            renamed[nid] = note["StableId"]
            note["StableId"] = f"{note['StableId'].split('/')[0]}/c{position:02d}.1"
            col.update_note(note)
    before = collection(anki)

    report = sync_json(built, anki)
    assert not report["added"] and not report["gone"] and not report["skipped_edited"]
    assert {(line["note_id"], line["stable_id"], line["detail"]) for line in report["updated"]} == {
        (nid, sid, "StableId") for nid, sid in renamed.items()
    }
    assert report["unchanged"] == len(exported) - 3
    after = collection(anki)
    assert set(after) == set(before)  # the same notes (GUIDs), none added
    assert {g: n[1] for g, n in after.items()} == {g: f for g, (f, _) in exported.items()}
    assert "nothing to sync" in sync(built, anki).out
