"""The up-to-date manifest (mksap/build/manifest.py): a no-op rerun hands doit no task, and
whatever changed is still rebuilt exactly as doit alone would rebuild it.

"Exactly as doit alone" is checked against a twin: a second workspace built the same way
whose manifest is deleted before every run, so doit checks every task there as it did before
the manifest existed. Both get the same change; their summaries, exit codes and the files each
run rewrote must agree, while the workspace with the manifest hands doit only the questions
the change touched. What doit is handed is observed, not timed: every task definition goes
through `Build.task_dict`, which the tests count (in-process, or in a wrapper around plain
`doit`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mksap.build.tasks import Build
from tests.conftest import (
    DODO,
    EXAMPLES,
    REPO,
    STAGES,
    Result,
    Workspace,
    changed_files,
    example_qids,
    load_json,
    make_big_bank,
    planned_tasks,
    summary_line,
    task_counts,
)

ALL = [q for _, q in example_qids()]
N = len(ALL)
QID = "gimcq24101"  # has a clinical table: gitab24101.html
TABLE = "gitab24101.html"

#: Plain `doit` with every task definition reported on stderr ("handed <task>"), and the
#: dependency DB deleted before each checkpoint when MKSAP_TEST_DELETE_DB is set.
DOIT_WRAPPER = """
import os, sys
import mksap.build.runner as runner
import mksap.build.tasks as tasks

original = tasks.Build.task_dict

def counted(self, stage, q):
    print(f"handed {stage.name}:{q.qid}", file=sys.stderr)
    return original(self, stage, q)

tasks.Build.task_dict = counted
if os.environ.get("MKSAP_TEST_DELETE_DB"):
    checkpoint = runner.checkpoint_running_build

    def delete_then_checkpoint():
        try:
            os.unlink(os.environ["MKSAP_TEST_DELETE_DB"])
        except FileNotFoundError:
            pass
        checkpoint()

    runner.checkpoint_running_build = delete_then_checkpoint

from doit.doit_cmd import DoitMain
sys.exit(DoitMain().run(sys.argv[1:]))
"""


@pytest.fixture
def handed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The task names defined for doit in this process, in order (cleared by `run`)."""
    names: list[str] = []
    original = Build.task_dict

    def counted(self: Build, stage, q):  # type: ignore[no-untyped-def]
        names.append(f"{stage.name}:{q.qid}")
        return original(self, stage, q)

    monkeypatch.setattr(Build, "task_dict", counted)
    return names


def run(ws: Workspace, handed: list[str], *args: str) -> tuple[Result, set[str]]:
    """`mksap run ARGS` in-process: its result and the questions whose tasks doit was given."""
    handed.clear()
    result = ws.cli("run", "-q", *args)
    return result, {name.split(":", 1)[1] for name in handed}


def doit(ws: Workspace, *args: str, **env: str) -> tuple[Result, set[str]]:
    """Plain `doit ARGS` (the repo's dodo.py) and the questions whose tasks it was given."""
    wrapper = ws.root / "doit_wrapper.py"
    wrapper.write_text(DOIT_WRAPPER, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(wrapper), "-f", str(DODO), "--dir", str(ws.root), *args],
        cwd=ws.root,
        env=ws.doit_env(PYTHONPATH=str(REPO), **env),
        capture_output=True,
        text=True,
        timeout=300,
    )
    err = "\n".join(line for line in proc.stderr.splitlines() if not line.startswith("handed "))
    tasks = {line.split()[1] for line in proc.stderr.splitlines() if line.startswith("handed ")}
    return Result(proc.returncode, proc.stdout, err), {name.split(":", 1)[1] for name in tasks}


def manifest_of(ws: Workspace) -> dict:
    return load_json(ws.build_dir / "uptodate.json")


# -- a twin without the manifest, for "exactly what doit would do" -----------------------------


def make_workspace(root: Path, capsys: pytest.CaptureFixture[str]) -> Workspace:
    root.mkdir()
    shutil.copytree(EXAMPLES, root / "data")
    return Workspace(root=root, data=root / "data", out=root / "out", cache=root / "cache", capsys=capsys)


@pytest.fixture
def twins(isolated_env: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Workspace, Workspace]:
    """(with the manifest, without it): two copies of the examples, each built once."""
    pair = make_workspace(isolated_env / "a", capsys), make_workspace(isolated_env / "b", capsys)
    for ws in pair:
        assert ws.cli("run", "-q").code == 0
    (pair[1].build_dir / "uptodate.json").unlink()
    return pair


def outcome(ws: Workspace, result: Result, before: dict[str, tuple[int, int, int]]) -> tuple:
    """What a run did, comparable between twins: exit code, summary lines, files rewritten."""
    lines = [line for line in result.err.splitlines() if not line.startswith("mksap: ")]
    summary = [re.sub(r" in \d+\.\ds$", "", line).replace(str(ws.root), "<root>") for line in lines]
    rewritten = sorted(os.path.relpath(p, ws.root) for p in changed_files(before, ws.identities()))
    return result.code, summary, rewritten


def compare(
    twins: tuple[Workspace, Workspace], handed: list[str], change: Callable[[Workspace], None], *args: str
) -> tuple[set[str], Result]:
    """Apply `change` to both twins and run each: the outcomes agree. Returns the questions the
    workspace with the manifest handed doit (the twin without it hands every one it runs), and
    that run's result."""
    with_manifest, without = twins
    outcomes, given, results = [], [], []
    for ws in twins:
        change(ws)
        (without.build_dir / "uptodate.json").unlink(missing_ok=True)
        before = ws.identities()
        result, questions = run(ws, handed, *args)
        outcomes.append(outcome(ws, result, before))
        given.append(questions)
        results.append(result)
    assert outcomes[0] == outcomes[1]
    assert given[0] <= given[1]
    assert (with_manifest.build_dir / "uptodate.json").is_file()
    return given[0], results[0]


# -- 1. the shortcut --------------------------------------------------------------------------


def test_a_noop_rerun_hands_doit_no_task_and_says_everything_is_up_to_date(built: Workspace, handed: list[str]) -> None:
    ws = built
    db = ws.build_dir / "doit.sqlite"
    db_before, ids_before = db.stat(), ws.identities()
    assert set(manifest_of(ws)["questions"]) == set(ALL)

    result, given = run(ws, handed)

    assert result.code == 0, result.text
    assert given == set()
    assert task_counts(result.err) == (0, N * len(STAGES))
    assert summary_line(result.err).startswith(f"0 built, {N} up to date, 0 failed ({N} questions)")
    assert ws.identities() == ids_before
    assert db.stat().st_mtime_ns == db_before.st_mtime_ns, "a no-op wrote to the dependency DB"


def test_plain_doit_takes_the_shortcut_too_and_writes_nothing(built: Workspace) -> None:
    ws = built
    db, manifest = ws.build_dir / "doit.sqlite", ws.build_dir / "uptodate.json"
    before = (db.stat().st_mtime_ns, manifest.stat().st_mtime_ns, ws.identities())

    result, given = doit(ws)

    assert result.code == 0, result.text
    assert given == set()
    assert task_counts(result.err) == (0, N * len(STAGES))
    assert summary_line(result.err) == f"0 built, {N} up to date, 0 failed ({N} questions)"
    assert (db.stat().st_mtime_ns, manifest.stat().st_mtime_ns, ws.identities()) == before


def test_the_first_run_after_a_cold_build_already_takes_it(ws: Workspace, handed: list[str]) -> None:
    cold, given = run(ws, handed)
    assert cold.code == 0 and given == set(ALL)
    again, given = run(ws, handed)
    assert again.code == 0 and given == set()


# -- 2. every change still rebuilt as doit alone would ------------------------------------------


def _same_size_same_mtime(ws: Workspace) -> None:
    """One letter of a question's critique changed in place, its size and mtime restored: doit
    does not see it (its check is the mtime), only the ctime says the file was written."""
    path = ws.question_json(QID)
    st = path.stat()
    text = path.read_text(encoding="utf-8")
    i = text.index('"critique": "') + len('"critique": "')
    swapped = text[:i] + ("X" if text[i] != "X" else "Y") + text[i + 1 :]
    path.write_text(swapped, encoding="utf-8")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_ctime_ns != st.st_ctime_ns


def _table_edited(ws: Workspace) -> None:
    table = ws.question_json(QID).parent / "tables" / TABLE
    table.write_text(table.read_text(encoding="utf-8").replace("</table>", "</table>\n"), encoding="utf-8")


def _critique_edited(ws: Workspace) -> None:
    path = ws.question_json(QID)
    doc = load_json(path)
    doc["critique"] += " Aspirin is not indicated for primary prevention in this setting."
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")


def _output_deleted(ws: Workspace) -> None:
    ws.output_json(QID).unlink()


def _artifact_deleted(ws: Workspace) -> None:
    ws.artifact(QID, "cloze").unlink()


def _artifact_rewritten_same_content(ws: Workspace) -> None:
    """A stage artifact replaced by an identical copy (new inode, new mtime)."""
    path = ws.artifact(QID, "nlp")
    data = path.read_bytes()
    path.unlink()
    path.write_bytes(data)


def _table_added(ws: Workspace) -> None:
    tables = ws.question_json(QID).parent / "tables"
    (tables / "gitab24199.html").write_text((tables / TABLE).read_text(encoding="utf-8"), encoding="utf-8")


@pytest.mark.parametrize(
    ("change", "rebuilt"),
    [
        (_same_size_same_mtime, False),
        (_table_edited, True),
        (_critique_edited, True),
        (_output_deleted, True),
        (_artifact_deleted, True),
        (_artifact_rewritten_same_content, False),
        (_table_added, True),
    ],
)
def test_a_changed_question_goes_to_doit_and_only_it(
    twins: tuple[Workspace, Workspace], handed: list[str], change: Callable[[Workspace], None], rebuilt: bool
) -> None:
    given, result = compare(twins, handed, change)
    assert given == {QID}
    assert (task_counts(result.err)[0] > 0) == rebuilt, result.err
    # whatever doit made of it, the question is vouched for again afterwards
    again, given = run(twins[0], handed)
    assert again.code == 0 and given == set(), again.text
    assert task_counts(again.err)[0] == 0


def test_a_config_change_sends_every_question_to_doit(
    twins: tuple[Workspace, Workspace], handed: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MKSAP_VALIDATE_KEEP_REJECTED", "true")
    given, result = compare(twins, handed, lambda ws: None)
    assert given == set(ALL) and task_counts(result.err)[0] >= N
    again, given = run(twins[0], handed)
    assert given == set() and task_counts(again.err)[0] == 0
    monkeypatch.delenv("MKSAP_VALIDATE_KEEP_REJECTED")
    assert compare(twins, handed, lambda ws: None)[0] == set(ALL)


def test_doit_forget_voids_the_manifest(twins: tuple[Workspace, Workspace], handed: list[str]) -> None:
    def forget(ws: Workspace) -> None:
        assert ws.doit("forget", f"cloze:{QID}").code == 0

    given, result = compare(twins, handed, forget)
    assert given == set(ALL) and task_counts(result.err)[0] >= 1
    assert run(twins[0], handed)[1] == set()


def test_an_export_keeps_the_manifest_valid(built: Workspace, handed: list[str], tmp_path: Path) -> None:
    """An export is a doit task of its own on the same DB (build/single.py): it touches no
    question's record, so the manifest follows the DB's new signature instead of going void."""
    ws = built
    db = ws.build_dir / "doit.sqlite"
    before = db.stat().st_mtime_ns
    exported = ws.cli("export", "jsonl", "-o", str(tmp_path / "s.jsonl"), *ws.location_flags(), locations=False)
    assert exported.code == 0, exported.text
    assert db.stat().st_mtime_ns != before, "the export task was not recorded in the DB"
    result, given = run(ws, handed)
    assert result.code == 0 and given == set(), result.text
    _critique_edited(ws)  # and a change after the export is still seen
    assert run(ws, handed)[1] == {QID}


def test_another_tool_writing_the_db_voids_the_manifest(built: Workspace, handed: list[str]) -> None:
    ws = built
    with sqlite3.connect(ws.build_dir / "doit.sqlite") as conn:
        conn.execute("delete from doit where task_id = ?", (f"nlp:{QID}",))
    assert planned_tasks(ws.cli("run", "--dry-run").out)[f"nlp:{QID}"] == "never built"
    result, given = run(ws, handed)
    assert result.code == 0 and given == set(ALL)
    assert task_counts(result.err)[0] >= 1
    assert planned_tasks(ws.cli("run", "--dry-run").out) == {}


def test_a_failing_question_is_asked_about_every_time(twins: tuple[Workspace, Workspace], handed: list[str]) -> None:
    def break_it(ws: Workspace) -> None:
        ws.question_json(QID).write_text("{ not json", encoding="utf-8")

    given, result = compare(twins, handed, break_it)
    assert given == {QID} and result.code == 1
    assert QID not in manifest_of(twins[0])["questions"]
    given, result = compare(twins, handed, lambda ws: None)
    assert given == {QID} and result.code == 1  # failed again, as doit alone says


def test_a_new_question_goes_to_doit(twins: tuple[Workspace, Workspace], handed: list[str]) -> None:
    def add(ws: Workspace) -> None:
        src = ws.question_json(QID).parent
        new = "gimcq24199"
        shutil.copytree(src, src.parent / new)
        text = (src.parent / new / f"{QID}.json").read_text(encoding="utf-8").replace(QID, new)
        (src.parent / new / f"{QID}.json").unlink()
        (src.parent / new / f"{new}.json").write_text(text, encoding="utf-8")

    given, result = compare(twins, handed, add)
    assert given == {"gimcq24199"}
    assert summary_line(result.err).startswith(f"1 built, {N} up to date")


# -- 3. what must keep seeing every task ----------------------------------------------------------


def test_force_and_one_forced_question(twins: tuple[Workspace, Workspace], handed: list[str]) -> None:
    given, result = compare(twins, handed, lambda ws: None, "--force")
    assert given == set(ALL) and summary_line(result.err).startswith(f"{N} built, 0 up to date")
    given, result = compare(twins, handed, lambda ws: None, QID, "--force")
    assert given == {QID} and summary_line(result.err).startswith("1 built, 0 up to date")
    # the others kept their claims through the one-question run
    assert set(manifest_of(twins[0])["questions"]) == set(ALL)
    assert run(twins[0], handed)[1] == set()


def test_targets_limit_the_shortcut_to_them(built: Workspace, handed: list[str]) -> None:
    ws = built
    _critique_edited(ws)
    result, given = run(ws, handed, "cv")
    assert result.code == 0 and given == set()
    result, given = run(ws, handed, "gi")
    assert result.code == 0 and given == {QID}
    assert task_counts(result.err)[0] >= 1


def test_dry_run_status_and_doit_list_see_every_task(built: Workspace, handed: list[str]) -> None:
    ws = built
    _critique_edited(ws)
    handed.clear()
    dry = ws.cli("run", "--dry-run")
    assert {n.split(":", 1)[1] for n in handed} == set(ALL)
    assert f"parse:{QID}" in planned_tasks(dry.out)
    status = json.loads(ws.cli("status", "--json").out)["data"]["questions"]
    assert status[QID] == "stale" and sum(v == "up-to-date" for v in status.values()) == N - 1

    listing, given = doit(ws, "list", "--all")
    assert listing.code == 0, listing.text
    assert given == set(ALL)
    listed = {line.split()[0] for line in listing.out.splitlines() if line.strip()}
    assert {f"{stage}:{q}" for stage in STAGES for q in ALL} <= listed


def test_plain_doit_with_task_names_or_always_execute_sees_every_task(built: Workspace) -> None:
    ws = built
    one, given = doit(ws, f"assemble:{QID}")
    assert one.code == 0, one.text
    assert given == set(ALL)  # doit needs the whole graph to find what the target depends on
    always, given = doit(ws, "-a")
    assert always.code == 0 and given == set(ALL)
    assert summary_line(always.err).startswith(f"{N} built, 0 up to date")
    noop, given = doit(ws)
    assert noop.code == 0 and given == set(), noop.text


def test_plain_doit_and_mksap_run_alternating(built: Workspace, handed: list[str]) -> None:
    ws = built
    _critique_edited(ws)
    result, given = doit(ws)
    assert result.code == 0 and given == {QID}, result.text
    assert summary_line(result.err).startswith(f"1 built, {N - 1} up to date")
    result, given = run(ws, handed)
    assert result.code == 0 and given == set()
    _table_edited(ws)
    result, given = run(ws, handed)
    assert result.code == 0 and given == {QID}
    result, given = doit(ws)
    assert result.code == 0 and given == set(), result.text


def test_in_place_is_asked_about_once_more_then_vouched_for(ws: Workspace, handed: list[str]) -> None:
    first, given = run(ws, handed, "--in-place")
    assert first.code == 0 and given == set(ALL)
    # the outputs were written into the question files after doit had checked them: no claim yet
    second, given = run(ws, handed, "--in-place")
    assert second.code == 0 and given == set(ALL)
    assert task_counts(second.err)[0] == 0
    third, given = run(ws, handed, "--in-place")
    assert third.code == 0 and given == set()
    original = (EXAMPLES / "id" / "idqqq24101" / "idqqq24101.json").read_bytes()
    ws.question_json("idqqq24101").write_bytes(original)  # the extractor rewrote it: no statements
    fourth, given = run(ws, handed, "--in-place")
    assert given == {"idqqq24101"}
    assert summary_line(fourth.err).startswith(f"1 built, {N - 1} up to date")


# -- 4. a killed run never leaves a claim that is not true ---------------------------------------


def _wait_for(proc: subprocess.Popen[str], ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 120
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"the run ended before it could be killed:\n{proc.communicate()[1][-2000:]}")
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.01)


@pytest.mark.parametrize("entry", ["mksap", "doit"])
def test_a_killed_run_leaves_no_false_claim(ws: Workspace, handed: list[str], entry: str) -> None:
    shutil.rmtree(ws.data)
    qids = make_big_bank(ws.data, copies=6)
    assert run(ws, handed)[0].code == 0
    assert len(manifest_of(ws)["questions"]) == len(qids)
    for qid in qids:  # every question stale
        path = ws.question_json(qid)
        doc = load_json(path)
        doc["critique"] += " One more sentence for the rerun."
        path.write_text(json.dumps(doc), encoding="utf-8")
    outputs_before = {q: ws.output_json(q).stat().st_mtime_ns for q in qids}

    proc = ws.spawn("run", "-q", "-j", "2") if entry == "mksap" else ws.spawn_doit("-n", "2")

    def rewritten() -> int:
        return sum(ws.output_json(q).stat().st_mtime_ns != outputs_before[q] for q in qids)

    _wait_for(proc, lambda: rewritten() >= 5)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()

    # what doit itself says is stale must all go to doit: the manifest vouches for none of it
    stale = {name.split(":", 1)[1] for name in planned_tasks(ws.cli("run", "--dry-run").out)}
    assert stale, "the run finished before the kill"
    result, given = run(ws, handed)
    assert result.code == 0, result.text
    assert stale <= given
    assert planned_tasks(ws.cli("run", "--dry-run").out) == {}
    assert run(ws, handed)[1] == set()


# -- 5. the dependency DB deleted under plain doit (issue 14) -------------------------------------


def test_plain_doit_with_the_db_deleted_mid_run_ends_with_one_line(ws: Workspace) -> None:
    db = ws.build_dir / "doit.sqlite"
    result, _ = doit(ws, MKSAP_TEST_DELETE_DB=str(db))
    assert result.code == 2, result.text
    assert "Traceback" not in result.text
    errors = [line for line in result.err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.err
    assert re.match(rf"error: the dependency DB {re.escape(str(db))} was deleted during the run \(sqlite3: ", errors[0])
    assert not (ws.build_dir / "uptodate.json").exists()
    again = ws.doit()
    assert again.code == 0, again.text


def test_a_failed_final_save_is_kept_not_raised(tmp_path: Path) -> None:
    from doit.dependency import JSONCodec

    from mksap.build.doit_private import PreloadedSqliteDB

    path = tmp_path / "doit.sqlite"
    db = PreloadedSqliteDB(str(path), codec=JSONCodec())
    db.set("parse:q1", "checker:", "SourceChecker")
    db.checkpoint(force=True)
    path.unlink()  # someone removes the build state
    db.set("parse:q2", "checker:", "SourceChecker")
    db.checkpoint(force=True)
    assert isinstance(db.failure, sqlite3.Error)
    db.dump()  # doit's final save: no exception escapes into doit
    assert isinstance(db.failure, sqlite3.Error)


# -- 6. the DB backend reads little for a run doit has little to check ---------------------------


def test_the_backend_reads_a_few_records_one_by_one_then_all_at_once(tmp_path: Path) -> None:
    from doit.dependency import JSONCodec

    from mksap.build.doit_private import READ_ONE_BY_ONE, PreloadedSqliteDB

    path = str(tmp_path / "doit.sqlite")
    db = PreloadedSqliteDB(path, codec=JSONCodec())
    for i in range(100):
        db.set(f"parse:q{i}", "checker:", "SourceChecker")
        db.set(f"parse:q{i}", "deps:", [f"f{i}"])
    db.dump()

    db = PreloadedSqliteDB(path, codec=JSONCodec())
    db.set("parse:q0", "checker:", "MD5Checker")  # a change to a record not read yet keeps the rest of it
    assert db.get("parse:q0", "deps:") == ["f0"]
    for i in range(1, READ_ONE_BY_ONE):
        assert db.get(f"parse:q{i}", "deps:") == [f"f{i}"]
    assert not db._loaded  # a handful of lookups (a run with only the group tasks) read a handful
    assert db.get("parse:q99", "deps:") == ["f99"] and db._loaded
    assert db.in_("parse:q50") and not db.in_("parse:q100")
    assert db.get("parse:q0", "checker:") == "MD5Checker"
    db.dump()


# -- 7. the manifest's list of files is the task graph's ------------------------------------------


@pytest.mark.parametrize("in_place", [False, True])
def test_the_signed_files_are_exactly_the_tasks_files(ws: Workspace, in_place: bool) -> None:
    from mksap.bank import discover
    from mksap.settings import load_settings

    flags = {"data": ws.data, "out": ws.out, "cache_dir": ws.cache, "in_place": in_place or None}
    build = Build.open(load_settings(flags).settings, notice=lambda m: None)
    fingerprints = {str(build.fingerprint_file(s)) for s in build.stages}
    for q in discover(ws.data):
        tasks = [build.task_dict(stage, q) for stage in build.stages]
        files = {f for t in tasks for f in (*t["file_dep"], *t["targets"])} - fingerprints
        if in_place:
            files.add(str(q.json_path))
        assert set(build.question_files(q)) == files, q.qid
        assert len(build.question_files(q)) == len(files)
    build.runtime.close()
