"""End to end: `mksap run`, `doit`, status, show, targets, forced and incremental rebuilds on
the example bank, all through the real CLI."""

from __future__ import annotations

import json
import os
import re

import pytest

from tests.conftest import (
    EXAMPLES,
    STAGES,
    Workspace,
    changed_files,
    example_qids,
    hash_tree,
    load_json,
    planned_tasks,
    summary_line,
    task_counts,
)

ALL = example_qids()
N = len(ALL)
VDX = next(q for _, q in ALL if q[2:5] == "vdx")
OUTPUT_KEYS = {"true_statements", "table_statements", "rejected_statements", "mksap"}


def counts(text: str) -> tuple[int, int, int, int]:
    m = re.search(
        r"(\d+) built, (\d+) up to date, (\d+) failed \((\d+) questions?\)", summary_line(text)
    )
    assert m, text
    return tuple(int(g) for g in m.groups())  # type: ignore[return-value]


def check_statement(s: dict, *, table: bool = False) -> None:
    keys = {"statement", "extra_field", "cloze_candidates"} | ({"table_source"} if table else set())
    assert keys <= set(s), s
    assert isinstance(s["statement"], str) and s["statement"].strip()
    assert s["extra_field"] is None or isinstance(s["extra_field"], str)
    assert isinstance(s["cloze_candidates"], list)
    for cand in s["cloze_candidates"]:
        assert isinstance(cand, str) and cand
        assert cand in s["statement"], f"cloze candidate {cand!r} is not in {s['statement']!r}"
    if table:
        assert isinstance(s["table_source"], str) and s["table_source"].endswith(".html")


# -- 1. cold run ------------------------------------------------------------------------------
def test_cold_run_writes_one_faithful_output_per_question(ws: Workspace) -> None:
    inputs_before = hash_tree(ws.data)

    result = ws.cli("run", "-q")

    assert result.code == 0, result.text
    assert counts(result.err) == (N, 0, 0, N)
    assert hash_tree(ws.data) == inputs_before, "the input bank was modified"
    written = sorted(p.relative_to(ws.out).as_posix() for p in ws.out.rglob("*.json"))
    assert written == sorted(f"{s}/{q}/{q}.json" for s, q in ALL)

    lab_panels_seen = 0
    for system, qid in ALL:
        source = load_json(EXAMPLES / system / qid / f"{qid}.json")
        doc = load_json(ws.output_json(qid))
        # every original field unchanged, in the original order, and only mksap's fields added
        assert {k: v for k, v in doc.items() if k in source} == source
        assert list(doc)[: len(source)] == list(source)
        assert set(doc) - set(source) <= OUTPUT_KEYS
        assert {"true_statements", "table_statements"} <= set(doc)

        ts = doc["true_statements"]
        assert set(ts) >= {"from_critique", "from_key_points"}
        assert ts["from_critique"], f"{qid}: no statement from the critique"
        for s in ts["from_critique"] + ts["from_key_points"]:
            check_statement(s)

        tab = doc["table_statements"]
        assert set(tab) >= {"statements", "tables_processed", "tables_skipped"}
        assert isinstance(tab["tables_processed"], int) and isinstance(tab["tables_skipped"], int)
        for s in tab["statements"]:
            check_statement(s, table=True)
        tables = [t for t in (source.get("media") or {}).get("tables", [])]
        lab_panels = [t for t in tables if t.rsplit("/", 1)[-1].startswith("inline_table_")]
        assert tab["tables_skipped"] == len(lab_panels), qid
        assert tab["tables_processed"] == len(tables) - len(lab_panels), qid
        if tab["tables_processed"]:
            assert tab["statements"], f"{qid}: a clinical table gave no statement"
        lab_panels_seen += len(lab_panels)

        prov = doc["mksap"]["provenance"]
        assert prov["provider"] == "offline"
        assert prov["model"] and prov["built_at"]

    assert lab_panels_seen, "the examples are expected to hold lab panels"
    vdx = load_json(ws.output_json(VDX))
    assert vdx["true_statements"]["from_key_points"] == []
    assert vdx["true_statements"]["from_critique"]


def test_run_says_which_provider_it_fell_back_to_and_logs_progress(ws: Workspace) -> None:
    result = ws.cli("run")
    assert result.code == 0
    assert "offline" in result.err
    assert f"{N} built" in summary_line(result.err)
    # not a terminal: log-friendly progress lines, tasks done / total and failures
    total = N * len(STAGES)
    assert re.search(rf"progress: {total}/{total} tasks, 0 failed", result.err), result.err

    quiet = ws.cli("run", "--force", "-q")
    assert quiet.code == 0 and "progress:" not in quiet.err
    assert summary_line(quiet.err).startswith(f"{N} built")


# -- 2. no-op reruns; mksap run and doit share one build ---------------------------------------
def test_second_run_and_doit_find_nothing_to_do(built: Workspace) -> None:
    ws = built
    before = ws.identities()

    again = ws.cli("run")
    assert again.code == 0, again.text
    assert counts(again.err) == (0, N, 0, N)

    doit = ws.doit()
    assert doit.code == 0, doit.text
    assert ws.identities() == before, "doit rebuilt what mksap run had built"
    assert counts(doit.err) == (0, N, 0, N)


def test_what_doit_builds_is_up_to_date_for_mksap_run(ws: Workspace) -> None:
    cold = ws.doit()
    assert cold.code == 0, cold.text
    assert all(ws.output_json(q).is_file() for _, q in ALL)
    before = ws.identities()

    again = ws.cli("run")
    assert again.code == 0, again.text
    assert counts(again.err) == (0, N, 0, N)
    assert ws.identities() == before


def test_doit_list_info_and_forget(built: Workspace) -> None:
    ws = built
    listing = ws.doit("list")
    assert listing.code == 0, listing.text
    listed = {line.split()[0] for line in listing.out.splitlines() if line.strip()}
    assert set(STAGES) <= listed

    qid = ALL[0][1]
    info = ws.doit("info", f"assemble:{qid}")
    assert info.code == 0, info.text
    assert "up-to-date" in info.out

    assert (
        ws.cli("run", "--dry-run").out.strip().endswith(f"0 task(s) would run for {N} question(s)")
    )
    forget = ws.doit("forget", f"assemble:{qid}")
    assert forget.code == 0, forget.text
    dry = ws.cli("run", "--dry-run")
    assert dry.code == 0
    assert planned_tasks(dry.out) == {f"assemble:{qid}": "never built"}


# -- 3. targets, --force, --dry-run, -j ------------------------------------------------------
def test_run_one_system_builds_only_that_system(ws: Workspace) -> None:
    result = ws.cli("run", "cv")
    assert result.code == 0, result.text
    cv = [q for s, q in ALL if s == "cv"]
    assert counts(result.err) == (len(cv), 0, 0, len(cv))
    assert sorted(p.parent.name for p in ws.out.rglob("*.json")) == sorted(cv)


def test_run_two_systems(ws: Workspace) -> None:
    result = ws.cli("run", "cv", "en")
    assert result.code == 0, result.text
    wanted = sorted(q for s, q in ALL if s in ("cv", "en"))
    assert sorted(p.parent.name for p in ws.out.rglob("*.json")) == wanted
    assert {p.name for p in ws.build_dir.iterdir() if p.is_dir()} == {"cv", "en", "fingerprints"}


def test_run_one_question(ws: Workspace) -> None:
    qid = ALL[-1][1]
    result = ws.cli("run", qid)
    assert result.code == 0, result.text
    assert counts(result.err) == (1, 0, 0, 1)
    assert [p.parent.name for p in ws.out.rglob("*.json")] == [qid]


def test_unknown_target_is_refused(ws: Workspace) -> None:
    result = ws.cli("run", "nonsense")
    assert result.code not in (0, 1)
    assert "nonsense" in result.err
    assert not ws.out.exists()


def test_force_one_question_rebuilds_its_eight_tasks_only(built: Workspace) -> None:
    ws = built
    qid = "cvmcq24102"
    before = ws.identities()

    result = ws.cli("run", qid, "--force")

    assert result.code == 0, result.text
    assert counts(result.err) == (1, 0, 0, 1)
    changed = changed_files(before, ws.identities())
    assert changed == {str(p) for p in ws.task_files(qid).values()}
    assert len(changed) == len(STAGES)


def test_dry_run_reasons_and_no_side_effects_on_outputs(ws: Workspace) -> None:
    cold = ws.cli("run", "--dry-run")
    assert cold.code == 0
    tasks = planned_tasks(cold.out)
    assert len(tasks) == N * len(STAGES)
    assert set(tasks.values()) == {"never built"}
    assert f"{N * len(STAGES)} task(s) would run for {N} question(s)" in cold.out
    assert not ws.out.exists(), "--dry-run wrote outputs"

    assert ws.cli("run", "-q").code == 0
    qid = "gimcq24101"
    path = ws.question_json(qid)
    doc = load_json(path)
    doc["critique"] += " Added sentence for the test."
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")

    changed = planned_tasks(ws.cli("run", "--dry-run").out)
    assert set(changed) == {f"{s}:{qid}" for s in STAGES}
    assert changed[f"parse:{qid}"].startswith("changed input")
    assert str(path) in changed[f"parse:{qid}"]


@pytest.mark.parametrize("jobs", ["1", "4"])
def test_parallel_and_serial_runs_agree(ws: Workspace, jobs: str) -> None:
    result = ws.cli("run", "-j", jobs, "-q")
    assert result.code == 0, result.text
    assert counts(result.err) == (N, 0, 0, N)
    assert len(list(ws.out.rglob("*.json"))) == N
    for _, qid in ALL:
        for stage, path in ws.task_files(qid).items():
            assert path.is_file(), f"{stage}:{qid} wrote nothing"


# -- 4. incremental: content changes, not timestamps -----------------------------------------
def test_changing_one_question_reruns_only_its_tasks(built: Workspace) -> None:
    ws = built
    qid = "npmcq24101"
    path = ws.question_json(qid)
    doc = load_json(path)
    doc["key_points"].append("Dialysis is indicated for refractory hyperkalemia.")
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")
    before = ws.identities()

    result = ws.cli("run")

    assert result.code == 0, result.text
    assert counts(result.err) == (1, N - 1, 0, N)
    changed = changed_files(before, ws.identities())
    assert changed, "nothing was rebuilt"
    assert changed <= {str(p) for p in ws.task_files(qid).values()}
    assert str(ws.artifact(qid, "parse")) in changed
    assert str(ws.output_json(qid)) in changed
    out = load_json(ws.output_json(qid))
    assert out["key_points"] == doc["key_points"]


def test_changing_one_table_reruns_only_its_question(built: Workspace) -> None:
    ws = built
    qid = "gimcq24101"
    table = ws.question_json(qid).parent / "tables" / "gitab24101.html"
    table.write_text(
        table.read_text(encoding="utf-8").replace("</table>", "</table>\n"), encoding="utf-8"
    )
    before = ws.identities()

    result = ws.cli("run")

    assert result.code == 0, result.text
    changed = changed_files(before, ws.identities())
    assert str(ws.artifact(qid, "parse")) in changed
    assert changed <= {str(p) for p in ws.task_files(qid).values()}


def test_a_rerun_whose_output_did_not_change_rewrites_nothing_downstream(built: Workspace) -> None:
    """Early cut-off: an edit the parse stage reads but ignores (an HTML comment in a clinical
    table) reruns parse for that question; parse writes the same artifact, so no stage after it
    runs and no file after it is rewritten."""
    ws = built
    qid = "gimcq24101"
    table = ws.question_json(qid).parent / "tables" / "gitab24101.html"
    parsed_before = ws.artifact(qid, "parse").read_bytes()
    table.write_text(table.read_text(encoding="utf-8") + "<!-- reviewed for the test -->\n", encoding="utf-8")

    planned = planned_tasks(ws.cli("run", "--dry-run").out)
    assert planned[f"parse:{qid}"] == f"changed input: {table}"
    # the plan cannot know that parse's output will not change: it lists every stage after it,
    # as "upstream ... reruns", and only for this question
    assert set(planned) == {f"{stage}:{qid}" for stage in STAGES}
    assert all(planned[f"{stage}:{qid}"].startswith("upstream ") for stage in STAGES[1:]), planned
    before = ws.identities()

    result = ws.cli("run")

    assert result.code == 0, result.text
    assert task_counts(result.err) == (1, N * len(STAGES) - 1)
    assert counts(result.err) == (0, N, 0, N)
    assert changed_files(before, ws.identities()) == {str(ws.artifact(qid, "parse"))}
    assert ws.artifact(qid, "parse").read_bytes() == parsed_before
    assert planned_tasks(ws.cli("run", "--dry-run").out) == {}


def test_touch_without_content_change_reruns_nothing(built: Workspace) -> None:
    ws = built
    for qid in ("cvmcq24101", "idmcq24102"):
        path = ws.question_json(qid)
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    table = ws.question_json("idmcq24102").parent / "tables" / "idtab24101.html"
    os.utime(table, ns=(table.stat().st_atime_ns, table.stat().st_mtime_ns + 5_000_000_000))
    before = ws.identities()

    assert planned_tasks(ws.cli("run", "--dry-run").out) == {}
    result = ws.cli("run")

    assert result.code == 0, result.text
    assert counts(result.err) == (0, N, 0, N)
    assert ws.identities() == before


# -- 5. a config change reruns only the affected stage ---------------------------------------
def test_config_change_reruns_only_the_affected_stage(
    built: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = built
    before = ws.identities()
    monkeypatch.setenv("MKSAP_VALIDATE_KEEP_REJECTED", "true")

    dry = planned_tasks(ws.cli("run", "--dry-run").out)
    qids = [q for _, q in ALL]
    assert {n for n in dry if n.startswith("validate:")} == {f"validate:{q}" for q in qids}
    assert all(dry[f"validate:{q}"] == "config of stage validate changed" for q in qids)
    assert {n.split(":")[0] for n in dry} <= {"validate", "assemble"}

    result = ws.cli("run")
    assert result.code == 0, result.text
    changed = changed_files(before, ws.identities())
    for qid in qids:
        files = ws.task_files(qid)
        assert str(files["validate"]) in changed, f"validate:{qid} did not rerun"
        for stage in ("parse", "nlp", "critique", "keypoints", "tables", "cloze"):
            assert str(files[stage]) not in changed, f"{stage}:{qid} reran on a validate setting"
    assert all(f.endswith("/validate.json") or f.startswith(str(ws.out)) for f in changed), changed

    # and the setting is now part of the recorded state: nothing more to do
    assert planned_tasks(ws.cli("run", "--dry-run").out) == {}
    monkeypatch.delenv("MKSAP_VALIDATE_KEEP_REJECTED")
    back = planned_tasks(ws.cli("run", "--dry-run").out)
    assert {n.split(":")[0] for n in back} <= {"validate", "assemble"} and back


# -- 6. in place -----------------------------------------------------------------------------
def test_in_place_writes_into_inputs_and_is_then_up_to_date(ws: Workspace) -> None:
    first = ws.cli("run", "--in-place", "-q")
    assert first.code == 0, first.text
    assert counts(first.err) == (N, 0, 0, N)
    assert not ws.out.exists() or not list(ws.out.rglob("*.json"))

    for system, qid in ALL:
        source = load_json(EXAMPLES / system / qid / f"{qid}.json")
        doc = load_json(ws.question_json(qid))
        assert {k: v for k, v in doc.items() if k in source} == source
        assert "true_statements" in doc and "table_statements" in doc
        assert doc["mksap"]["provenance"]["provider"] == "offline"

    before = hash_tree(ws.data)
    second = ws.cli("run", "--in-place")
    assert second.code == 0, second.text
    assert counts(second.err) == (0, N, 0, N)
    assert hash_tree(ws.data) == before

    status = ws.cli("status", "--in-place", "--json")
    data = json.loads(status.out)["data"]
    assert set(data["questions"].values()) == {"up-to-date"}

    shown = ws.cli("show", ALL[0][1], "--in-place")
    assert shown.code == 0 and "From the critique" in shown.out

    # the extractor rewrites one question (same source, no statements): only it is rebuilt
    qid = "idqqq24101"
    original = (EXAMPLES / "id" / qid / f"{qid}.json").read_bytes()
    ws.question_json(qid).write_bytes(original)
    third = ws.cli("run", "--in-place")
    assert third.code == 0, third.text
    assert counts(third.err) == (1, N - 1, 0, N)
    assert "true_statements" in load_json(ws.question_json(qid))


# -- 7. status, show, plugins ----------------------------------------------------------------
def status_table(text: str) -> dict[str, dict[str, int]]:
    rows: dict[str, dict[str, int]] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 5 and all(p.isdigit() for p in parts[1:]):
            states = ("up-to-date", "stale", "failed", "never built")
            rows[parts[0]] = dict(zip(states, map(int, parts[1:]), strict=True))
    return rows


def test_status_before_and_after_a_run_with_a_failure(ws: Workspace) -> None:
    systems = {s for s, _ in ALL}
    per_system = {s: sum(1 for x, _ in ALL if x == s) for s in systems}

    cold = ws.cli("status")
    assert cold.code == 0, cold.text
    table = status_table(cold.out)
    assert table == {
        s: {"up-to-date": 0, "stale": 0, "failed": 0, "never built": n}
        for s, n in per_system.items()
    }
    cold_json = json.loads(ws.cli("status", "--json").out)
    assert cold_json["kind"] == "status"
    assert set(cold_json["data"]["questions"].values()) == {"never built"}

    broken = ws.question_json("enmcq24101")
    broken.write_text("{ not json", encoding="utf-8")
    run = ws.cli("run", "-q")
    assert run.code == 1

    after = ws.cli("status")
    assert after.code == 0
    table = status_table(after.out)
    assert table["en"] == {
        "up-to-date": per_system["en"] - 1,
        "stale": 0,
        "failed": 1,
        "never built": 0,
    }
    assert table["cv"] == {
        "up-to-date": per_system["cv"],
        "stale": 0,
        "failed": 0,
        "never built": 0,
    }
    failed_lines = [line for line in after.out.splitlines() if line.startswith("FAILED")]
    assert len(failed_lines) == 1
    assert "enmcq24101" in failed_lines[0] and "invalid JSON" in failed_lines[0]
    assert str(broken) in failed_lines[0]

    data = json.loads(ws.cli("status", "--json").out)["data"]
    assert data["questions"]["enmcq24101"] == "failed"
    assert data["failures"] == [
        {"qid": "enmcq24101", "stage": "parse", "reason": data["failures"][0]["reason"]}
    ]
    assert "\n" not in data["failures"][0]["reason"]

    # a content change makes a question stale
    path = ws.question_json("cvmcq24101")
    doc = load_json(path)
    doc["critique"] += " One more sentence."
    path.write_text(json.dumps(doc), encoding="utf-8")
    assert status_table(ws.cli("status").out)["cv"]["stale"] == 1
    assert status_table(ws.cli("status", "cv").out).keys() == {"cv"}


def test_show_marks_cloze_candidates(built: Workspace) -> None:
    ws = built
    qid = "cvmcq24101"
    result = ws.cli("show", qid)
    assert result.code == 0, result.text
    assert qid in result.out
    assert "From the critique" in result.out
    doc = load_json(ws.output_json(qid))
    first = doc["true_statements"]["from_critique"][0]
    assert len(first["cloze_candidates"]) >= 2
    # the first statement's line is the statement itself once the brackets are taken out, and
    # its bracketed spans are exactly its cloze candidates
    lines = result.out.splitlines()
    heading = next(i for i, x in enumerate(lines) if x.startswith("From the critique"))
    shown = lines[heading + 1]
    assert shown.startswith("  - "), result.out
    shown = shown.removeprefix("  - ")
    assert shown.replace("[", "").replace("]", "") == first["statement"]
    assert sorted(re.findall(r"\[([^\[\]]+)\]", shown)) == sorted(first["cloze_candidates"])

    as_json = json.loads(ws.cli("show", qid, "--json").out)
    assert as_json["data"]["true_statements"] == doc["true_statements"]


def test_show_of_an_unbuilt_question_is_a_clear_error(ws: Workspace) -> None:
    result = ws.cli("show", "cvmcq24101")
    assert result.code not in (0, 1)
    assert "cvmcq24101" in result.err and "not been built" in result.err
    assert "Traceback" not in result.err

    bad = ws.cli("show", "notaqid")
    assert bad.code != 0 and "notaqid" in bad.err
