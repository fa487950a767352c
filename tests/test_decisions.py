"""Triage decisions end to end: a decisions file (as the review page saves it) is imported into
the build state, every export and the note set a sync compares honour it (rejected statements
absent, edits in), a rebuild from a changed source sentence flags the decision for a new look
and the built text wins again, `mksap status` counts what awaits review, a new decision makes
an up-to-date export stale, and a bad file is one line of error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mksap.contracts.exporter import text_digest
from tests.conftest import Workspace, load_json
from tests.test_export import CLOZE, accepted, collection, export, notes

SOURCE_QID = "cvmcq24101"
SENTENCE = "Guideline-directed medical therapy for HFrEF rests on four drug classes"


def decision(action: str, statement: str, text: str | None = None) -> dict[str, Any]:
    return {"action": action, "text": text, "source_digest": text_digest(statement), "at": "2025-01-01T00:00:00Z"}


def write_decisions(path: Path, decisions: dict[str, Any], **envelope: Any) -> Path:
    path.write_text(json.dumps({"mksap": 1, "kind": "decisions", "decisions": decisions, **envelope}), encoding="utf-8")
    return path


def cli(ws: Workspace, *args: str) -> Any:
    return ws.cli(*args, *ws.location_flags(), locations=False)


def pick(built: Workspace) -> dict[str, str]:
    """Four statements of four questions, each with at least two candidates: accept, reject,
    edit (keeping one candidate) and edit (keeping none); the second edit is the statement
    built from SENTENCE, so the rebuild test can change its source."""
    stmts = accepted(built)
    source = next(sid for sid, s in stmts.items() if s["qid"] == SOURCE_QID and s["statement"].startswith(SENTENCE))
    others = [sid for sid, s in stmts.items() if s["qid"] != SOURCE_QID and len(s["cloze_candidates"]) >= 2]
    by_question: dict[str, str] = {}
    for sid in others:
        by_question.setdefault(stmts[sid]["qid"], sid)
    accept, reject, edit = list(by_question.values())[:3]
    return {"accept": accept, "reject": reject, "edit": edit, "edit_bare": source}


@pytest.fixture
def imported(built: Workspace, tmp_path: Path) -> tuple[Workspace, dict[str, str]]:
    stmts = accepted(built)
    chosen = pick(built)
    kept = stmts[chosen["edit"]]["cloze_candidates"][0]
    decisions = {
        chosen["accept"]: decision("accept", stmts[chosen["accept"]]["statement"]),
        chosen["reject"]: decision("reject", stmts[chosen["reject"]]["statement"]),
        chosen["edit"]: decision("edit", stmts[chosen["edit"]]["statement"], f"Reviewed: {kept} matters here."),
        chosen["edit_bare"]: decision("edit", stmts[chosen["edit_bare"]]["statement"], "Four drug classes, reviewed."),
        "cvmcq24101/c:00000000.1": decision("reject", "no such statement"),
    }
    result = cli(built, "decisions", "import", str(write_decisions(tmp_path / "mksap-decisions.json", decisions)))
    assert result.code == 0, result.text
    assert "imported 4 decision(s)" in result.out and "(1 accept, 1 reject, 2 edit)" in result.out
    assert "not found: cvmcq24101/c:00000000.1" in result.out  # reported, not an error
    store = load_json(built.cache / "decisions.json")
    assert store["kind"] == "decisions" and set(store["decisions"]) == {v for v in chosen.values()}
    return built, {**chosen, "kept": kept}


def test_exports_honour_the_decisions(imported: tuple[Workspace, dict[str, str]], tmp_path: Path) -> None:
    ws, chosen = imported
    # JSONL: the rejected statement is absent, both edits are there with their text
    result = export(ws, "export", "jsonl", "-o", str(tmp_path / "s.jsonl"))
    assert result.code == 0 and "1 rejected in review" in result.out, result.text
    lines = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text(encoding="utf-8").splitlines()]
    by_id = {f"{r['question_id']}/{r['statement_id']}": r for r in lines}
    assert chosen["reject"] not in by_id and chosen["accept"] in by_id
    assert by_id[chosen["edit"]]["statement"] == f"Reviewed: {chosen['kept']} matters here."
    assert by_id[chosen["edit"]]["cloze_candidates"] == [chosen["kept"]]  # the others no longer occur
    assert by_id[chosen["edit_bare"]]["statement"] == "Four drug classes, reviewed."
    assert by_id[chosen["edit_bare"]]["cloze_candidates"] == []
    assert len(lines) == len(accepted(ws)) - 1

    # Anki deck: rejected absent, the edit clozed, the edit with no candidate left out and counted
    result = export(ws, "export", "anki", "-o", str(tmp_path / "d.apkg"))
    assert result.code == 0, result.text
    assert "1 rejected in review" in result.out and "1 no cloze candidate" in result.out
    deck = notes(collection(tmp_path / "d.apkg", tmp_path))
    assert chosen["reject"] not in deck and chosen["edit_bare"] not in deck and chosen["accept"] in deck
    assert CLOZE.sub(r"\2", deck[chosen["edit"]]["text"]) == f"Reviewed: {chosen['kept']} matters here."

    # CSV (Anki text import): the same
    assert export(ws, "export", "csv", "-o", str(tmp_path / "d.csv")).code == 0
    text = (tmp_path / "d.csv").read_text(encoding="utf-8")
    assert f"· {chosen['reject']}" not in text and f"· {chosen['accept']}" in text
    assert "matters here." in text and "Four drug classes, reviewed." not in text

    # the notes a sync compares are built the same way
    from mksap.contracts.registry import Registry
    from mksap.settings import load_settings
    from mksap_plugins.sync.anki import built_questions

    settings = load_settings({"data": ws.data, "out": ws.out, "cache_dir": ws.cache}).settings
    docs, _ = built_questions(settings, Registry.load(), [], lambda m: None)
    synced = {s.stable_id: s for q in docs for s in q.statements}
    assert chosen["reject"] not in synced
    assert synced[chosen["edit"]].statement == f"Reviewed: {chosen['kept']} matters here."


def test_a_new_decision_makes_the_export_stale(built: Workspace, tmp_path: Path) -> None:
    out = tmp_path / "s.jsonl"
    assert export(built, "export", "jsonl", "-o", str(out)).code == 0
    assert "up to date" in export(built, "export", "jsonl", "-o", str(out)).out
    sid, s = next(iter(accepted(built).items()))
    cli(
        built,
        "decisions",
        "import",
        str(write_decisions(tmp_path / "d.json", {sid: decision("reject", s["statement"])})),
    )
    result = export(built, "export", "jsonl", "-o", str(out))
    assert result.code == 0 and "wrote" in result.out, result.text
    assert f'"statement_id": "{sid.split("/", 1)[1]}"' not in out.read_text(encoding="utf-8")


def test_changed_source_flags_the_decision_for_a_new_look(
    imported: tuple[Workspace, dict[str, str]], tmp_path: Path
) -> None:
    ws, chosen = imported
    status = json.loads(cli(ws, "status", "--json").out)["data"]["review"]
    total = len(accepted(ws))
    assert status["decided"] == 4 and status["needs_new_look"] == []
    assert status["undecided"] == total - 4 and status["awaiting_review"] == total - 4

    question = ws.question_json(SOURCE_QID)
    doc = load_json(question)
    assert SENTENCE in doc["critique"]
    doc["critique"] = doc["critique"].replace("rests on four drug classes", "relies on four drug classes")
    question.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    assert cli(ws, "run", "-q").code == 0

    rebuilt = accepted(ws)
    assert chosen["edit_bare"] in rebuilt, "a lightly edited sentence keeps its statement id"
    built_text = rebuilt[chosen["edit_bare"]]["statement"]
    assert "relies on four drug classes" in built_text

    status = json.loads(cli(ws, "status", "--json").out)["data"]["review"]
    assert status["needs_new_look"] == [chosen["edit_bare"]] and status["decided"] == 3
    assert status["awaiting_review"] == total - 4 + 1
    assert "1 needing a new look" in cli(ws, "status").out

    assert export(ws, "export", "jsonl", "-o", str(tmp_path / "s.jsonl")).code == 0
    lines = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text(encoding="utf-8").splitlines()]
    record = next(r for r in lines if f"{r['question_id']}/{r['statement_id']}" == chosen["edit_bare"])
    assert record["statement"] == built_text  # the built statement, not the stale edit

    # the review page shows it as needing a new look, and does not preload that decision
    page = tmp_path / "review.html"
    assert export(ws, "review", "-o", str(page)).code == 0
    html_text = page.read_text(encoding="utf-8")
    assert "needs a new look" in html_text
    stored = html_text.split('<script type="application/json" id="stored-decisions">')[1].split("</script>")[0]
    assert set(json.loads(stored)) == {chosen["accept"], chosen["reject"], chosen["edit"]}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not JSON"),
        ('{"mksap": 1, "kind": "statements", "decisions": {}}', "not an mksap decisions file (kind 'statements'"),
        ("[1, 2]", "not an mksap decisions file"),
        (
            '{"mksap": 2, "kind": "decisions", "decisions": {}}',
            "decisions format version 2; this mksap reads version 1",
        ),
        (
            '{"mksap": 1, "kind": "decisions", "decisions": {"a/b": {"action": "keep", "source_digest": "x"}}}',
            "decision 'a/b'",
        ),
        (
            '{"mksap": 1, "kind": "decisions", "decisions": '
            '{"a/b": {"action": "edit", "text": " ", "source_digest": "x"}}}',
            "an edit needs a non-empty text",
        ),
    ],
)
def test_bad_decisions_file_is_one_line(built: Workspace, tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    result = cli(built, "decisions", "import", str(path))
    assert result.code == 2, result.text
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mksap: error: ") and message in lines[0], result.err
    assert not (built.cache / "decisions.json").exists()
