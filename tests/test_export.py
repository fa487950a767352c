"""Exports end to end: build the examples, export them, and open what was written.

The .apkg is a zip holding an SQLite collection: the tests read it with `sqlite3` and assert
on the note type, fields, cloze markup, tags, deck names and GUIDs; a rebuild that rephrases a
statement keeps its note's GUID; CSV and JSONL parse back; bad targets and paths fail clearly.
"""

from __future__ import annotations

import csv
import html
import json
import re
import sqlite3
import zipfile
from pathlib import Path
from typing import Any

import genanki
import pytest

from mksap.contracts.exporter import ExportStatement
from mksap.contracts.statements import candidate_spans
from mksap_plugins.exporters.anki import MODEL_ID, MODEL_NAME, cloze_text
from tests.conftest import Result, Workspace, load_json, summary_line

CLOZE = re.compile(r"\{\{c(\d+)::(.*?)\}\}", re.DOTALL)
KINDS = {"from_critique": "critique", "from_key_points": "key_point"}


def export(ws: Workspace, *args: str) -> Result:
    """`mksap export ...` (or `mksap review ...`) on this workspace's locations."""
    return ws.cli(*args, *ws.location_flags(), locations=False)


def table_content(ws: Workspace, system: str, qid: str, name: str) -> bytes:
    """A question's table file, spacing aside: what tells two copies of one table apart from
    two tables with the same name."""
    return b" ".join((ws.data / system / qid / "tables" / name).read_bytes().split())


def accepted(ws: Workspace) -> dict[str, dict[str, Any]]:
    """stable id -> statement (+ qid, system, kind, and `qids`, `systems`: every question that
    uses it) of every accepted, unflagged statement, as the exports write them: a statement of
    a table copied into several questions (same content, same row unit, same text) once, under
    the first of them in question order."""
    found: dict[str, dict[str, Any]] = {}
    first: dict[tuple[bytes, str, str], str] = {}  # a table statement's identity -> its stable id
    for path in sorted(ws.out.glob("*/*/*.json"), key=lambda p: p.name):
        doc = load_json(path)
        qid, system = doc["question_id"], path.parent.parent.name
        groups = [(doc["true_statements"][k], kind) for k, kind in KINDS.items()]
        groups.append((doc["table_statements"]["statements"], "table"))
        for statements, kind in groups:
            for s in statements:
                if any(f["severity"] == "error" for f in s["findings"]):
                    continue
                sid = f"{qid}/{s['id']}"
                if kind == "table":
                    unit = s["id"].removeprefix(f"t:{s['table_source'].removesuffix('.html')}:")
                    key = (table_content(ws, system, qid, s["table_source"]), unit, s["statement"])
                    if key in first:
                        copy = found[first[key]]
                        copy["qids"].append(qid)
                        copy["systems"] = sorted({*copy["systems"], system})
                        continue
                    first[key] = sid
                found[sid] = {**s, "qid": qid, "system": system, "kind": kind, "qids": [qid], "systems": [system]}
    return found


def note_tags(s: dict[str, Any], state: str = "ok") -> set[str]:
    """The tags of a statement's note (several questions and systems: a shared table's)."""
    return {
        *(f"mksap::{system}" for system in s["systems"]),
        *(f"mksap::{qid}" for qid in s["qids"]),
        f"mksap::source::{s['kind']}",
        f"mksap::validation::{state}",
    }


def collection(apkg: Path, tmp: Path) -> sqlite3.Connection:
    with zipfile.ZipFile(apkg) as z:
        assert set(z.namelist()) == {"collection.anki2", "media"}
        z.extract("collection.anki2", tmp)
    return sqlite3.connect(tmp / "collection.anki2")


def notes(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """StableId -> the note's guid, fields, tags and deck name (of its cards)."""
    decks = {
        int(k): d["name"]
        for k, d in json.loads(conn.execute("select decks from col").fetchone()[0]).items()
    }
    rows = conn.execute("select n.id, n.guid, n.flds, n.tags from notes n").fetchall()
    result: dict[str, dict[str, Any]] = {}
    for nid, guid, flds, tags in rows:
        text, extra, source, stable = flds.split("\x1f")
        card_decks = {
            decks[d] for (d,) in conn.execute("select did from cards where nid = ?", (nid,))
        }
        cards = conn.execute("select count(*) from cards where nid = ?", (nid,)).fetchone()[0]
        result[stable] = {
            "guid": guid,
            "text": text,
            "extra": extra,
            "source": source,
            "tags": set(tags.split()),
            "decks": card_decks,
            "cards": cards,
        }
    return result


def test_anki_deck_note_type_fields_clozes_tags_decks_guids(
    built: Workspace, tmp_path: Path
) -> None:
    deck = tmp_path / "deck.apkg"
    result = export(built, "export", "anki", "-o", str(deck))
    assert result.code == 0, result.text
    expected = accepted(built)
    assert f"wrote {deck}: {len(expected)} notes from 15 questions" in result.out

    conn = collection(deck, tmp_path)
    models = json.loads(conn.execute("select models from col").fetchone()[0])
    assert list(models) == [str(MODEL_ID)]
    model = models[str(MODEL_ID)]
    assert model["name"] == MODEL_NAME and model["type"] == 1  # 1 = cloze
    assert [f["name"] for f in model["flds"]] == ["Text", "Extra", "Source", "StableId"]
    assert "{{cloze:Text}}" in model["tmpls"][0]["qfmt"]

    found = notes(conn)
    assert set(found) == set(expected)  # one note per accepted statement
    systems = {s["system"] for s in expected.values()}
    deck_names = {
        d["name"] for d in json.loads(conn.execute("select decks from col").fetchone()[0]).values()
    }
    assert deck_names >= {"MKSAP"} | {f"MKSAP::{s}" for s in systems}
    for sid, note in found.items():
        s = expected[sid]
        clozes = CLOZE.findall(note["text"])
        assert clozes, note["text"]
        hidden = [html.unescape(body) for _, body in clozes]
        for cand in s["cloze_candidates"]:
            assert any(cand in h for h in hidden), (sid, cand, note["text"])
        numbers = sorted({int(n) for n, _ in clozes})
        assert numbers == list(range(1, len(numbers) + 1)) and note["cards"] == len(numbers)
        assert html.unescape(CLOZE.sub(lambda m: m.group(2), note["text"])) == s["statement"]
        assert note["tags"] == note_tags(s)
        assert note["decks"] == {f"MKSAP::{s['system']}"}
        assert note["guid"] == genanki.guid_for("mksap", s["qid"], s["id"])
        assert note["source"].startswith(f"{', '.join(s['qids'])} · {', '.join(s['systems'])} · ")
        assert html.unescape(note["extra"]) == (s["extra_field"] or "")
    assert len({n["guid"] for n in found.values()}) == len(found)
    # the examples copy one table into a cv and an np question: its statements are one note each
    shared = {sid: s for sid, s in expected.items() if len(s["qids"]) > 1}
    assert shared and all(s["qids"] == ["cvmcq24102", "npmcq24102"] for s in shared.values())
    assert f"{len(shared)} copies of statements of tables shared by several questions written once" in result.out


def test_rebuild_that_rephrases_keeps_guid_and_nothing_changed_is_up_to_date(
    built: Workspace, tmp_path: Path
) -> None:
    deck = tmp_path / "deck.apkg"
    assert export(built, "export", "anki", "-o", str(deck)).code == 0
    first = notes(collection(deck, tmp_path / "a"))
    [sid] = [k for k, s in accepted(built).items() if k.startswith("cvcor25101/c:") and "Withholding" in s["statement"]]
    before = deck.stat()

    again = export(built, "export", "anki", "-o", str(deck))
    assert again.code == 0 and "up to date" in again.out, again.text
    assert deck.stat().st_mtime_ns == before.st_mtime_ns and deck.stat().st_ino == before.st_ino

    qpath = built.question_json("cvcor25101")
    doc = load_json(qpath)
    old = "Withholding antithrombotic therapy (Option D) is appropriate only"
    assert old in doc["critique"]
    doc["critique"] = doc["critique"].replace(
        old, "Withholding antithrombotic therapy (Option D) is reasonable only"
    )
    qpath.write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")
    rebuilt = built.cli("run", "-q")
    assert rebuilt.code == 0 and summary_line(rebuilt.text).startswith("1 built"), rebuilt.text

    third = export(built, "export", "anki", "-o", str(deck))
    assert third.code == 0 and f"wrote {deck}" in third.out, third.text
    assert "no note of the previous export is gone" in third.out
    second = notes(collection(deck, tmp_path / "b"))
    # the edited sentence reads almost as before: it keeps its key, the statement its id
    assert second[sid]["guid"] == first[sid]["guid"]
    assert "reasonable" in second[sid]["text"] and "reasonable" not in first[sid]["text"]
    assert {k: v["guid"] for k, v in second.items()} == {k: v["guid"] for k, v in first.items()}

    forced = export(built, "export", "anki", "-o", str(deck), "--force")
    assert forced.code == 0 and f"wrote {deck}" in forced.out, forced.text
    dep_db = sqlite3.connect(built.build_dir / "doit.sqlite")
    assert ("export:anki:deck.apkg",) in dep_db.execute("select task_id from doit").fetchall()
    run = built.cli("run", "-q")  # the export task leaves the build's own records alone
    assert run.code == 0 and summary_line(run.text).startswith("0 built, 15 up to date"), run.text


def test_statement_that_disappears_is_reported_and_listed(built: Workspace, tmp_path: Path) -> None:
    deck = tmp_path / "deck.apkg"
    assert export(built, "export", "anki", "-o", str(deck)).code == 0
    before = set(accepted(built))
    qpath = built.question_json("cvcor25101")
    doc = load_json(qpath)
    doc["key_points"] = doc["key_points"][:1]
    qpath.write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")
    assert built.cli("run", "-q").code == 0
    gone = sorted(before - set(accepted(built)))
    assert gone

    result = export(built, "export", "anki", "-o", str(deck))
    assert result.code == 0, result.text
    assert f"{len(gone)} note(s) of the previous export are gone" in result.out
    sidecar = load_json(deck.with_name("deck.apkg.guids.json"))
    assert sorted(sidecar["disappeared"].values()) == gone
    assert set(sidecar["notes"].values()) == set(accepted(built))


def flag_one(ws: Workspace, qid: str = "cvcor25101") -> None:
    """Move one statement of a built question into `rejected_statements` with an error finding,
    as validation does with one it cannot repair (the offline rules produce none to reject)."""
    path = ws.output_json(qid)
    doc = load_json(path)
    statement = doc["true_statements"]["from_critique"].pop(0)
    statement["findings"] = [{"code": "case_specific", "severity": "error", "message": "seeded for the test"}]
    doc["rejected_statements"] = [*doc.get("rejected_statements", []), statement]
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def test_include_flagged_keeps_them_tagged(built: Workspace, tmp_path: Path) -> None:
    flag_one(built)
    deck = tmp_path / "flagged.apkg"
    result = export(
        built, "export", "anki", "--include-flagged", "--deck", "Boards", "-o", str(deck)
    )
    assert result.code == 0, result.text
    found = notes(collection(deck, tmp_path))
    rejected = load_json(built.output_json("cvcor25101"))["rejected_statements"]
    assert rejected
    for s in rejected:
        note = found[f"cvcor25101/{s['id']}"]
        assert "mksap::validation::flagged" in note["tags"] and note["decks"] == {"Boards::cv"}
    assert len(found) == len(accepted(built)) + len(rejected)


def test_csv_is_anki_text_import_and_parses_back(built: Workspace, tmp_path: Path) -> None:
    for separator, delimiter in (("tab", "\t"), ("comma", ",")):
        path = tmp_path / f"notes-{separator}.csv"
        result = export(built, "export", "csv", "--separator", separator, "-o", str(path))
        assert result.code == 0, result.text
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        header = [line.strip() for line in lines if line.startswith("#")]
        assert header[:3] == [f"#separator:{separator}", "#html:true", "#notetype:Cloze"]
        assert "#tags column:5" in header and "#guid column:1" in header
        rows = list(
            csv.reader([line for line in lines if not line.startswith("#")], delimiter=delimiter)
        )
        expected = accepted(built)
        assert len(rows) == len(expected) and all(len(r) == 5 for r in rows)
        by_guid = {genanki.guid_for("mksap", s["qid"], s["id"]): s for s in expected.values()}
        assert {r[0] for r in rows} == set(by_guid)
        for guid, deck, text, back, tags in rows:
            s = by_guid[guid]
            assert deck == f"MKSAP::{s['system']}" and CLOZE.search(text), text
            assert html.unescape(CLOZE.sub(lambda m: m.group(2), text)) == s["statement"]
            assert set(tags.split()) == note_tags(s)
            assert f"{', '.join(s['qids'])} · {', '.join(s['systems'])} · " in back
            assert back.endswith(f" · {s['qid']}/{s['id']}")


def test_csv_carries_the_guids_its_file_gave_and_the_summary_counts_them(built: Workspace, tmp_path: Path) -> None:
    """A CSV note keeps the GUID its file gave it (the same GUID function as the .apkg's): here
    one an earlier mksap gave under a positional id, handed on by its text."""
    from mksap.export.run import text_key

    path = tmp_path / "notes.csv"
    expected = accepted(built)
    texts = [(s["qid"], s["statement"]) for s in expected.values()]
    sid, s = next((k, s) for k, s in expected.items() if texts.count((s["qid"], s["statement"])) == 1)
    old = f"{s['qid']}/c99.1"
    sidecar = {
        "mksap": 2,
        "file": path.name,
        "notes": {"kept-guid": old},
        "texts": {"kept-guid": text_key(s["statement"])},
    }
    path.with_name("notes.csv.guids.json").write_text(json.dumps(sidecar), encoding="utf-8")
    result = export(built, "export", "csv", "-o", str(path))
    assert result.code == 0, result.text
    assert "1 note(s) keep their GUID under their statement's new id" in result.out
    rows = list(
        csv.reader([x for x in path.read_text(encoding="utf-8").splitlines() if not x.startswith("#")], delimiter="\t")
    )
    guids = {r[3].rsplit(" · ", 1)[1]: r[0] for r in rows}
    assert guids[sid] == "kept-guid"
    assert all(g == genanki.guid_for("mksap", *k.split("/", 1)) for k, g in guids.items() if k != sid)
    assert load_json(path.with_name("notes.csv.guids.json"))["carried"] == {old: sid}


def test_jsonl_one_statement_per_line(built: Workspace, tmp_path: Path) -> None:
    flag_one(built)
    path = tmp_path / "statements.jsonl"
    assert export(built, "export", "jsonl", "-o", str(path)).code == 0
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    expected = accepted(built)
    assert {f"{r['question_id']}/{r['statement_id']}" for r in records} == set(expected)
    for r in records:
        s = expected[f"{r['question_id']}/{r['statement_id']}"]
        assert [c["question_id"] for c in r["shared_with"]] == s["qids"][1:]
        assert {
            "system",
            "source",
            "table_source",
            "statement",
            "extra_field",
            "cloze_candidates",
            "findings",
            "provider",
            "model",
        } <= set(r)
        assert r["provider"] == "offline" and r["flagged"] is False
    path2 = tmp_path / "all.jsonl"
    assert export(built, "export", "jsonl", "--include-flagged", "-o", str(path2)).code == 0
    flagged = [
        json.loads(x)
        for x in path2.read_text(encoding="utf-8").splitlines()
        if '"flagged": true' in x
    ]
    assert flagged and all(any(f["severity"] == "error" for f in r["findings"]) for r in flagged)


def test_never_built_targets_say_which_and_how(ws: Workspace, tmp_path: Path) -> None:
    assert ws.cli("run", "cv", "-q").code == 0
    deck = tmp_path / "deck.apkg"
    result = export(ws, "export", "anki", "-o", str(deck))
    assert result.code == 2, result.text
    assert "12 question(s) never built" in result.err and "(and 2 more)" in result.err
    assert "run: mksap run" in result.err and "cvmcq" not in result.err
    one = export(ws, "export", "anki", "enmcq24101", "-o", str(deck))
    assert one.code == 2 and "run: mksap run enmcq24101 first" in one.err, one.text
    assert not deck.exists()
    assert export(ws, "export", "anki", "cv", "-o", str(deck)).code == 0


def test_unwritable_path_is_a_clear_error_and_leaves_nothing(
    built: Workspace, tmp_path: Path
) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    for target in (blocker / "deck.apkg", blocker / "sub" / "deck.csv"):
        result = export(built, "export", "anki", "-o", str(target))
        assert (
            result.code == 2
            and "cannot write" in result.err
            and "is a file, not a folder" in result.err
        )
    folder = export(built, "export", "jsonl", "-o", str(tmp_path))
    assert folder.code == 2 and "it is a folder" in folder.err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert blocker.read_text() == "not a folder\n"


def _statement(text: str, candidates: list[str]) -> ExportStatement:
    return ExportStatement(
        question_id="cvmcq24101",
        system="cv",
        statement_id="c01.1",
        source="critique",
        statement=text,
        cloze_candidates=candidates,
        findings=[],
        flagged=False,
    )


def test_cloze_markup_stays_valid_with_braces_and_double_colons() -> None:
    s = _statement(
        "Use {{x}} when a::b and {c} occur: ratio 2:1 <b>",
        ["a::b", "{{x}}", "ratio 2:1 <b>", "missing"],
    )
    text, n = cloze_text(s)
    assert n == 3
    clozes = CLOZE.findall(text)
    # numbered in text order (issue 10: c1 is the first hidden span a reader meets), not in
    # the order the candidates were listed
    assert [c for c, _ in clozes] == ["1", "2", "3"]
    assert [html.unescape(b) for _, b in clozes] == ["{{x}}", "a::b", "ratio 2:1 <b>"]
    outside = CLOZE.sub("", text)
    assert "{" not in outside and "}" not in outside and "<b>" not in text
    assert html.unescape(CLOZE.sub(lambda m: m.group(2), text)) == s.statement


def test_candidates_longest_first_never_overlapping_and_modes() -> None:
    s = _statement("A ratio of 30 mg/g and 30 mg/g again", ["30 mg/g", "ratio of 30 mg/g", "again"])
    spans = candidate_spans(s.statement, s.cloze_candidates)
    assert [(s.statement[a:b], i) for a, b, i in spans] == [
        ("ratio of 30 mg/g", 1),
        ("30 mg/g", 0),
        ("again", 2),
    ]
    assert candidate_spans("A B C", ["A B", "B C"]) == [(0, 3, 0)]
    single, n = cloze_text(s, "single")
    # every whole-word occurrence of the one candidate is hidden as c1 (issue 10: a visible
    # copy would give the answer away); still one card
    assert n == 1 and CLOZE.findall(single) == [("1", "30 mg/g"), ("1", "30 mg/g")]
    capped, n = cloze_text(s, "all", max_clozes=2)
    assert n == 2 and "again" not in "".join(b for _, b in CLOZE.findall(capped))


@pytest.mark.parametrize("args", [["--max-clozes", "0"], ["--cloze-mode", "some"]])
def test_bad_options_are_usage_errors(built: Workspace, tmp_path: Path, args: list[str]) -> None:
    result = export(built, "export", "anki", *args, "-o", str(tmp_path / "x.apkg"))
    assert result.code == 2 and not (tmp_path / "x.apkg").exists()
