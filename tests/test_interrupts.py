"""Interrupted runs: SIGKILL leaves no torn file, and the next run completes, redoing no
committed task and paying for no stored answer again; SIGTERM and Ctrl-C stop `mksap run`
cleanly with 143 / 130, and SIGTERM stops plain `doit`, keeping the finished tasks; a second
build on the same state is refused at once (or waits, if asked)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mksap.llm.cache import ResponseCache
from tests.conftest import STAGES, Workspace, make_big_bank, planned_tasks, summary_line, task_counts

#: Atomic writes go through `.<name>.<random>.tmp` beside the target (mksap/atomic.py).
TMP_FILE = re.compile(r"^\.(?P<target>[^/]+)\.[^./]+\.tmp$")
JOBS = 4  #: worker threads of the interrupted runs: at most this many tasks are mid-write


def bigger(ws: Workspace, copies: int) -> Workspace:
    """The examples copied `copies` times under new ids (15 questions a copy), so a run lasts
    long enough to be interrupted part-way."""
    shutil.rmtree(ws.data)
    make_big_bank(ws.data, copies=copies)
    return ws


def wait_for(
    proc: subprocess.Popen[str], ready: Callable[[], bool], what: str, limit: float = 120
) -> None:
    """Poll until `ready()`; fail if the process ends first (the bank was too small)."""
    deadline = time.monotonic() + limit
    while not ready():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the run ended (exit {proc.returncode}) before {what}:\n{err[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.01)


def count(root: Path, pattern: str) -> int:
    return sum(1 for _ in root.glob(pattern))


def audit_files(ws: Workspace) -> list[Path]:
    """Every JSON file under out/ and the build state parses; every other file is a known
    kind. Returns the leftover hidden temporary files (allowed: never read, never torn)."""
    leftovers: list[Path] = []
    for root in (ws.out, ws.build_dir):
        if not root.exists():
            continue
        for path in root.rglob("*"):
            if not path.is_file():
                continue
            if TMP_FILE.match(path.name):
                leftovers.append(path)
            elif path.suffix == ".json":
                try:
                    json.loads(path.read_text(encoding="utf-8"))
                except ValueError as e:
                    pytest.fail(f"torn file {path}: {e}")
            else:
                assert path.parent == ws.build_dir or path.suffix == ".failed", (
                    f"unexpected file {path}"
                )
    db = ws.build_dir / "doit.sqlite"
    if db.exists():
        with sqlite3.connect(db) as conn:
            assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
    return leftovers


def assert_legitimate_leftovers(ws: Workspace, leftovers: list[Path]) -> None:
    """What SIGKILL may leave behind: only the temporary file of a write in flight, i.e. a
    hidden `.<target>.<random>.tmp` beside a file a task of that very question writes (its
    artifact, failure record or output), and no more of them than writes can be in flight
    (one per worker thread). Its size says nothing: it may be torn, it is never read."""
    assert len(leftovers) <= JOBS, f"more temporary files than writes in flight: {leftovers}"
    for tmp in leftovers:
        target = tmp.parent / TMP_FILE.match(tmp.name)["target"]  # type: ignore[index]
        qid = tmp.parent.name
        writable = {*ws.task_files(qid).values(), *(ws.build_dir / qid[:2] / qid / f"{s}.failed" for s in STAGES)}
        assert target in writable, f"{tmp} is not the temporary of a task's write"


def committed_tasks(ws: Workspace) -> set[str]:
    """Task records committed to the dependency DB (read-only; safe while a build writes)."""
    db = ws.build_dir / "doit.sqlite"
    if not db.exists():
        return set()
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
            rows = conn.execute("select task_id from doit where task_data is not null").fetchall()
    except sqlite3.OperationalError:  # the table is not created yet
        return set()
    return {task_id for (task_id,) in rows if ":" in task_id}


def holds_open(pid: int, path: Path) -> bool:
    """True while process `pid` has `path` open (it is inside BuildLock.acquire)."""
    wanted = str(path.resolve())
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == wanted:
                return True
        except FileNotFoundError:
            continue
    return False


def test_sigkill_mid_run_leaves_no_torn_file_and_the_rerun_completes(ws: Workspace) -> None:
    bigger(ws, copies=20)  # 300 questions
    total = len(ws.qids())
    proc = ws.spawn("run", "-j", str(JOBS), "-q")
    wait_for(proc, lambda: count(ws.out, "*/*/*.json") >= 10, "some outputs were written")

    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL

    assert_legitimate_leftovers(ws, audit_files(ws))
    written = count(ws.out, "*/*/*.json")
    assert 10 <= written <= total

    rerun = ws.cli("run", "-j", "4", "-q")
    assert rerun.code == 0, rerun.text
    assert re.search(
        rf"\d+ built, \d+ up to date, 0 failed \({total} questions\)", summary_line(rerun.err)
    )
    assert "another build" not in rerun.err  # the killed process's lock died with it
    # a temporary file exists only for a write that never finished, so its task reruns and
    # sweeps it: after the rerun none is left
    assert audit_files(ws) == []
    outputs = list(ws.out.glob("*/*/*.json"))
    assert len(outputs) == total
    for path in outputs:
        doc = json.loads(path.read_text(encoding="utf-8"))
        assert doc["question_id"] == path.stem and "true_statements" in doc
    assert planned_tasks(ws.cli("run", "--dry-run").out) == {}


@pytest.mark.parametrize(
    ("sig", "code", "name"),
    [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "SIGINT")],
    ids=["term", "int"],
)
def test_terminate_or_ctrl_c_stops_cleanly_and_keeps_finished_tasks(
    ws: Workspace, sig: signal.Signals, code: int, name: str
) -> None:
    bigger(ws, copies=10)  # 150 questions
    total_tasks = len(ws.qids()) * len(STAGES)
    proc = ws.spawn("run", "-j", "4", "-q")
    wait_for(
        proc, lambda: count(ws.build_dir, "*/*/parse.json") >= 100, "a hundred tasks had finished"
    )

    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)

    assert proc.returncode == code, err[-2000:]
    assert "Traceback" not in err
    assert f"interrupted by {name}" in err
    audit_files(ws)
    remaining = planned_tasks(ws.cli("run", "--dry-run").out)
    # >= 100 artifacts were written before the signal; a few of those tasks (in flight in the
    # worker threads) may not have been recorded yet, so allow some slack
    assert 0 < len(remaining) <= total_tasks - 50, "finished tasks were not recorded"
    # what was recorded as done really is: its artifact exists
    for stage in STAGES[:-1]:
        for qid in ws.qids():
            if f"{stage}:{qid}" not in remaining:
                assert ws.artifact(qid, stage).is_file()

    if sig == signal.SIGTERM:  # (the SIGKILL test covers finishing the build after an interrupt)
        rerun = ws.cli("run", "-j", "4", "-q")
        assert rerun.code == 0, rerun.text
        assert planned_tasks(ws.cli("run", "--dry-run").out) == {}


def test_plain_doit_keeps_finished_tasks_on_sigterm(ws: Workspace) -> None:
    """`doit` with the repo's dodo.py, SIGTERMed mid-run: the tasks it finished are recorded,
    so the rerun finds them up to date and rewrites none of their files."""
    bigger(ws, copies=10)  # 150 questions
    total_tasks = len(ws.qids()) * len(STAGES)
    proc = ws.spawn_doit(MKSAP_JOBS=str(JOBS))
    wait_for(proc, lambda: count(ws.build_dir, "*/*/parse.json") >= 100, "a hundred tasks had finished")

    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)

    # dodo.py turns SIGTERM into an interrupt, so doit stops in order (not killed outright by
    # the signal): it saves its records, dodo prints its summary, and the exit is a failure
    assert proc.returncode not in (0, -signal.SIGTERM), f"exit {proc.returncode}:\n{err[-2000:]}"
    # 100 parse files were on disk; doit may not yet have taken in the results of the tasks in
    # flight in its worker threads (at most one each)
    assert task_counts(err)[0] >= 100 - JOBS, err[-2000:]
    audit_files(ws)
    written = {f"{stage}:{qid}" for qid in ws.qids() for stage, path in ws.task_files(qid).items() if path.is_file()}
    remaining = planned_tasks(ws.cli("run", "--dry-run").out)
    recorded = {f"{stage}:{qid}" for qid in ws.qids() for stage in STAGES} - set(remaining)
    assert recorded <= written, "a task was recorded as done without its file"
    # every finished task was recorded, except those whose result doit had not taken in yet
    # when the signal came: at most one per worker thread
    assert len(written - recorded) <= JOBS, sorted(written - recorded)
    assert len(recorded) >= 100 - JOBS and remaining

    before = ws.identities()
    rerun = ws.doit()
    assert rerun.code == 0, rerun.text
    assert task_counts(rerun.err) == (total_tasks - len(recorded), len(recorded))
    after = ws.identities()
    files = {f"{stage}:{qid}": str(path) for qid in ws.qids() for stage, path in ws.task_files(qid).items()}
    rebuilt = sorted(name for name in recorded if before[files[name]] != after[files[name]])
    assert rebuilt == [], "the rerun rebuilt tasks the interrupted doit had finished"
    assert planned_tasks(ws.cli("run", "--dry-run").out) == {}


def test_a_second_build_is_refused_at_once_while_one_holds_the_lock(built: Workspace) -> None:
    from mksap.build.lock import BuildLock

    ws = built
    before = ws.identities()
    lock = BuildLock(ws.build_dir).acquire()
    try:
        result = ws.cli("run", "--force")
        assert result.code not in (0, 1), result.text
        assert "another build" in result.err
        assert "Traceback" not in result.err

        doit = ws.doit()
        assert doit.code not in (0, 1), doit.text
        assert "another build" in doit.err and "Traceback" not in doit.err

        # read-only commands do not need the lock
        assert ws.cli("status").code == 0
        assert ws.doit("list").code == 0
    finally:
        lock.release()
    assert ws.identities() == before, "a refused build wrote files"
    assert ws.cli("run", "-q").code == 0


def test_wait_queues_behind_the_running_build(ws: Workspace) -> None:
    from mksap.build.lock import BuildLock

    lock = BuildLock(ws.build_dir).acquire()
    proc = ws.spawn("run", "--wait", "-q")
    try:
        # The child has the lock file open: it is inside acquire(), where a build that does
        # not wait gives up at once (closing the file and exiting); this one must stay.
        wait_for(proc, lambda: holds_open(proc.pid, lock.path), "the second build reached the lock")
        assert proc.poll() is None and holds_open(proc.pid, lock.path)
        assert not ws.out.exists()
        lock.release()
        out, err = proc.communicate(timeout=120)
    finally:
        lock.release()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert summary_line(err).startswith(f"{len(ws.qids())} built")


def test_sigkill_keeps_finished_tasks_and_no_answer_is_paid_for_twice(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a paid (cached) provider: the rerun after a SIGKILL pays again for no answer it had
    already received and stored, only for what was not finished, and it redoes no task whose
    record was committed before the kill."""
    bigger(ws, copies=6)  # 90 questions
    total_tasks = len(ws.qids()) * len(STAGES)
    log = ws.root / "paid-calls.log"
    llm_cache = ws.root / "llm"
    repo = str(Path(__file__).resolve().parent.parent)
    monkeypatch.setenv("MKSAP_PLUGINS", "tests.fakes.fake_provider")
    monkeypatch.setenv("PYTHONPATH", repo)
    monkeypatch.setenv("FAKE_PROVIDER_LOG", str(log))
    monkeypatch.setenv("FAKE_PROVIDER_DELAY", "0.05")
    monkeypatch.setenv("MKSAP_LLM_CACHE_DIR", str(llm_cache))
    proc = ws.spawn("run", "-j", str(JOBS), "-q", "--provider", "fake")
    wait_for(
        proc,
        lambda: sum(t.startswith("assemble:") for t in committed_tasks(ws)) >= 20,
        "twenty finished questions were committed to the dependency DB",
    )
    proc.send_signal(signal.SIGKILL)
    proc.communicate()

    paid_before = [line.split()[1] for line in log.read_text().splitlines()]
    cache = ResponseCache(llm_cache)
    stored = {key for key in paid_before if cache.get(key) is not None}
    in_flight = set(paid_before) - stored  # paid, but killed before its answer was stored
    committed = committed_tasks(ws)
    assert len(paid_before) == len(set(paid_before)), "the first run paid for one answer twice"
    assert len(in_flight) <= JOBS, f"{len(in_flight)} paid answers were lost, more than calls in flight"

    monkeypatch.setenv("FAKE_PROVIDER_DELAY", "0")
    rerun = ws.cli("run", "-j", str(JOBS), "-q", "--provider", "fake")
    assert rerun.code == 0, rerun.text
    paid_rerun = [line.split()[1] for line in log.read_text().splitlines()[len(paid_before) :]]

    assert not set(paid_rerun) & stored, "an answer already received and stored was paid for again"
    assert len(paid_rerun) == len(set(paid_rerun)), "the rerun paid for one answer twice"
    # of what the first run paid for, the rerun asked again for exactly the answers it lost
    assert set(paid_rerun) & set(paid_before) == in_flight
    # tasks committed before the kill are up to date; every other task ran
    assert task_counts(rerun.err) == (total_tasks - len(committed), len(committed))
    assert planned_tasks(ws.cli("run", "--dry-run", "--provider", "fake").out) == {}
