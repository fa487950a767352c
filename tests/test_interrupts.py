"""Interrupted runs: SIGKILL leaves no torn file and the next run completes; SIGTERM and Ctrl-C
stop cleanly with 143 / 130 and keep the finished tasks; a second build on the same state is
refused at once (or waits, if asked)."""

from __future__ import annotations

import json
import re
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import STAGES, Workspace, make_big_bank, planned_tasks, summary_line

#: Atomic writes go through `.<name>.<random>.tmp` beside the target (mksap/atomic.py).
TMP_FILE = re.compile(r"^\.[^/]+\.[^./]+\.tmp$")


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


def test_sigkill_mid_run_leaves_no_torn_file_and_the_rerun_completes(ws: Workspace) -> None:
    bigger(ws, copies=20)  # 300 questions
    total = len(ws.qids())
    proc = ws.spawn("run", "-j", "4", "-q")
    wait_for(proc, lambda: count(ws.out, "*/*/*.json") >= 10, "some outputs were written")

    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL

    leftovers = audit_files(ws)
    assert all(p.stat().st_size >= 0 and p.name.startswith(".") for p in leftovers)
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
        time.sleep(1.0)  # long enough for a refusal to have happened; not a timing assertion
        assert proc.poll() is None, proc.communicate()[1]
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
    """With a paid (cached) provider: the rerun after a SIGKILL makes no call whose answer was
    already received, and tasks finished before the kill are not redone."""
    bigger(ws, copies=6)  # 90 questions
    log = ws.root / "paid-calls.log"
    repo = str(Path(__file__).resolve().parent.parent)
    monkeypatch.setenv("MKSAP_PLUGINS", "tests.fakes.fake_provider")
    monkeypatch.setenv("PYTHONPATH", repo)
    monkeypatch.setenv("FAKE_PROVIDER_LOG", str(log))
    monkeypatch.setenv("FAKE_PROVIDER_DELAY", "0.05")
    monkeypatch.setenv("MKSAP_LLM_CACHE_DIR", str(ws.root / "llm"))
    proc = ws.spawn("run", "-j", "4", "-q", "--provider", "fake")
    wait_for(proc, lambda: count(ws.out, "*/*/*.json") >= 20, "some outputs were written")
    time.sleep(2.5)  # past one checkpoint of the dependency DB
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    paid_before = log.read_text().splitlines()

    monkeypatch.setenv("FAKE_PROVIDER_DELAY", "0")
    rerun = ws.cli("run", "-j", "4", "-q", "--provider", "fake")
    assert rerun.code == 0, rerun.text
    up_to_date = int(re.search(r"(\d+) up to date", summary_line(rerun.err)).group(1))  # type: ignore[union-attr]
    assert up_to_date >= 20  # finished questions were recorded before the kill
    keys = [line.split()[1] for line in log.read_text().splitlines()]
    assert len(paid_before) <= len(keys)
    assert len(keys) == len(set(keys)), "an answer already received was paid for again"
