"""A clinical table copied into several questions costs one LLM call, end to end: two questions
carrying the same table, built through the real CLI on a counting fake provider (a paid one:
cached, merged in flight), make exactly one tables request."""

from __future__ import annotations

import json
import shutil
from collections import Counter

import pytest

from tests.conftest import EXAMPLES, Workspace, load_json

ORIGINAL = "cvmcq24102"  # its one clinical table is cvtab24101.html (and it has no lab panel)
COPY = "cvmcq24199"
TABLE = "cvtab24101.html"


def copy_question(ws: Workspace) -> None:
    """The data folder holds two questions: ORIGINAL, and COPY with the same table file but an
    objective, critique and key points of its own, so the table is all they share."""
    shutil.rmtree(ws.data)
    src = EXAMPLES / "cv" / ORIGINAL
    shutil.copytree(src, ws.data / "cv" / ORIGINAL)
    dst = ws.data / "cv" / COPY
    shutil.copytree(src, dst)
    (dst / f"{ORIGINAL}.json").unlink()
    doc = load_json(src / f"{ORIGINAL}.json")
    doc["question_id"] = COPY
    doc["educational_objective"] = "Choose first-line therapy for hypertension with albuminuria."
    doc["critique"] += " A blood pressure goal below 130/80 mm Hg is reasonable for most such adults."
    doc["key_points"] = [*doc["key_points"], "Albuminuria favours a renin-angiotensin system blocker."]
    (dst / f"{COPY}.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")
    assert (dst / "tables" / TABLE).read_bytes() == (src / "tables" / TABLE).read_bytes()


@pytest.mark.parametrize("jobs", ["1", "2"], ids=["one-after-the-other", "in-flight-together"])
def test_a_table_shared_by_two_questions_costs_one_call(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch, jobs: str
) -> None:
    copy_question(ws)
    log = ws.root / "paid-calls.log"
    monkeypatch.setenv("MKSAP_PLUGINS", "tests.fakes.fake_provider")
    monkeypatch.setenv("FAKE_PROVIDER_LOG", str(log))
    monkeypatch.setenv("FAKE_PROVIDER_DELAY", "0.2")  # long enough for parallel tasks to overlap
    monkeypatch.setenv("MKSAP_LLM_CACHE_DIR", str(ws.root / "llm"))

    result = ws.cli("run", "-q", "-j", jobs, "--provider", "fake")

    assert result.code == 0, result.text
    calls = [line.split() for line in log.read_text().splitlines()]
    by_source = Counter(source for _, _, source in calls)
    assert by_source["table"] == 1, f"the shared table was asked for {by_source['table']} times"
    # the counting is real: each question paid for its own critique and key points
    assert by_source["critique"] == 2 and by_source["key_points"] == 2, by_source
    keys = [key for _, key, _ in calls]
    assert len(keys) == len(set(keys)), "a request was paid for twice"

    # both questions got the table's statements, the same ones
    rows = {}
    for qid in (ORIGINAL, COPY):
        tables = load_json(ws.output_json(qid))["table_statements"]
        assert (tables["tables_processed"], tables["tables_skipped"]) == (1, 0), qid
        rows[qid] = [(s["id"], s["statement"]) for s in tables["statements"] if s["table_source"] == TABLE]
        assert rows[qid], f"{qid} has no statement from {TABLE}"
    assert rows[ORIGINAL] == rows[COPY]
