"""The fake AnkiConnect speaks the add-on's protocol over real HTTP, on a real collection; and
the helpers in tests/anki_collection.py import, study and read back real .apkg files."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.anki_collection import (
    fresh_collection,
    gui_import_options,
    import_apkg,
    notes_by_guid,
    study_due_cards,
)
from tests.conftest import EXAMPLES
from tests.fakes.ankiconnect_server import DUPLICATE_ERROR, KEY_ERROR, FakeAnkiConnect

MODEL = "mksap cloze"
FIELDS = ["Text", "Extra", "Source", "StableId"]
DECK = "MKSAP::cv"


# -- client ---------------------------------------------------------------------------------
def post(url: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """(status, body) of one POST; an HTTP error status is returned, not raised."""
    request = urllib.request.Request(url, data=body, headers=headers or {}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def call(anki: FakeAnkiConnect, request: dict[str, Any], **headers: str) -> Any:
    """The parsed reply to one request object; asserts HTTP 200, as the add-on always sends."""
    status, raw = post(anki.url, json.dumps(request).encode(), headers)
    assert status == 200, raw
    return json.loads(raw)


def invoke(anki: FakeAnkiConnect, action: str, key: str | None = None, **params: Any) -> Any:
    """`action` at version 6; returns the result, fails the test on an error reply."""
    request: dict[str, Any] = {"action": action, "version": 6, "params": params}
    if key is not None:
        request["key"] = key
    reply = call(anki, request)
    assert set(reply) == {"result", "error"}, reply
    assert reply["error"] is None, reply["error"]
    return reply["result"]


def error_of(anki: FakeAnkiConnect, action: str, **params: Any) -> str:
    reply = call(anki, {"action": action, "version": 6, "params": params})
    assert reply["result"] is None, reply
    assert isinstance(reply["error"], str) and reply["error"], reply
    return reply["error"]


def note_spec(text: str, deck: str = DECK, **options: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "deckName": deck,
        "modelName": MODEL,
        "fields": {"Text": text, "Extra": "", "Source": "test", "StableId": "t/" + "".join(filter(str.isalnum, text))},
        "tags": ["mksap::test"],
    }
    if options:
        spec["options"] = options
    return spec


def create_mksap_model(anki: FakeAnkiConnect) -> dict[str, Any]:
    return invoke(
        anki,
        "createModel",
        modelName=MODEL,
        inOrderFields=FIELDS,
        css=".card { color: #111; }",
        isCloze=True,
        cardTemplates=[{"Name": "Cloze", "Front": "{{cloze:Text}}", "Back": "{{cloze:Text}}<br>{{Extra}}"}],
    )


# -- fixtures -------------------------------------------------------------------------------
@pytest.fixture
def anki(isolated_env: Path) -> Iterator[FakeAnkiConnect]:
    with FakeAnkiConnect(isolated_env / "anki" / "collection.anki2") as server:
        yield server


@pytest.fixture
def anki_with_model(anki: FakeAnkiConnect) -> FakeAnkiConnect:
    create_mksap_model(anki)
    invoke(anki, "createDeck", deck=DECK)
    return anki


@dataclass(frozen=True)
class Decks:
    """The example bank exported twice by mksap: `newer` a second later than `first` (same content)."""

    first: Path
    newer: Path
    stable_ids: dict[str, str]  # guid -> StableId field, read from `first`'s own SQLite


def apkg_notes(package: Path, workdir: Path) -> dict[str, str]:
    """guid -> StableId (4th field) of every note in an .apkg, read straight from its SQLite."""
    workdir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(package) as z:
        db = Path(z.extract("collection.anki2", workdir))
    conn = sqlite3.connect(db)
    try:
        return {guid: flds.split("\x1f")[3] for guid, flds in conn.execute("select guid, flds from notes")}
    finally:
        conn.close()


@pytest.fixture(scope="module")
def mksap_decks(tmp_path_factory: pytest.TempPathFactory) -> Decks:
    """Build the bundled examples with the real `mksap` CLI (offline provider, private HOME
    and caches) and export them as an Anki deck, twice."""
    root = tmp_path_factory.mktemp("mksap-build")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MKSAP_", "ANTHROPIC_"))}
    env.update(
        HOME=str(root / "home"),
        XDG_CONFIG_HOME=str(root / "home" / ".config"),
        XDG_CACHE_HOME=str(root / "home" / ".cache"),
        MKSAP_USER_CONFIG=str(root / "no-user-config.toml"),
        MKSAP_LLM_CACHE_DIR=str(root / "llm"),
    )
    (root / "home").mkdir()
    shutil.copytree(EXAMPLES, root / "data")
    mksap = str(Path(sys.executable).parent / "mksap")
    where = ["--data", str(root / "data"), "--out", str(root / "out"), "--cache-dir", str(root / "cache")]

    def run(*args: str) -> None:
        proc = subprocess.run([mksap, *args, *where], cwd=root, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr

    run("run")
    run("export", "anki", "-o", str(root / "deck.apkg"))
    first_second = int(time.time())
    while int(time.time()) == first_second:  # note mtimes are whole seconds
        time.sleep(0.05)
    run("export", "anki", "-o", str(root / "deck-newer.apkg"))
    stable_ids = apkg_notes(root / "deck.apkg", root / "unzipped")
    assert len(stable_ids) > 20, "the example bank should give more notes than a day's new cards"
    return Decks(root / "deck.apkg", root / "deck-newer.apkg", stable_ids)


# -- protocol -------------------------------------------------------------------------------
def test_version_permission_and_envelopes(anki: FakeAnkiConnect) -> None:
    assert call(anki, {"action": "version", "version": 6}) == {"result": 6, "error": None}
    assert invoke(anki, "requestPermission") == {"permission": "granted", "requireApikey": False, "version": 6}
    # no version means 4: a success is the bare result, a failure still an error object
    assert call(anki, {"action": "version"}) == 6
    assert call(anki, {"action": "deckNames", "version": 4}) == ["Default"]
    assert call(anki, {"action": "nope", "version": 4}) == {"result": None, "error": "unsupported action"}
    assert call(anki, {"action": "nope", "version": 6}) == {"result": None, "error": "unsupported action"}
    # an empty body is the add-on's banner, as a browser visiting the port sees it
    assert post(anki.url, b"") == (200, b"AnkiConnect v.6")


def test_bad_requests_answer_error_strings_with_http_200(anki: FakeAnkiConnect) -> None:
    status, raw = post(anki.url, b"{not json")
    assert status == 200 and json.loads(raw)["error"].startswith("Expecting property name")
    assert call(anki, {"version": 6})["error"] == "'action' is a required property"
    assert call(anki, {"action": "deckNames", "version": "6"})["error"] == "'6' is not of type 'integer'"
    assert call(anki, {"action": "deckNames", "version": 6, "params": []})["error"] == "[] is not of type 'object'"
    assert "unexpected keyword argument 'bogus'" in error_of(anki, "deckNames", bogus=1)
    assert "missing 1 required positional argument: 'deck'" in error_of(anki, "createDeck")


def test_api_key_is_required_when_configured(isolated_env: Path) -> None:
    with FakeAnkiConnect(isolated_env / "anki" / "collection.anki2", api_key="s3cret") as anki:
        assert call(anki, {"action": "deckNames", "version": 6}) == {"result": None, "error": KEY_ERROR}
        assert call(anki, {"action": "deckNames", "version": 6, "key": "wrong"})["error"] == KEY_ERROR
        assert invoke(anki, "deckNames", key="s3cret") == ["Default"]
        # requestPermission needs no key and says one is required
        assert invoke(anki, "requestPermission")["requireApikey"] is True
        assert anki.calls[0] == {"action": "deckNames", "params": {}}


def test_a_key_sent_to_a_server_without_one_is_refused(anki: FakeAnkiConnect) -> None:
    # the add-on compares `key != configured key`, and an unset key is null
    assert call(anki, {"action": "deckNames", "version": 6, "key": "anything"})["error"] == KEY_ERROR


def test_foreign_origins_are_forbidden_and_denied(anki: FakeAnkiConnect) -> None:
    body = json.dumps({"action": "deckNames", "version": 6}).encode()
    assert post(anki.url, body, {"Origin": "https://evil.example"}) == (403, b"")
    assert post(anki.url, body, {"Origin": "http://localhost"})[0] == 200
    ask = {"action": "requestPermission", "version": 6}
    assert call(anki, ask, Origin="https://evil.example") == {"result": {"permission": "denied"}, "error": None}


# -- models, decks, notes -------------------------------------------------------------------
def test_create_model_deck_add_find_and_read_back(anki: FakeAnkiConnect) -> None:
    model = create_mksap_model(anki)
    assert model["name"] == MODEL and model["type"] == 1 and model["css"] == ".card { color: #111; }"
    assert [t["name"] for t in model["tmpls"]] == ["Cloze"]
    assert invoke(anki, "modelNamesAndIds")[MODEL] == model["id"]
    assert MODEL in invoke(anki, "modelNames")
    assert invoke(anki, "modelFieldNames", modelName=MODEL) == FIELDS
    again = {"modelName": MODEL, "inOrderFields": ["A"], "cardTemplates": [{"Front": "{{A}}", "Back": ""}]}
    assert error_of(anki, "createModel", **again) == "Model name already exists"
    assert error_of(anki, "modelFieldNames", modelName="nope") == "model was not found: nope"

    deck_id = invoke(anki, "createDeck", deck=DECK)
    assert invoke(anki, "createDeck", deck=DECK) == deck_id  # creating again returns the same deck
    names = invoke(anki, "deckNamesAndIds")
    assert names[DECK] == deck_id and "MKSAP" in names and invoke(anki, "deckNames") == sorted(names)

    spec = note_spec("{{c1::Aspirin}} irreversibly inhibits {{c2::COX-1}}.")
    spec["fields"]["text"] = spec["fields"].pop("Text")  # addNote matches field names case-insensitively
    note_id = invoke(anki, "addNote", note=spec)
    assert invoke(anki, "findNotes", query=f'"deck:{DECK}"') == [note_id]
    assert invoke(anki, "findNotes", query="Aspirin") == [note_id]
    assert invoke(anki, "findNotes") == []

    [info] = invoke(anki, "notesInfo", notes=[note_id])
    assert info["noteId"] == note_id and info["modelName"] == MODEL and info["tags"] == ["mksap::test"]
    assert info["fields"]["Text"] == {"value": "{{c1::Aspirin}} irreversibly inhibits {{c2::COX-1}}.", "order": 0}
    assert [info["fields"][f]["order"] for f in FIELDS] == [0, 1, 2, 3]
    assert len(info["cards"]) == 2  # one card per cloze number
    assert abs(info["mod"] - time.time()) < 60
    assert invoke(anki, "notesInfo", query="Aspirin") == [info]
    assert invoke(anki, "notesInfo", notes=[note_id, 42]) == [info, {}]
    assert error_of(anki, "notesInfo") == 'Must provide either "notes" or a "query"'

    cards = invoke(anki, "cardsInfo", cards=info["cards"])
    assert [c["ord"] for c in cards] == [0, 1] and {c["deckName"] for c in cards} == {DECK}
    assert all(c["note"] == note_id and c["modelName"] == MODEL for c in cards)
    assert "COX-1" in cards[0]["answer"] and len(cards[0]["nextReviews"]) == 4
    assert sorted(invoke(anki, "findCards", query=f"nid:{note_id}")) == sorted(info["cards"])

    with anki.collection() as col:  # it really is in the collection, in that deck
        note = col.get_note(note_id)
        assert note["Text"].startswith("{{c1::Aspirin}}") and len(note.guid) >= 10
        assert {col.decks.name(card.did) for card in note.cards()} == {DECK}


def test_duplicates_are_judged_on_the_first_field_only(anki_with_model: FakeAnkiConnect) -> None:
    anki = anki_with_model
    invoke(anki, "createDeck", deck="Other")
    first = note_spec("{{c1::Metformin}} lowers glucose.")
    invoke(anki, "addNote", note=first)

    same_text = note_spec("{{c1::Metformin}} lowers glucose.")
    same_text["fields"].update(Extra="different", StableId="other")
    assert error_of(anki, "addNote", note=same_text) == DUPLICATE_ERROR
    other_text = note_spec("{{c1::Metformin}} lowers glucose in type 2 diabetes.")
    other_text["fields"].update(Extra="", StableId=first["fields"]["StableId"])  # same later fields
    invoke(anki, "addNote", note=other_text)

    # the default scope is the whole collection; "deck" looks only in the target deck
    elsewhere = note_spec("{{c1::Metformin}} lowers glucose.", deck="Other")
    assert error_of(anki, "addNote", note=elsewhere) == DUPLICATE_ERROR
    elsewhere["options"] = {"duplicateScope": "deck"}
    assert invoke(anki, "canAddNotes", notes=[same_text, elsewhere]) == [False, True]
    invoke(anki, "addNote", note=elsewhere)
    again_in_deck = note_spec("{{c1::Metformin}} lowers glucose.", duplicateScope="deck")
    assert error_of(anki, "addNote", note=again_in_deck) == DUPLICATE_ERROR

    allowed = note_spec("{{c1::Metformin}} lowers glucose.", allowDuplicate=True)
    invoke(anki, "addNote", note=allowed)
    assert len(invoke(anki, "findNotes", query='"Text:{{c1::Metformin}} lowers glucose."')) == 3
    bad = note_spec("{{c1::x}}", allowDuplicate="yes")
    assert error_of(anki, "addNote", note=bad) == 'option parameter "allowDuplicate" must be boolean'
    assert error_of(anki, "addNote", note=note_spec("")) == "cannot create note because it is empty"


def test_add_notes_is_all_or_nothing(anki_with_model: FakeAnkiConnect) -> None:
    anki = anki_with_model
    ids = invoke(anki, "addNotes", notes=[note_spec("{{c1::A}} one"), note_spec("{{c1::B}} two")])
    assert len(set(ids)) == 2
    error = error_of(anki, "addNotes", notes=[note_spec("{{c1::C}} three"), note_spec("{{c1::A}} one")])
    assert error == str([DUPLICATE_ERROR])
    assert invoke(anki, "findNotes", query="three") == []  # the note that went in was taken out again
    details = invoke(anki, "canAddNotesWithErrorDetail", notes=[note_spec("{{c1::A}} one"), note_spec("{{c1::D}}")])
    assert details == [{"canAdd": False, "error": DUPLICATE_ERROR}, {"canAdd": True}]


def test_update_note_fields_changes_mod_only_when_content_changes(anki_with_model: FakeAnkiConnect) -> None:
    anki = anki_with_model
    note_id = invoke(anki, "addNote", note=note_spec("{{c1::Warfarin}} inhibits vitamin K epoxide reductase."))
    with anki.collection() as col:  # as if added ten minutes ago: mod is in whole seconds
        col.db.execute("update notes set mod = mod - 600 where id = ?", note_id)
    [before] = invoke(anki, "notesModTime", notes=[note_id])

    same = {"id": note_id, "fields": {"Text": "{{c1::Warfarin}} inhibits vitamin K epoxide reductase."}}
    assert invoke(anki, "updateNoteFields", note=same) is None
    assert invoke(anki, "notesModTime", notes=[note_id]) == [before]  # Anki skips an unchanged note

    changed = {"id": note_id, "fields": {"Extra": "VKORC1", "NoSuchField": "ignored"}}
    invoke(anki, "updateNoteFields", note=changed)
    [info] = invoke(anki, "notesInfo", notes=[note_id])
    assert info["fields"]["Extra"]["value"] == "VKORC1" and "NoSuchField" not in info["fields"]
    assert info["mod"] >= before["mod"] + 600

    invoke(anki, "updateNote", note={"id": note_id, "fields": {"Extra": "v2"}, "tags": ["a", "b"]})
    [info] = invoke(anki, "notesInfo", notes=[note_id])
    assert info["fields"]["Extra"]["value"] == "v2" and sorted(info["tags"]) == ["a", "b"]
    assert error_of(anki, "updateNote", note={"id": note_id}) == 'Must provide a "fields" or "tags" property.'
    assert error_of(anki, "updateNoteFields", note={"id": 123, "fields": {}}) == "Note was not found: 123"
    assert invoke(anki, "notesModTime", notes=[123]) == [{}]


def test_update_is_lost_while_the_note_is_open_in_the_browser(anki_with_model: FakeAnkiConnect) -> None:
    anki = anki_with_model
    note_id = invoke(anki, "addNote", note=note_spec("{{c1::Furosemide}} acts on the loop of Henle."))
    anki.show_in_browser(note_id)
    assert invoke(anki, "updateNoteFields", note={"id": note_id, "fields": {"Extra": "lost"}}) is None
    [info] = invoke(anki, "notesInfo", notes=[note_id])
    assert info["fields"]["Extra"]["value"] == ""
    anki.show_in_browser(None)
    invoke(anki, "updateNoteFields", note={"id": note_id, "fields": {"Extra": "kept"}})
    [info] = invoke(anki, "notesInfo", notes=[note_id])
    assert info["fields"]["Extra"]["value"] == "kept"


def test_tags_add_remove_and_list(anki_with_model: FakeAnkiConnect) -> None:
    anki = anki_with_model
    a = invoke(anki, "addNote", note=note_spec("{{c1::Heparin}} activates antithrombin."))
    b = invoke(anki, "addNote", note=note_spec("{{c1::Digoxin}} inhibits Na/K ATPase."))
    assert invoke(anki, "addTags", notes=[a, b], tags="mksap::cv mksap::source::table") is None
    invoke(anki, "removeTags", notes=[b], tags="mksap::test")
    tags = {i["noteId"]: sorted(i["tags"]) for i in invoke(anki, "notesInfo", notes=[a, b])}
    assert tags == {
        a: ["mksap::cv", "mksap::source::table", "mksap::test"],
        b: ["mksap::cv", "mksap::source::table"],
    }
    assert {"mksap::cv", "mksap::source::table", "mksap::test"} <= set(invoke(anki, "getTags"))
    assert invoke(anki, "findNotes", query="tag:mksap::test") == [a]


def test_delete_notes_and_change_deck(anki_with_model: FakeAnkiConnect) -> None:
    anki = anki_with_model
    keep = invoke(anki, "addNote", note=note_spec("{{c1::Atropine}} blocks muscarinic receptors."))
    gone = invoke(anki, "addNote", note=note_spec("{{c1::Adenosine}} slows AV conduction."))
    [info] = invoke(anki, "notesInfo", notes=[keep])
    assert invoke(anki, "changeDeck", cards=info["cards"], deck="Moved::Here") is None
    assert {c["deckName"] for c in invoke(anki, "cardsInfo", cards=info["cards"])} == {"Moved::Here"}

    assert invoke(anki, "deleteNotes", notes=[gone]) is None
    assert invoke(anki, "findNotes", query="Adenosine") == []
    assert invoke(anki, "notesInfo", notes=[gone]) == [{}]
    with anki.collection() as col:
        assert col.note_count() == 1 and col.db.scalar("select count() from cards where nid = ?", gone) == 0


def test_multi_answers_each_action_in_its_own_version(anki: FakeAnkiConnect) -> None:
    actions = [
        {"action": "deckNames"},
        {"action": "deckNames", "version": 6},
        {"action": "invalidAction", "params": {"useless": "param"}},
        {"action": "createDeck", "version": 6, "params": {"deck": "From Multi"}},
    ]
    results = invoke(anki, "multi", actions=actions)
    assert results[:3] == [
        ["Default"],
        {"result": ["Default"], "error": None},
        {"result": None, "error": "unsupported action"},
    ]
    assert results[3]["error"] is None and invoke(anki, "deckNamesAndIds")["From Multi"] == results[3]["result"]
    assert [c["action"] for c in anki.calls[:5]] == ["multi", "deckNames", "deckNames", "invalidAction", "createDeck"]


def test_multi_sub_actions_need_their_own_key(isolated_env: Path) -> None:
    with FakeAnkiConnect(isolated_env / "anki" / "collection.anki2", api_key="k") as anki:
        actions = [{"action": "version", "version": 6}, {"action": "version", "version": 6, "key": "k"}]
        assert invoke(anki, "multi", key="k", actions=actions) == [
            {"result": None, "error": KEY_ERROR},
            {"result": 6, "error": None},
        ]


def test_requests_wait_for_the_collection_lock(anki: FakeAnkiConnect) -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:
        with anki.collection():  # a test (or another request) holds the collection
            pending = pool.submit(invoke, anki, "createDeck", deck="Waiting")
            time.sleep(0.5)
            assert not pending.done()
        assert isinstance(pending.result(timeout=30), int)


def test_concurrent_duplicates_add_one_note(anki_with_model: FakeAnkiConnect) -> None:
    anki = anki_with_model
    specs = [note_spec("{{c1::Amiodarone}} causes pulmonary fibrosis.") for _ in range(24)]
    specs += [note_spec(f"{{{{c1::Drug {n}}}}} does thing {n}.") for n in range(8)]
    bodies = [json.dumps({"action": "addNote", "version": 6, "params": {"note": s}}).encode() for s in specs]
    with ThreadPoolExecutor(max_workers=16) as pool:
        replies = [json.loads(raw) for _, raw in pool.map(lambda body: post(anki.url, body), bodies)]
    same = [r for r in replies[:24] if r["error"] is None]
    assert len(same) == 1 and {r["error"] for r in replies[:24] if r not in same} == {DUPLICATE_ERROR}
    assert all(r["error"] is None for r in replies[24:])
    with anki.collection() as col:
        assert col.note_count() == 9


# -- packages -------------------------------------------------------------------------------
def test_import_package_keeps_guids_and_reimport_adds_nothing(anki: FakeAnkiConnect, mksap_decks: Decks) -> None:
    assert invoke(anki, "importPackage", path=str(mksap_decks.first)) is True
    with anki.collection() as col:
        notes = notes_by_guid(col)
    assert {guid: n.fields["StableId"] for guid, n in notes.items()} == mksap_decks.stable_ids
    assert {n.model for n in notes.values()} == {MODEL}
    note_ids = invoke(anki, "findNotes", query=f'"note:{MODEL}"')
    assert sorted(note_ids) == sorted(n.note_id for n in notes.values())
    assert any(name.startswith("MKSAP::") for name in invoke(anki, "deckNames"))

    # a relative path is read from the collection's media folder, as Anki's working folder
    with anki.collection() as col:
        shutil.copy(mksap_decks.first, Path(col.media.dir()) / "again.apkg")
    assert invoke(anki, "importPackage", path="again.apkg") is True
    with anki.collection() as col:
        again = notes_by_guid(col)
        assert col.note_count() == len(mksap_decks.stable_ids)
    assert {g: n.note_id for g, n in again.items()} == {g: n.note_id for g, n in notes.items()}
    assert "No such file" in error_of(anki, "importPackage", path=str(mksap_decks.first.with_name("missing.apkg")))


def test_import_defaults_are_the_gui_presets(tmp_path: Path) -> None:
    from anki.import_export_pb2 import IMPORT_ANKI_PACKAGE_UPDATE_CONDITION_IF_NEWER as if_newer

    with fresh_collection(tmp_path / "anki") as col:
        options = gui_import_options(col)
        assert options.update_notes == if_newer and options.update_notetypes == if_newer
        assert not options.merge_notetypes and not options.with_scheduling
        assert gui_import_options(col, with_scheduling=True).with_scheduling


def test_studied_history_survives_reimport_and_a_later_unchanged_export(tmp_path: Path, mksap_decks: Decks) -> None:
    with fresh_collection(tmp_path / "anki") as col:
        first = import_apkg(col, mksap_decks.first)
        assert len(first.new) == len(mksap_decks.stable_ids) == first.found_notes
        assert not first.updated and not first.conflicting

        answered = study_due_cards(col)
        assert 0 < len(answered) < col.card_count()  # within the daily new-card limit
        assert col.db.scalar("select count() from revlog") == len(answered)
        studied = notes_by_guid(col)
        reviewed = {g: n for g, n in studied.items() if n.revlog}
        assert sum(n.revlog for n in reviewed.values()) == len(answered)
        assert set(reviewed) < set(mksap_decks.stable_ids)

        # the same package again: identical note times, so "if newer" updates nothing
        same = import_apkg(col, mksap_decks.first)
        assert not same.new and not same.updated and len(same.duplicate) == len(studied)
        assert notes_by_guid(col) == studied

        # a later export of the same statements keeps each note's time (its content did not
        # change), so it updates nothing either: what the user edited in Anki stays
        newer = import_apkg(col, mksap_decks.newer)
        assert not newer.new and not newer.updated and len(newer.duplicate) == len(studied)
        assert notes_by_guid(col) == studied
        assert col.note_count() == len(mksap_decks.stable_ids)
    assert sorted(p.name for p in (tmp_path / "anki").iterdir()) == [
        "collection.anki2",
        "collection.media",
        "collection.media.db2",
    ]
