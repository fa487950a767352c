"""Statement quality end to end.

1. The offline provider on the examples, judged by checks of the test's own (not the rules that
   wrote the output): nothing rejected, every candidate verbatim, no vignette wording, no
   number the source does not hold, tables used and lab panels skipped; `mksap validate`.
2. The LLM path (the real anthropic provider and SDK against the fake Messages API server)
   with seeded defects: a non-verbatim cloze candidate, "this patient", an invented number.
   Each is caught; the first two are repaired, the invented number is rejected (or kept,
   flagged, with keep_rejected).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mksap.contracts.statements import Statement
from mksap_plugins.stages.keypoints import drop_restatements
from tests.conftest import Workspace, load_json

from .fakes.anthropic_server import FakeAnthropicServer, Reply
from .fakes.stage_answers import stage_responder

CASE = "In this patient, apixaban is the preferred anticoagulant for stroke prevention."
INVENTED = "Apixaban is reduced to 2.5 mg twice daily when the weight is ≤55 kg."
FIXED = "Apixaban is preferred for stroke prevention in nonvalvular atrial fibrillation."
NOT_VERBATIM = "greater than or equal to 3"

# The test's own judges of the offline output, written apart from the rules that produced it
# (mksap_plugins.stages.wording), so the rules cannot pass by grading themselves.
#: Wording that only makes sense inside the vignette or the answer key.
VIGNETTE_WORDING = re.compile(
    r"\b(?:this|that|our) (?:patient|woman|man|child|case|scenario|vignette)\b|\bthe patient(?:'s)?\b"
    r"|\b(?:he|she|his|her|him)\b|\b\d+-year-old\b|\b(?:options?|answers?|choices?) [A-E]\b"
    r"|\b(?:in)?correct (?:answer|option|choice)\b|\bmost appropriate\b|\bnext step\b"
    r"|\bthis (?:question|critique|table)\b",
    re.IGNORECASE,
)
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def every_statement(doc: dict[str, Any]) -> list[dict[str, Any]]:
    ts = doc["true_statements"]
    return [*ts["from_critique"], *ts["from_key_points"], *doc["table_statements"]["statements"]]


def source_text(folder: Path, doc: dict[str, Any]) -> str:
    """Everything a statement may draw on: objective, critique, key points, the tables' text."""
    markup = [(folder / t).read_text(encoding="utf-8") for t in (doc.get("media") or {}).get("tables") or []]
    tables = [html.unescape(re.sub(r"<[^>]+>", " ", m)) for m in markup]
    captions = [str(t.get("title") or "") for t in (doc.get("media_metadata") or {}).get("tables") or []]
    return " ".join([doc["educational_objective"], doc["critique"], *doc["key_points"], *tables, *captions])


def verbatim(candidate: str, statement: str) -> bool:
    """The candidate occurs in the statement as written, on word boundaries (not inside a word)."""
    return re.search(rf"(?<!\w){re.escape(candidate)}(?!\w)", statement) is not None


def test_offline_output_passes_validation_on_the_examples(built: Workspace) -> None:
    vignettes = 0
    for qid in built.qids():
        doc = load_json(built.output_json(qid))
        source = source_text(built.question_json(qid).parent, doc)
        source_numbers = set(NUMBER.findall(source))
        vignettes += bool(VIGNETTE_WORDING.search(doc["critique"]))
        assert doc["rejected_statements"] == [], qid
        statements = every_statement(doc)
        assert statements, qid
        for s in statements:
            assert {"statement", "extra_field", "cloze_candidates", "id", "findings"} <= set(s)
            text = s["statement"]
            assert not [f for f in s["findings"] if f["severity"] == "error"], (qid, s)
            candidates = s["cloze_candidates"]
            assert 1 <= len(candidates) <= 5 and len(set(candidates)) == len(candidates), (qid, s)
            assert [c for c in candidates if not verbatim(c, text)] == [], (qid, text)
            assert VIGNETTE_WORDING.findall(text) == [], (qid, text)
            assert [n for n in NUMBER.findall(text) if n not in source_numbers] == [], (qid, text)
        for s in doc["table_statements"]["statements"]:
            assert s["table_source"] and s["table_source"].endswith(".html")
            caption = {t["file"]: t["title"] for t in doc["media_metadata"]["tables"]}[f"tables/{s['table_source']}"]
            assert s["extra_field"] == caption
    # the judge can fail on this data: the critiques themselves are full of vignette wording
    assert vignettes == len(built.qids())
    en = load_json(built.output_json("enmcq24101"))["table_statements"]
    assert (en["tables_processed"], en["tables_skipped"]) == (1, 1)  # the thead-less table is used


def test_validate_reports_per_system_and_overall(built: Workspace) -> None:
    result = built.cli("validate", "--data", str(built.data), "--out", str(built.out), locations=False)
    assert result.code == 0, result.text
    assert "all" in result.out and "findings by code" in result.out and "repair success rate" in result.out
    raw = built.cli("validate", "--json", "--data", str(built.data), "--out", str(built.out), locations=False)
    data = json.loads(raw.out)["data"]
    overall = data["overall"]
    assert set(data["systems"]) == {"cv", "dm", "en", "gi", "id", "np"}
    assert overall["questions"] == 15 and overall["candidates_verbatim_pct"] == 100.0
    assert overall["passing_pct"] == 100.0 and overall["case_wording_in_output"] == 0
    assert overall["clinical_tables"] == 6 and overall["lab_panels_skipped"] == 9
    assert 1 <= overall["candidates_per_statement"] <= 5 and overall["words_median"] > 0
    one = json.loads(
        built.cli("validate", "cv", "--json", "--data", str(built.data), "--out", str(built.out), locations=False).out
    )
    assert list(one["data"]["systems"]) == ["cv"]


def test_a_restatement_keeps_the_better_wording() -> None:
    critique = [
        Statement(
            statement="In this patient, drug K lowers the stroke risk in atrial fibrillation.",
            id="c01.1",
            source="critique",
        )
    ]
    better = Statement(
        statement="Drug K lowers the stroke risk in atrial fibrillation.", id="k00.1", source="key_point"
    )
    kept = drop_restatements([better], critique)
    assert kept.statements == [better] and kept.superseded == ["c01.1"]
    worse = Statement(
        statement="In this patient drug K lowers stroke risk in atrial fibrillation, as noted.",
        id="k00.1",
        source="key_point",
    )
    good = [critique[0].model_copy(update={"statement": better.statement})]
    assert drop_restatements([worse], good).statements == []


def test_a_key_point_about_another_drug_is_not_a_restatement() -> None:
    critique = [
        Statement(
            statement="Benralizumab reduces exacerbations in severe eosinophilic asthma.", id="c:1.1", source="critique"
        )
    ]
    other = Statement(
        statement="Mepolizumab reduces exacerbations in severe eosinophilic asthma.", id="k:2.1", source="key_point"
    )
    same = other.model_copy(update={"statement": "Benralizumab reduces exacerbations in severe eosinophilic asthma!"})
    assert drop_restatements([other], critique).statements == [other]  # two drugs, two facts
    assert drop_restatements([same], critique).statements == []  # the same fact again


# -- the LLM path with seeded defects ---------------------------------------------------------


def seeded(payload: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    """Seed the defects into otherwise sensible answers."""
    if payload.get("source") == "critique" and payload["educational_objective"].startswith("Prevent stroke"):
        answer["statements"] += [
            {"statement": CASE, "extra_field": None, "source_index": 0},
            {"statement": INVENTED, "extra_field": None, "source_index": 3},
        ]
    elif "statements" in payload and "sentences" not in payload:  # cloze: a rewritten comparator
        for item in answer["items"]:
            item["cloze_candidates"].insert(0, NOT_VERBATIM)
    elif "items" in payload:  # repair: fix the case wording, keep the invented number
        for item in answer["items"]:
            if item["statement"].startswith("In this patient"):
                item["statement"] = FIXED
                item["cloze_candidates"] = [NOT_VERBATIM, "stroke prevention", "Apixaban"]
    return answer


@pytest.fixture
def llm(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Workspace, FakeAnthropicServer]]:
    base = stage_responder(tweak=seeded)
    with FakeAnthropicServer(responder=lambda body: base(body)) as server:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-fake-quality")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        monkeypatch.setenv("MKSAP_PROVIDER", "anthropic")
        monkeypatch.setenv("MKSAP_LLM_CACHE_DIR", str(ws.root / "llm-cache"))
        yield ws, server


def _repair_requests(server: FakeAnthropicServer) -> list[dict[str, Any]]:
    bodies = [r["body"] for r in server.requests if r["path"] == "/v1/messages"]
    payloads = [json.loads(b["messages"][0]["content"]) for b in bodies]
    return [p for p in payloads if "items" in p]


def test_seeded_defects_are_caught_then_repaired_or_rejected(llm: tuple[Workspace, FakeAnthropicServer]) -> None:
    ws, server = llm
    result = ws.cli("run", "-q")
    assert result.code == 0, result.text
    doc = load_json(ws.output_json("cvcor25101"))
    assert doc["mksap"]["provenance"]["provider"] == "anthropic"
    shown = every_statement(doc)
    texts = [s["statement"] for s in shown]

    # "this patient": caught (sent to repair with its code), repaired, accepted
    (repair,) = [p for p in _repair_requests(server) if any(i["statement"] == CASE for i in p["items"])]
    problems = {i["statement"]: i["problems"] for i in repair["items"]}
    assert any(p.startswith("case_specific") for p in problems[CASE])
    assert CASE not in texts and FIXED in texts
    fixed = next(s for s in shown if s["statement"] == FIXED)
    assert fixed["cloze_candidates"] == ["stroke prevention", "Apixaban"] and fixed["findings"] == []

    # the repair sees the sentences around the statement's own (issue 10): the objective before
    # the first sentence, the neighbours otherwise
    items = {i["statement"]: i for i in repair["items"]}
    assert items[CASE]["sentence_before"] == doc["educational_objective"]
    assert items[INVENTED]["sentence_before"].startswith("Direct oral anticoagulants (DOACs)")
    assert items[INVENTED]["sentence_after"].startswith("Aspirin (Option B)")

    # the invented number: caught, not repairable, rejected with its finding (never silently)
    assert any(p.startswith("number_not_in_source: number 55") for p in problems[INVENTED])
    (rejected,) = doc["rejected_statements"]
    assert rejected["statement"] == INVENTED and INVENTED not in texts
    assert {f["code"] for f in rejected["findings"]} == {"number_not_in_source"}

    # the non-verbatim candidate: proposed for every statement, kept for none
    for qid in ws.qids():
        for s in every_statement(load_json(ws.output_json(qid))):
            assert NOT_VERBATIM not in s["cloze_candidates"]
            assert s["cloze_candidates"] and all(c in s["statement"] for c in s["cloze_candidates"])

    validation = doc["mksap"]["validation"]
    assert (validation["repair_attempted"], validation["repaired"], validation["rejected"]) == (2, 1, 1)
    assert validation["findings_by_code"]["number_not_in_source"] == 1
    report = json.loads(ws.cli("validate", "--json", "cv", *ws.location_flags(), locations=False).out)["data"]
    assert report["overall"]["repair_success_rate"] == 0.5 and report["overall"]["rejected"] == 1
    assert report["overall"]["case_wording_in_output"] == 0 and report["overall"]["candidates_verbatim_pct"] == 100.0


def test_keep_rejected_keeps_it_in_place_flagged(
    llm: tuple[Workspace, FakeAnthropicServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, _ = llm
    monkeypatch.setenv("MKSAP_VALIDATE_KEEP_REJECTED", "true")
    assert ws.cli("run", "-q", "cvcor25101").code == 0
    doc = load_json(ws.output_json("cvcor25101"))
    assert doc["rejected_statements"] == []
    flagged = next(s for s in doc["true_statements"]["from_critique"] if s["statement"] == INVENTED)
    assert [f["severity"] for f in flagged["findings"]] == ["error"]


def test_an_unusable_repair_answer_gets_its_own_repair_round(llm: tuple[Workspace, FakeAnthropicServer]) -> None:
    ws, server = llm
    base = server.responder
    spoiled: list[int] = []

    def responder(body: dict[str, Any]) -> Reply:
        payload = json.loads(body["messages"][0]["content"])
        if "items" in payload and len(body["messages"]) == 1 and not spoiled:
            spoiled.append(1)
            return Reply.json_object({"items": [{"wrong": True}]})
        return base(body)  # type: ignore[misc]

    server.responder = responder
    assert ws.cli("run", "-q", "cvcor25101").code == 0
    assert spoiled and load_json(ws.output_json("cvcor25101"))["mksap"]["validation"]["repaired"] == 1
