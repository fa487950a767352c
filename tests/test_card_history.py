"""Cards that keep their history, checked with Anki's own library.

The bundled examples are built and exported through the real `mksap` CLI (private HOME, caches
and data copy per test), imported into a fresh collection with the import dialog's defaults
(update notes "if newer"), studied, edited; then the bank changes (a sentence inserted at the
start of another question's critique, a typo fixed, a sentence reworded), is rebuilt,
exported to the same file and imported again. The assertions are on the collection: no fact
moves to another GUID, review history and the user's edits stay, new facts come as new notes,
no fact twice. Also the ids themselves (`unit_keys`, `extract`) and the migration of a deck
exported with the positional ids of an earlier mksap.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mksap.contracts.statements import StatementDrafts
from mksap_plugins.stages.extraction import UnitKey, extract, normalised, unit_keys
from mksap_plugins.stages.parse import ParsedQuestion
from mksap_plugins.stages.validate import ValidatedStatements, source_text
from tests.anki_collection import NoteState, fresh_collection, import_apkg, notes_by_guid, study_due_cards
from tests.conftest import EXAMPLES

CLOZE = re.compile(r"\{\{c\d+::(.*?)\}\}", re.DOTALL)
#: A sentence inserted at the start of a critique: every positional id after it would shift.
INSERTED = "Rate control with a beta-blocker relieves palpitations in atrial fibrillation."
EDITED_QID, CHANGED_QID = "cvmcq24101", "cvcor25101"
USER_EXTRA = "my own mnemonic"


# -- the bank, built through the real CLI ------------------------------------------------------
@dataclass
class Bank:
    """A private copy of the examples, built and exported by `python -m mksap.cli`."""

    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MKSAP_", "ANTHROPIC_"))}
        home = self.root / "home"
        return {
            **env,
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "MKSAP_USER_CONFIG": str(self.root / "no-user-config.toml"),
            "MKSAP_LLM_CACHE_DIR": str(self.root / "llm"),
        }

    def mksap(self, *args: str) -> str:
        where = ["--data", str(self.data), "--out", str(self.root / "out"), "--cache-dir", str(self.cache)]
        proc = subprocess.run(
            [sys.executable, "-m", "mksap.cli", *args, *where],
            cwd=self.root,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    def build(self, *args: str) -> None:
        self.mksap("run", "-q", *args)

    def export(self, deck: Path, *args: str) -> dict[str, Any]:
        """`mksap export anki -o deck --json`: the export report."""
        return json.loads(self.mksap("export", "anki", "-o", str(deck), "--json", *args))["data"]

    def question(self, qid: str) -> Path:
        return self.data / qid[:2] / qid / f"{qid}.json"

    def output(self, qid: str) -> Path:
        return self.root / "out" / qid[:2] / qid / f"{qid}.json"

    def edit_critique(self, qid: str, edit: Callable[[str], str]) -> None:
        path = self.question(qid)
        doc = json.loads(path.read_text(encoding="utf-8"))
        changed = edit(doc["critique"])
        assert changed != doc["critique"]
        doc["critique"] = changed
        path.write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")

    def built(self) -> dict[str, tuple[ParsedQuestion, ValidatedStatements]]:
        """qid -> the parse and validate artifacts of the last build."""
        found = {}
        for parse in sorted((self.cache / "build").glob("*/*/parse.json")):
            parsed = ParsedQuestion.model_validate_json(parse.read_bytes())
            validated = ValidatedStatements.model_validate_json(parse.with_name("validate.json").read_bytes())
            found[parsed.qid] = (parsed, validated)
        return found

    def units(self) -> dict[str, str]:
        """stable id -> the normalised text of the source unit of every accepted statement."""
        return {
            f"{qid}/{s.id}": normalised(source_text(s, parsed))
            for qid, (parsed, validated) in self.built().items()
            for s in validated.accepted
        }


@pytest.fixture
def bank(tmp_path: Path) -> Bank:
    root = tmp_path / "bank"
    (root / "home").mkdir(parents=True)
    shutil.copytree(EXAMPLES, root / "data")
    return Bank(root)


# -- reading notes ------------------------------------------------------------------------------
def plain(text: str) -> str:
    """A note's Text as the statement it shows: cloze markup removed, entities decoded."""
    return html.unescape(CLOZE.sub(lambda m: m.group(1), text))


def stable_id(note: NoteState) -> str:
    return note.fields["StableId"]


def apkg_mods(deck: Path, workdir: Path) -> dict[str, int]:
    """guid -> note mod of an .apkg, read from its own SQLite."""
    workdir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(deck) as z:
        db = z.extract("collection.anki2", workdir)
    conn = sqlite3.connect(db)
    try:
        return dict(conn.execute("select guid, mod from notes").fetchall())
    finally:
        conn.close()


def study_everything(col: Any) -> list[int]:
    """Every card answered once ("Easy": straight to review, so none is offered twice)."""
    for conf in col.decks.all_config():
        conf["new"]["perDay"] = conf["rev"]["perDay"] = 9999
        col.decks.update_config(conf)
    answered = study_due_cards(col, ease=4)
    assert len(answered) == col.card_count()
    return answered


def edit_extra(col: Any, note: NoteState) -> None:
    """The user edits a note in Anki (its mod becomes now)."""
    anki_note = col.get_note(note.note_id)
    anki_note["Extra"] = USER_EXTRA
    col.update_note(anki_note)


def next_second(after: float) -> None:
    """Wait until the clock's whole second is past `after` (note times are whole seconds)."""
    while int(time.time()) <= int(after):
        time.sleep(0.05)


def duplicate_facts(notes: dict[str, NoteState]) -> list[tuple[str, str]]:
    facts = Counter((stable_id(n).partition("/")[0], plain(n.fields["Text"])) for n in notes.values())
    return [fact for fact, n in facts.items() if n > 1]


# -- the scenario of the issue --------------------------------------------------------------------
def test_inserted_sentence_moves_no_fact_keeps_history_and_the_users_edit(bank: Bank, tmp_path: Path) -> None:
    deck = bank.root / "deck.apkg"
    bank.build()
    bank.export(deck)
    units_before = bank.units()
    with fresh_collection(tmp_path / "anki") as col:
        assert not import_apkg(col, deck).updated
        answered = study_everything(col)
        [edited, *_] = [n for n in notes_by_guid(col).values() if stable_id(n).startswith(f"{EDITED_QID}/")]
        edit_extra(col, edited)
        before = notes_by_guid(col)
        assert duplicate_facts(before) == []

        bank.edit_critique(CHANGED_QID, lambda critique: f"{INSERTED} {critique}")
        bank.build()
        report = bank.export(deck)
        units_after = bank.units()
        again = import_apkg(col, deck)
        after = notes_by_guid(col)

    moved = [
        g
        for g, n in before.items()
        if units_after[stable_id(after[g])] != units_before[stable_id(n)]
        or plain(after[g].fields["Text"]) != plain(n.fields["Text"])
    ]
    assert moved == []  # every GUID still shows the fact of the same source unit
    assert {g: stable_id(after[g]) for g in before} == {g: stable_id(n) for g, n in before.items()}
    # nothing in mksap changed for the old notes: same mod, so Anki updates none of them
    assert again.updated == () and len(again.duplicate) == len(before)
    assert after[edited.guid].fields["Extra"] == USER_EXTRA
    kept = {g: (n.note_id, n.card_ids, n.revlog) for g, n in after.items() if g in before}
    assert kept == {g: (n.note_id, n.card_ids, n.revlog) for g, n in before.items()}
    assert sum(n.revlog for n in after.values()) == len(answered)
    # the inserted sentence's facts, and only those, are new notes
    added = {g: n for g, n in after.items() if g not in before}
    assert added and set(again.new) == {n.note_id for n in added.values()}
    assert {units_after[stable_id(n)] for n in added.values()} == {normalised(INSERTED)}
    assert all(n.revlog == 0 and stable_id(n).startswith(f"{CHANGED_QID}/c:") for n in added.values())
    assert duplicate_facts(after) == [] and report["disappeared"] == [] and report["carried"] == {}


def test_a_typo_fix_keeps_the_ids_and_updates_the_note(bank: Bank, tmp_path: Path) -> None:
    right, typo = "therapy (Option D) is appropriate only", "therapy (Option D) is apropriate only"
    bank.edit_critique(CHANGED_QID, lambda c: c.replace(right, typo))
    deck = bank.root / "deck.apkg"
    bank.build()
    bank.export(deck)
    ids_before = {k: v for k, v in bank.units().items() if k.startswith(f"{CHANGED_QID}/")}
    mods_before = apkg_mods(deck, tmp_path / "a")
    with fresh_collection(tmp_path / "anki") as col:
        import_apkg(col, deck)
        study_everything(col)
        before = notes_by_guid(col)

        bank.edit_critique(CHANGED_QID, lambda c: c.replace(typo, right))
        bank.build()
        bank.export(deck)
        again = import_apkg(col, deck)
        after = notes_by_guid(col)
    ids_after = {k: v for k, v in bank.units().items() if k.startswith(f"{CHANGED_QID}/")}
    assert set(ids_after) == set(ids_before)  # the same ids: the edited unit kept its key
    [sid] = [k for k, unit in ids_after.items() if "withholding" in unit]
    assert "apropriate" in ids_before[sid] and "appropriate" in ids_after[sid]
    [guid] = [g for g, n in after.items() if stable_id(n) == sid]
    assert "appropriate" in after[guid].fields["Text"] and "apropriate" in before[guid].fields["Text"]
    mods_after = apkg_mods(deck, tmp_path / "b")
    assert mods_after[guid] > mods_before[guid]
    assert {g: m for g, m in mods_after.items() if g != guid} == {g: m for g, m in mods_before.items() if g != guid}
    assert again.updated == (after[guid].note_id,) and not again.new
    assert (after[guid].note_id, after[guid].card_ids, after[guid].revlog) == (
        before[guid].note_id,
        before[guid].card_ids,
        before[guid].revlog,
    )


def test_unchanged_reexport_gives_every_note_the_same_mod(bank: Bank, tmp_path: Path) -> None:
    deck, other = bank.root / "deck.apkg", bank.root / "other.apkg"
    bank.build()
    bank.export(deck)
    first = apkg_mods(deck, tmp_path / "a")
    assert first and all(m > 0 for m in first.values())
    next_second(max(first.values()))
    assert bank.export(deck, "--force")["written"] is not None
    assert apkg_mods(deck, tmp_path / "b") == first
    bank.export(other)  # another file of the same notes: the same times
    assert apkg_mods(other, tmp_path / "c") == first
    state = json.loads((bank.cache / "build" / "exports" / "anki" / "notes.json").read_text(encoding="utf-8"))
    assert {g: n["mod"] for g, n in state["notes"].items()} == first
    with fresh_collection(tmp_path / "anki") as col:
        import_apkg(col, deck)
        again = import_apkg(col, other)
        assert not again.updated and not again.new and len(again.duplicate) == len(first)


# -- the ids themselves ---------------------------------------------------------------------------
def test_unit_keys_survive_insertions_reordering_and_small_edits() -> None:
    texts = [
        "Aspirin is not recommended for stroke prevention in atrial fibrillation.",
        "Apixaban is reduced to 2.5 mg twice daily when two of three criteria are met.",
        "Dual antiplatelet therapy is less effective than oral anticoagulation.",
    ]
    first = unit_keys("c:", texts)
    assert [k.key for k in first] == [k.key for k in unit_keys("c:", texts)]
    assert all(re.fullmatch(r"c:[0-9a-f]{8}", k.key) for k in first)
    # other units inserted, removed, reordered: the same keys, with or without the last build
    moved = [INSERTED, texts[2], texts[0]]
    for previous in ((), first):
        keys = {u.text: u.key for u in unit_keys("c:", moved, previous)}
        assert keys[normalised(texts[2])] == first[2].key and keys[normalised(texts[0])] == first[0].key
    # case, spacing, punctuation and markup are not content
    assert unit_keys("c:", ["<b>ASPIRIN</b> is not recommended for stroke prevention,  in atrial fibrillation"])[
        0
    ].key == first[0].key
    # a typo fixed keeps the key, given the last build; a rewrite does not
    fixed = [texts[0].replace("recommended", "recomended"), texts[1], texts[2]]
    assert unit_keys("c:", fixed, first)[0].key == first[0].key
    assert unit_keys("c:", fixed)[0].key != first[0].key
    rewritten = ["Warfarin needs INR monitoring every four weeks once stable.", texts[1], texts[2]]
    assert unit_keys("c:", rewritten, first)[0].key not in {k.key for k in first}
    # two units with the same text get two keys; a removed unit's key is never handed on
    twice = unit_keys("c:", [texts[1], texts[1]])
    assert len({k.key for k in twice}) == 2
    gone = UnitKey(key="c:00000000", text=normalised("Something no longer said in the critique at all."))
    assert "c:00000000" not in {k.key for k in unit_keys("c:", ["A new sentence."], [gone])}


class ScriptedJob:
    """What `extract` uses of a StageJob: `ask`, answered from a script."""

    def __init__(self, drafts: list[dict[str, Any]]) -> None:
        self.drafts = drafts

    def ask(self, request: Any, answer: type[StatementDrafts]) -> tuple[StatementDrafts, None]:
        return answer.model_validate({"statements": self.drafts}), None


def test_a_rephrased_statement_keeps_its_id() -> None:
    from mksap_plugins.stages.prompts import load_prompt

    units = unit_keys("c:", ["DOACs are preferred over warfarin.", "Aspirin is not recommended."])

    def ids(*drafts: tuple[str, int]) -> list[str]:
        job = ScriptedJob([{"statement": text, "extra_field": None, "source_index": i} for text, i in drafts])
        found = extract(job, load_prompt("critique"), {}, "critique", "c:", units)  # type: ignore[arg-type]
        assert [s.source_index for s in found] == [i if i < len(units) else None for _, i in drafts]
        return [s.id for s in found]

    first = ids(("DOACs are preferred over warfarin.", 0), ("Aspirin is not recommended.", 1))
    again = ids(("Direct oral anticoagulants are preferred to warfarin.", 0), ("Aspirin is not advised.", 1))
    assert first == again == [f"{units[0].key}.1", f"{units[1].key}.1"]
    split = ids(("DOACs are preferred.", 0), ("They beat warfarin.", 0), ("Aspirin is not advised.", 1))
    assert split == [f"{units[0].key}.1", f"{units[0].key}.2", f"{units[1].key}.1"]
    [stray] = ids(("A fact from nowhere.", 7))
    assert re.fullmatch(r"c:x[0-9a-f]{8}\.1", stray)


# -- migration from positional ids ------------------------------------------------------------------
def positional_ids(bank: Bank) -> dict[str, str]:
    """qid/content id -> qid/the positional id an earlier mksap gave the same statement
    (`c03.1`: critique sentence 3, first statement; `t:<table>:02.1`: row 2)."""
    legacy = {}
    for qid, (_, validated) in bank.built().items():
        for s in [*validated.accepted, *validated.rejected]:
            assert s.source_index is not None
            unit, _, n = s.id.rpartition(".")
            prefix = unit.rpartition(":")[0] + ":" if s.source == "table" else unit[0]
            legacy[f"{qid}/{s.id}"] = f"{qid}/{prefix}{s.source_index:02d}.{n}"
    return legacy


def export_as_earlier_mksap(bank: Bank, deck: Path) -> dict[str, str]:
    """The deck an earlier mksap exported from this build: positional statement ids (so GUIDs
    derived from them), every note stamped with the export time, a format-1 `guids.json`
    without texts and no note times in the build state. Returns GUID -> positional id."""
    legacy = positional_ids(bank)
    for out in (bank.root / "out").glob("*/*/*.json"):
        doc = json.loads(out.read_text(encoding="utf-8"))
        qid = doc["question_id"]
        groups = [*doc["true_statements"].values(), doc["table_statements"]["statements"], doc["rejected_statements"]]
        for group in groups:
            for s in group:
                s["id"] = legacy[f"{qid}/{s['id']}"].partition("/")[2]
        out.write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")
    bank.export(deck)
    sidecar = deck.with_name(deck.name + ".guids.json")
    notes = json.loads(sidecar.read_text(encoding="utf-8"))["notes"]
    sidecar.write_text(json.dumps({"mksap": 1, "file": deck.name, "notes": notes, "disappeared": {}}), "utf-8")
    (bank.cache / "build" / "exports" / "anki" / "notes.json").unlink()
    return notes


def test_a_deck_exported_with_positional_ids_keeps_its_guids(bank: Bank, tmp_path: Path) -> None:
    deck = bank.root / "deck.apkg"
    bank.build()
    legacy = export_as_earlier_mksap(bank, deck)
    assert all(re.fullmatch(r"\w+/(?:[ck]\d\d|t:\w+:\d\d)\.\d+", sid) for sid in legacy.values())
    with fresh_collection(tmp_path / "anki") as col:
        import_apkg(col, deck)
        answered = study_everything(col)
        next_second(max(n.mod for n in notes_by_guid(col).values()) + 1)
        [edited, *_] = [n for n in notes_by_guid(col).values() if stable_id(n).startswith(f"{EDITED_QID}/")]
        edit_extra(col, edited)
        before = notes_by_guid(col)

        # the bank changes before the first export with content ids: positions shift, and one
        # sentence is reworded (its statement's text changes: nothing to match it by)
        reworded = ("therapy (Option D) is appropriate only", "therapy (Option D) is reasonable only")
        bank.edit_critique(CHANGED_QID, lambda critique: f"{INSERTED} {critique.replace(*reworded)}")
        bank.build("--force")
        shifted = {v: k for k, v in positional_ids(bank).items()}
        texts_now = {f"{qid}/{s.id}": s.statement for qid, (_, v) in bank.built().items() for s in v.accepted}
        wrong = [
            g for g, sid in legacy.items() if texts_now.get(shifted.get(sid, "")) != plain(before[g].fields["Text"])
        ]
        assert wrong  # reusing the positional id would hand these GUIDs to another fact

        report = bank.export(deck)
        again = import_apkg(col, deck)
        after = notes_by_guid(col)

    [gone] = report["disappeared"]
    assert "appropriate only" in plain(next(n for n in before.values() if stable_id(n) == gone).fields["Text"])
    assert gone not in report["carried"] and len(report["carried"]) == len(legacy) - 1
    for old, new in report["carried"].items():
        assert texts_now[new] == plain(before[next(g for g, s in legacy.items() if s == old)].fields["Text"])
    assert all(plain(after[g].fields["Text"]) == plain(n.fields["Text"]) for g, n in before.items())
    assert {g: (n.note_id, n.card_ids, n.revlog) for g, n in after.items() if g in before} == {
        g: (n.note_id, n.card_ids, n.revlog) for g, n in before.items()
    }
    assert sum(n.revlog for n in after.values()) == len(answered)
    # the user's edit stays (with the note's old StableId); every other note gets its new id
    assert after[edited.guid].fields["Extra"] == USER_EXTRA and stable_id(after[edited.guid]) == stable_id(edited)
    carried_to = {g: report["carried"][sid] for g, sid in legacy.items() if sid != gone}
    assert all(stable_id(after[g]) == sid for g, sid in carried_to.items() if g != edited.guid)
    assert set(again.updated) == {n.note_id for g, n in before.items() if g in carried_to and g != edited.guid}
    added = [n for g, n in after.items() if g not in before]  # the inserted and the reworded sentence
    units = bank.units()
    reworded_unit = next(u for u in units.values() if "reasonable only" in u)
    assert {units[stable_id(n)] for n in added} == {normalised(INSERTED), reworded_unit}
    assert duplicate_facts(after) == []
    # later exports keep the handed-on GUIDs, also after an export of some questions only
    sidecar = json.loads(deck.with_name("deck.apkg.guids.json").read_text(encoding="utf-8"))
    assert sidecar["mksap"] == 2 and set(sidecar["texts"]) == set(sidecar["notes"])
    assert bank.export(deck, "--force")["carried"] == {}
    assert bank.export(deck, "en")["written"]["items"] < len(after)
    assert bank.export(deck)["carried"] == {}
    with fresh_collection(tmp_path / "anki2") as col:
        import_apkg(col, deck)
        assert {g: stable_id(n) for g, n in notes_by_guid(col).items()} == {
            g: carried_to.get(g, stable_id(n)) for g, n in after.items() if stable_id(n) != gone
        }
