"""Every failure keeps its cause: an error that is not mksap's own (a full disk, a read-only
output, a bug in a stage) fails its question with one line naming the exception, writes the
`.failed` record `mksap status` reads, and leaves its traceback in `<cache>/build/errors.log`,
which the summary names; a broken dependency DB is one line; interrupts end `mksap run` and
plain `doit` alike (130 / 143, the summary, no traceback) whatever a worker is doing; and the
commands an error advises work when pasted."""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import mksap.build.tasks as tasks_module
from tests.conftest import REPO, Workspace, example_qids, summary_line

N = len(example_qids())
VICTIM = "enmcq24101"


def _write_fails(monkeypatch: pytest.MonkeyPatch, error: Callable[[Path], BaseException]) -> None:
    """The output of VICTIM cannot be written (as if its disk were full, say)."""
    original = tasks_module.write_json

    def write_json(path: Path, data: Any, **kwargs: Any) -> None:
        if path.name == f"{VICTIM}.json":
            raise error(path)
        original(path, data, **kwargs)

    monkeypatch.setattr(tasks_module, "write_json", write_json)


def disk_full(path: Path) -> BaseException:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def read_only(path: Path) -> BaseException:
    return OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))


def a_bug(path: Path) -> BaseException:
    return KeyError("statements")


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (
            disk_full,
            r"^disk full: OSError: \[Errno 28\] No space left on device: '.*enmcq24101\.json'; free some space",
        ),
        (read_only, r"^read-only file system: OSError: \[Errno 30\] Read-only file system: '.*enmcq24101\.json'"),
        (a_bug, r"^KeyError: 'statements'$"),
    ],
    ids=["disk-full", "read-only", "bug"],
)
def test_an_error_that_is_not_ours_keeps_its_cause(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch, error: Callable[[Path], BaseException], words: str
) -> None:
    _write_fails(monkeypatch, error)
    result = ws.cli("run", "-q")

    assert result.code == 1, result.text
    assert "Traceback" not in result.text
    (line,) = [x for x in result.err.splitlines() if x.startswith("FAILED")]
    reason = line.removeprefix(f"FAILED {VICTIM} (assemble): ")
    assert reason != line and re.search(words, reason), line
    assert summary_line(result.err).startswith(f"{N - 1} built, 0 up to date, 1 failed ({N} questions)")
    log = ws.build_dir / "errors.log"
    assert f"tracebacks in {log}" in result.err
    logged = log.read_text(encoding="utf-8")
    assert f"assemble:{VICTIM}: {reason}" in logged and "Traceback (most recent call last)" in logged

    record = ws.build_dir / VICTIM[:2] / VICTIM / "assemble.failed"
    assert record.read_text(encoding="utf-8").strip() == reason
    status = json.loads(ws.cli("status", "--json").out)["data"]
    assert status["questions"][VICTIM] == "failed"
    assert status["failures"] == [{"qid": VICTIM, "stage": "assemble", "reason": reason}]

    monkeypatch.undo()  # the disk has room again
    fixed = ws.cli("run", "-q")
    assert fixed.code == 0, fixed.text
    assert summary_line(fixed.err).startswith(f"1 built, {N - 1} up to date, 0 failed")
    assert not record.exists()


def test_a_failure_doit_makes_itself_is_recorded_like_ours(built: Workspace) -> None:
    """doit can fail a task without running our action (an input gone between the plan and the
    run): the reporter gives it one line, a `.failed` record and a log entry too."""
    from doit.exceptions import TaskError
    from doit.task import Task

    from mksap.bank import discover
    from mksap.build.progress import QuietProgress
    from mksap.build.runner import RunReport, make_reporter
    from mksap.build.tasks import Build
    from mksap.settings import load_settings

    ws = built
    settings = load_settings({"data": ws.data, "out": ws.out, "cache_dir": ws.cache}).settings
    build = Build.open(settings, notice=lambda m: None)
    build.task_namespace(discover(ws.data))
    report = RunReport()
    reporter = make_reporter(report, QuietProgress(), build)(None, None)
    try:
        raise FileNotFoundError(2, "No such file or directory", "x.json")
    except FileNotFoundError as e:
        fail = TaskError("Dependent file 'x.json' does not exist.", e)
    reporter.add_failure(Task(f"nlp:{VICTIM}", None), fail)
    build.runtime.close()
    reason = report.reasons[f"nlp:{VICTIM}"]
    assert (
        reason
        == "Dependent file 'x.json' does not exist.: FileNotFoundError: [Errno 2] No such file or directory: 'x.json'"
    )
    assert (ws.build_dir / VICTIM[:2] / VICTIM / "nlp.failed").read_text(encoding="utf-8").strip() == reason
    assert f"nlp:{VICTIM}" in (ws.build_dir / "errors.log").read_text(encoding="utf-8")


# -- the dependency DB -------------------------------------------------------------------------


def test_a_corrupt_dependency_db_is_one_line_everywhere(built: Workspace) -> None:
    ws = built
    db = ws.build_dir / "doit.sqlite"
    db.write_bytes(b"not a database at all" * 100)
    for result in (ws.cli("run", "-q"), ws.cli("status"), ws.cli("run", "--dry-run"), ws.doit()):
        assert result.code == 2, result.text
        assert "Traceback" not in result.text
        assert f"the dependency DB {db} is unusable (sqlite3: file is not a database); delete it" in result.err
    db.unlink()  # as the line says
    assert ws.cli("run", "-q").code == 0


def test_a_dependency_db_deleted_during_the_run_is_one_line(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    import mksap.build.doit_private as private
    import mksap.build.runner as runner

    original = private.checkpoint_running_build

    def delete_then_checkpoint() -> None:  # someone removes the build state mid-run
        (ws.build_dir / "doit.sqlite").unlink(missing_ok=True)
        original()

    monkeypatch.setattr(runner, "checkpoint_running_build", delete_then_checkpoint)
    result = ws.cli("run", "-q")
    assert result.code == 2, result.text
    assert "Traceback" not in result.text
    assert re.search(
        r"the dependency DB .*doit\.sqlite was deleted during the run \(sqlite3: .*\); .*run again", result.err
    )
    monkeypatch.undo()
    again = ws.cli("run", "-q")
    assert again.code == 0, again.text


def test_a_readable_db_passes_the_check(built: Workspace) -> None:
    from mksap.build.plan import check_dependency_db

    check_dependency_db(built.build_dir / "doit.sqlite")
    with sqlite3.connect(built.build_dir / "doit.sqlite") as conn:
        assert conn.execute("select count(*) from doit").fetchone()[0] > 0


# -- interrupts, whatever a worker is doing -----------------------------------------------------


def _busy_env(ws: Workspace, flag: Path) -> dict[str, str]:
    return {
        "MKSAP_PLUGINS": "tests.fakes.busy_stage",
        "PYTHONPATH": str(REPO),
        "BUSY_QID": VICTIM,
        "BUSY_FLAG": str(flag),
        "MKSAP_JOBS": "4",
    }


@pytest.mark.parametrize("entry", ["mksap", "doit"])
@pytest.mark.parametrize(("sig", "code", "name"), [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "SIGINT")])
def test_an_interrupt_ends_the_run_at_once_while_a_worker_spins(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch, entry: str, sig: signal.Signals, code: int, name: str
) -> None:
    flag = ws.root / "spinning"
    for key, value in _busy_env(ws, flag).items():
        monkeypatch.setenv(key, value)
    if entry == "mksap":
        proc = ws.spawn("run", "-q")
    else:
        proc = ws.spawn_doit(**_busy_env(ws, flag))
    deadline = time.monotonic() + 60
    while not (flag.exists() and sum(1 for _ in ws.out.glob("*/*/*.json")) == N):  # all done but the spin
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the run never got busy:\n{proc.communicate()[1][-2000:]}")
        time.sleep(0.02)

    t0 = time.monotonic()
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=30)  # the spinning task alone would never end
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"{name} did not end the run while a worker was busy")
    took = time.monotonic() - t0

    assert proc.returncode == code, err[-2000:]
    assert "Traceback" not in err
    assert took < 15, f"{name} took {took:.1f}s"
    # what doit had taken in when the signal came: every output was written by then, a few
    # results may still have been on their way from the worker threads
    m = re.search(
        rf"interrupted by {name}: the (\d+) task\(s\) finished are recorded \((\d+) question\(s\) complete\)", err
    )
    assert m, err[-1500:]
    tasks, complete = int(m[1]), int(m[2])
    assert N - 4 <= complete <= N and 8 * complete <= tasks <= N * 9 - 1, err[-1500:]
    assert re.match(
        rf"{complete} built, 0 up to date, 0 failed(, \d+ unfinished)? \({N} questions\)", summary_line(err)
    )
    assert not (ws.build_dir / VICTIM[:2] / VICTIM / "spin.failed").exists()


def test_an_interrupted_summary_counts_what_was_built() -> None:
    """Interrupted before any question was complete, the summary still says what was done."""
    from types import SimpleNamespace

    from mksap.build.runner import RunReport, summary

    tasks = {f"{stage}:q{n}": "built" for n in range(3) for stage in ("parse", "nlp", "critique")}
    tasks["assemble:q0"] = "built"
    report = RunReport(tasks=tasks, interrupted="SIGTERM")  # type: ignore[arg-type]
    build = SimpleNamespace(final_stage=SimpleNamespace(name="assemble"), errors_logged=0)
    text = summary(report, build)  # type: ignore[arg-type]
    assert "1 built, 0 up to date, 0 failed, 2 unfinished (3 questions)" in text
    assert "interrupted by SIGTERM: the 10 task(s) finished are recorded (1 question(s) complete)" in text


# -- advice that works when pasted ----------------------------------------------------------------


def test_show_of_an_unknown_id_says_it_is_not_in_the_bank(built: Workspace) -> None:
    result = built.cli("show", "cvmcq99999")
    assert result.code == 2, result.text
    assert f"cvmcq99999 is not a question of the bank {built.data}" in result.err
    assert "mksap run cvmcq99999" not in result.err


def _advised(err: str, lead: str) -> list[str]:
    m = re.search(rf"{lead}(mksap [^;]*?)(?: first)?$", err.strip(), re.MULTILINE)
    assert m, err
    import shlex

    return shlex.split(m.group(1))


def test_show_and_export_advise_the_users_own_locations(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run from another folder, the locations given as flags are not the defaults, so the
    advised command must carry them; run as advised, it builds what was missing."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    shown = ws.cli("show", VICTIM)
    assert shown.code == 2, shown.text
    argv = _advised(shown.err, "run: ")
    assert argv[:3] == ["mksap", "run", VICTIM]
    assert argv[3:] == ws.location_flags()

    deck = tmp_path / "deck.apkg"
    exported = ws.cli("export", "anki", VICTIM, "-o", str(deck), *ws.location_flags(), locations=False)
    assert exported.code == 2, exported.text
    argv = _advised(exported.err, "run: ")
    assert argv[:3] == ["mksap", "run", VICTIM] and argv[3:] == ws.location_flags()

    from mksap.cli import main

    assert main(argv[1:]) == 0  # as advised
    assert ws.cli("show", VICTIM).code == 0


def test_advice_leaves_out_the_locations_a_bare_command_finds(built: Workspace) -> None:
    result = built.cli("show", "cvmcq99999")  # the workspace's folders are the cwd defaults
    assert "`mksap status` lists its questions" in result.err, result.text
