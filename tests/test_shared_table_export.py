"""A table shared by several questions is one note per export, tagged with every question.

The bank: the examples' cvmcq24102 and npmcq24102, which carry the same clinical table file
(cvtab24101.html, byte for byte), and cvmcq24198, a near miss: a table of the same file name
with one row changed, so its other rows have the same row units and statements but it is a
different table. Built offline through the real CLI; the decks are imported into real Anki
collections with Anki's own library, and synced through the fake AnkiConnect.

What a deck exported before copies were merged looks like: one note per question. The export
writes that deck while the two table files differ (an HTML comment added to one copy), which is
what every earlier export did for copies that now merge.
"""

from __future__ import annotations

import csv
import html
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import genanki
import pytest

from mksap.contracts.exporter import text_digest
from tests.anki_collection import NoteState, fresh_collection, import_apkg, notes_by_guid
from tests.conftest import EXAMPLES, Result, Workspace, load_json
from tests.fakes.ankiconnect_server import FakeAnkiConnect
from tests.test_card_history import plain, study_everything
from tests.test_export import accepted
from tests.test_sync_anki import GONE, sync, sync_json

ORIGINAL, SHARER, NEAR = "cvmcq24102", "npmcq24102", "cvmcq24198"
TABLE = "cvtab24101.html"
ROW, NEAR_ROW = "CKD with albuminuria", "CKD with heavy proteinuria"


# -- the bank ------------------------------------------------------------------------------------
@pytest.fixture
def bank(ws: Workspace) -> Workspace:
    """The three questions, built."""
    shutil.rmtree(ws.data)
    for qid in (ORIGINAL, SHARER):
        shutil.copytree(EXAMPLES / qid[:2] / qid, ws.data / qid[:2] / qid)
    near = ws.data / "cv" / NEAR
    shutil.copytree(EXAMPLES / "cv" / ORIGINAL, near)
    doc = load_json(near / f"{ORIGINAL}.json")
    (near / f"{ORIGINAL}.json").unlink()
    doc["question_id"] = NEAR
    (near / f"{NEAR}.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")
    table = near / "tables" / TABLE
    content = table.read_text(encoding="utf-8")
    assert content.count(ROW) == 1
    table.write_text(content.replace(ROW, NEAR_ROW), encoding="utf-8")
    assert (ws.data / "np" / SHARER / "tables" / TABLE).read_bytes() == (
        ws.data / "cv" / ORIGINAL / "tables" / TABLE
    ).read_bytes()
    result = ws.cli("run", "-q")
    assert result.code == 0, result.text
    return ws


def table_statements(ws: Workspace, qid: str) -> dict[str, str]:
    """statement id -> text of the accepted statements a question built from TABLE."""
    doc = load_json(ws.output_json(qid))
    found = {
        s["id"]: s["statement"]
        for s in doc["table_statements"]["statements"]
        if s["table_source"] == TABLE and not any(f["severity"] == "error" for f in s["findings"])
    }
    assert found, f"{qid} built no statement from {TABLE}"
    return found


def export(ws: Workspace, exporter: str, path: Path, *args: str) -> Result:
    result = ws.cli("export", exporter, "-o", str(path), *args, *ws.location_flags(), locations=False)
    assert result.code == 0, result.text
    return result


def export_json(ws: Workspace, exporter: str, path: Path, *args: str) -> dict[str, Any]:
    return json.loads(export(ws, exporter, path, "--json", *args).out)["data"]


def stable_id(note: NoteState) -> str:
    return note.fields["StableId"]


def of_question(notes: dict[str, NoteState], qid: str) -> dict[str, NoteState]:
    """The notes of `qid`'s table statements, by GUID (the StableId names the question that keeps a note)."""
    return {g: n for g, n in notes.items() if stable_id(n).startswith(f"{qid}/t:")}


@pytest.fixture
def differing_copy(bank: Workspace) -> Iterator[Path]:
    """SHARER's copy of the table made to differ (a comment), as if copies were never merged;
    put back on exit if the test has not already."""
    path = bank.data / "np" / SHARER / "tables" / TABLE
    original = path.read_bytes()
    path.write_bytes(original + b"\n<!-- the copy of an earlier export -->\n")
    yield path
    path.write_bytes(original)


# -- the deck ------------------------------------------------------------------------------------
def test_a_shared_table_is_one_note_tagged_with_both_questions_and_a_rebuild_keeps_its_history(
    bank: Workspace, tmp_path: Path
) -> None:
    shared = table_statements(bank, ORIGINAL)
    assert table_statements(bank, SHARER) == shared
    deck = bank.root / "deck.apkg"
    report = export_json(bank, "anki", deck)
    assert report["shared"] == len(shared) and report["merged"] == {} and report["disappeared"] == []

    with fresh_collection(tmp_path / "anki") as col:
        assert not import_apkg(col, deck).updated
        notes = notes_by_guid(col)
        kept = of_question(notes, ORIGINAL)
        # each statement of the table once, as the first question's note, for both questions
        assert of_question(notes, SHARER) == {}
        assert sorted(plain(n.fields["Text"]) for n in kept.values()) == sorted(shared.values())
        for guid, note in kept.items():
            sid = stable_id(note).partition("/")[2]
            assert guid == genanki.guid_for("mksap", ORIGINAL, sid)  # what a deck of ORIGINAL alone has
            assert {f"mksap::{ORIGINAL}", f"mksap::{SHARER}", "mksap::cv", "mksap::np"} <= set(note.tags)
            assert html.unescape(note.fields["Source"]) == f"{ORIGINAL}, {SHARER} · cv, np · table · {TABLE}"
        # the near miss: the same file name, another table; its rows are notes of their own
        near = of_question(notes, NEAR)
        assert sorted(plain(n.fields["Text"]) for n in near.values()) == sorted(table_statements(bank, NEAR).values())
        assert all(f"mksap::{ORIGINAL}" not in n.tags and f"mksap::{SHARER}" not in n.tags for n in near.values())
        same_text = {plain(n.fields["Text"]) for n in near.values()} & set(shared.values())
        assert same_text, "the near miss should share rows with the shared table"

        answered = study_everything(col)
        before = notes_by_guid(col)

        assert bank.cli("run", "-q", "--force").code == 0
        again = export_json(bank, "anki", deck, "--force")  # the rebuild wrote the same outputs: up to date
        assert again["written"] is not None and again["shared"] == len(shared)
        assert again["merged"] == {} and again["disappeared"] == [] and again["carried"] == {}
        second = import_apkg(col, deck)
        after = notes_by_guid(col)

    assert second.new == () and second.updated == ()  # the same notes, unchanged: same mod
    assert {g: (n.note_id, n.card_ids, n.revlog, n.tags) for g, n in after.items()} == {
        g: (n.note_id, n.card_ids, n.revlog, n.tags) for g, n in before.items()
    }
    assert sum(n.revlog for n in after.values()) == len(answered)


def test_a_deck_exported_before_the_merge_keeps_the_first_questions_notes_and_their_history(
    bank: Workspace, differing_copy: Path, tmp_path: Path
) -> None:
    deck = bank.root / "deck.apkg"
    shared = table_statements(bank, ORIGINAL)
    old = export_json(bank, "anki", deck)
    assert old["shared"] == 0  # one note per question, as before copies were merged
    with fresh_collection(tmp_path / "anki") as col:
        import_apkg(col, deck)
        answered = study_everything(col)
        before = notes_by_guid(col)
        kept, copies = of_question(before, ORIGINAL), of_question(before, SHARER)
        assert len(kept) == len(copies) == len(shared)

        differing_copy.write_bytes((bank.data / "cv" / ORIGINAL / "tables" / TABLE).read_bytes())
        result = export(bank, "anki", deck)
        told = next(line for line in result.out.splitlines() if "now part of the note of another question" in line)
        assert told.startswith(f"{len(shared)} note(s) of the previous export are now part of the note")
        search = told.split("find them in Anki's browser with: ", 1)[1]
        assert "no note of the previous export is gone" in result.out
        # the search the summary gives finds exactly the old copies
        assert set(col.find_notes(search)) == {n.note_id for n in copies.values()}

        again = import_apkg(col, deck)
        after = notes_by_guid(col)

    assert again.new == ()  # no new duplicate
    assert set(again.updated) == {n.note_id for n in kept.values()}  # now tagged with both questions
    assert set(after) == set(before)
    for guid, note in kept.items():
        assert (after[guid].note_id, after[guid].card_ids, after[guid].revlog) == (
            note.note_id,
            note.card_ids,
            note.revlog,
        )
        assert f"mksap::{SHARER}" in after[guid].tags and f"mksap::{SHARER}" not in note.tags
    assert {g: after[g] for g in copies} == copies  # the old copies: left as they were, history and all
    assert sum(n.revlog for n in after.values()) == len(answered)

    sidecar = load_json(deck.with_name("deck.apkg.guids.json"))
    assert sidecar["merged_into"] == {f"{SHARER}/{sid}": f"{ORIGINAL}/{sid}" for sid in shared}
    assert set(sidecar["merged"]) == set(copies)
    forced = export_json(bank, "anki", deck, "--force")  # said once; never reported as gone
    assert forced["merged"] == {} and forced["disappeared"] == [] and forced["shared"] == len(shared)


def test_a_deck_of_the_other_question_alone_keeps_its_notes_when_both_are_exported(
    bank: Workspace, tmp_path: Path
) -> None:
    deck = bank.root / "deck.apkg"
    shared = table_statements(bank, SHARER)
    export(bank, "anki", deck, SHARER)
    with fresh_collection(tmp_path / "anki") as col:
        import_apkg(col, deck)
        study_everything(col)
        before = notes_by_guid(col)
        report = export_json(bank, "anki", deck)
        again = import_apkg(col, deck)
        after = notes_by_guid(col)
    # the copy the file already had keeps the note: SHARER's history is not left behind
    assert report["merged"] == {} and report["shared"] == len(shared)
    kept = of_question(after, SHARER)
    assert set(kept) == set(of_question(before, SHARER)) and of_question(after, ORIGINAL) == {}
    assert all(f"mksap::{ORIGINAL}" in n.tags for n in kept.values())
    assert set(again.updated) == {n.note_id for n in kept.values()}
    assert all(after[g].revlog == n.revlog > 0 for g, n in of_question(before, SHARER).items())


# -- the other exports and the decisions -----------------------------------------------------------
def test_csv_jsonl_and_the_review_page_hold_it_once(bank: Workspace, tmp_path: Path) -> None:
    shared = table_statements(bank, ORIGINAL)
    apkg, csv_path, jsonl, page = (tmp_path / n for n in ("d.apkg", "d.csv", "d.jsonl", "review.html"))
    written = {name: export_json(bank, name, path) for name, path in (("anki", apkg), ("csv", csv_path))}
    assert written["csv"]["written"]["items"] == written["anki"]["written"]["items"] == len(accepted(bank))

    body = [line for line in csv_path.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    rows = list(csv.reader(body, delimiter="\t"))
    of_table = [r for r in rows if f"· {TABLE} · " in r[3] and f"mksap::{NEAR}" not in r[4].split()]
    assert len(of_table) == len(shared)
    guids = {r[0] for r in of_table}
    assert guids == {genanki.guid_for("mksap", ORIGINAL, sid) for sid in shared}  # the .apkg's GUIDs
    assert all({f"mksap::{ORIGINAL}", f"mksap::{SHARER}"} <= set(r[4].split()) for r in of_table)

    export(bank, "jsonl", jsonl)
    records = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]
    lines = [r for r in records if r["table_source"] == TABLE and r["question_id"] != NEAR]
    assert sorted(r["statement_id"] for r in lines) == sorted(shared)
    assert all(r["question_id"] == ORIGINAL for r in lines)
    assert all(
        r["shared_with"] == [{"question_id": SHARER, "system": "np", "statement_id": r["statement_id"]}] for r in lines
    )
    assert [r for r in records if r["question_id"] == NEAR and r["table_source"] == TABLE]
    assert all(r["shared_with"] == [] for r in records if r not in lines)

    result = export(bank, "review", page)
    text = page.read_text(encoding="utf-8")
    assert f"{len(accepted(bank))} statements from 3 questions" in result.out
    assert text.count(f"also in {SHARER}") == len(shared)
    assert not re.search(rf'data-sid="{SHARER}/t:', text)


def decision(action: str, statement: str, text: str | None = None) -> dict[str, Any]:
    return {"action": action, "text": text, "source_digest": text_digest(statement), "at": "2025-01-01T00:00:00Z"}


def test_a_decision_on_either_copy_applies_to_the_one_note(bank: Workspace, tmp_path: Path) -> None:
    shared = table_statements(bank, ORIGINAL)
    rejected, edited, *_ = sorted(shared)
    [candidate, *_] = next(
        s["cloze_candidates"]
        for s in load_json(bank.output_json(SHARER))["table_statements"]["statements"]
        if s["id"] == edited
    )
    new_text = f"Reviewed: {candidate} is a fact of the shared table."
    decisions = {
        f"{SHARER}/{rejected}": decision("reject", shared[rejected]),  # on the copy that does not keep the note
        f"{SHARER}/{edited}": decision("edit", shared[edited], new_text),
    }
    path = tmp_path / "mksap-decisions.json"
    path.write_text(json.dumps({"mksap": 1, "kind": "decisions", "decisions": decisions}), encoding="utf-8")
    result = bank.cli("decisions", "import", str(path), *bank.location_flags(), locations=False)
    assert result.code == 0 and "imported 2 decision(s)" in result.out, result.text

    out = export(bank, "jsonl", tmp_path / "d.jsonl")
    assert "1 rejected in review" in out.out  # one statement, however many copies
    records = {
        (r["question_id"], r["statement_id"]): r
        for r in map(json.loads, (tmp_path / "d.jsonl").read_text(encoding="utf-8").splitlines())
    }
    assert (ORIGINAL, rejected) not in records and (SHARER, rejected) not in records
    assert records[ORIGINAL, edited]["statement"] == new_text
    assert (SHARER, edited) not in records

    export(bank, "anki", tmp_path / "d.apkg")
    with fresh_collection(tmp_path / "anki") as col:
        import_apkg(col, tmp_path / "d.apkg")
        notes = {stable_id(n): n for n in notes_by_guid(col).values()}
    assert f"{ORIGINAL}/{rejected}" not in notes and f"{SHARER}/{rejected}" not in notes
    assert plain(notes[f"{ORIGINAL}/{edited}"].fields["Text"]) == new_text

    status = json.loads(bank.cli("status", "--json").out)["data"]["review"]
    assert status["decided"] == 2 and status["statements"] == len(accepted(bank))  # each statement once


# -- sync ------------------------------------------------------------------------------------------
@pytest.fixture
def anki(ws: Workspace) -> Iterator[FakeAnkiConnect]:
    with FakeAnkiConnect(ws.root / "anki" / "collection.anki2") as server:
        yield server


def test_sync_adds_a_shared_tables_notes_once_and_tags_old_copies_gone(
    bank: Workspace, differing_copy: Path, anki: FakeAnkiConnect
) -> None:
    shared = table_statements(bank, ORIGINAL)
    first = sync_json(bank, anki)  # while the copies differ: one note per question, as earlier syncs made
    with anki.collection() as col:
        before = {stable_id(n): n for n in notes_by_guid(col).values()}
    assert {f"{q}/{sid}" for q in (ORIGINAL, SHARER) for sid in shared} <= set(before)
    assert len(first["added"]) == len(before)

    differing_copy.write_bytes((bank.data / "cv" / ORIGINAL / "tables" / TABLE).read_bytes())
    result = sync(bank, anki)
    assert result.code == 0, result.text
    assert f"{len(shared)} note(s) are copies of a statement of a table shared by several questions" in result.out
    report = sync_json(bank, anki, "--dry-run")
    assert report["added"] == [] and report["gone"] == [] and report["updated"] == []  # done: nothing left
    with anki.collection() as col:
        after = {stable_id(n): n for n in notes_by_guid(col).values()}
    assert set(after) == set(before)  # nothing added, nothing deleted
    for sid in shared:
        kept, copy = after[f"{ORIGINAL}/{sid}"], after[f"{SHARER}/{sid}"]
        assert kept.note_id == before[f"{ORIGINAL}/{sid}"].note_id
        assert {f"mksap::{ORIGINAL}", f"mksap::{SHARER}"} <= set(kept.tags) and GONE not in kept.tags
        assert GONE in copy.tags and copy.fields == before[f"{SHARER}/{sid}"].fields
    assert "nothing to sync" in sync(bank, anki).out


def test_a_fresh_sync_writes_each_statement_of_the_shared_table_once(bank: Workspace, anki: FakeAnkiConnect) -> None:
    shared = table_statements(bank, ORIGINAL)
    report = sync_json(bank, anki)
    assert report["notes"] == len(accepted(bank)) == len(report["added"])
    with anki.collection() as col:
        notes = notes_by_guid(col)
    kept = of_question(notes, ORIGINAL)
    assert of_question(notes, SHARER) == {} and len(kept) == len(shared)
    assert all(g == genanki.guid_for("mksap", ORIGINAL, stable_id(n).partition("/")[2]) for g, n in kept.items())
    assert all({f"mksap::{ORIGINAL}", f"mksap::{SHARER}", "mksap::np"} <= set(n.tags) for n in kept.values())


def test_a_sync_of_the_other_question_alone_keeps_its_notes_when_both_are_synced(
    bank: Workspace, anki: FakeAnkiConnect
) -> None:
    shared = table_statements(bank, SHARER)
    sync_json(bank, anki, SHARER)
    with anki.collection() as col:
        before = of_question(notes_by_guid(col), SHARER)
    report = sync_json(bank, anki)
    assert report["gone"] == []
    assert {line["stable_id"] for line in report["updated"]} == {f"{SHARER}/{sid}" for sid in shared}
    assert not any(line["stable_id"].startswith(f"{ORIGINAL}/t:") for line in report["added"])
    with anki.collection() as col:
        after = notes_by_guid(col)
    assert set(of_question(after, SHARER)) == set(before) and of_question(after, ORIGINAL) == {}
    assert all(f"mksap::{ORIGINAL}" in n.tags and GONE not in n.tags for n in of_question(after, SHARER).values())
