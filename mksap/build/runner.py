"""Running the task graph with doit: the loader, the reporter, interrupts, dry-run planning.

doit is the engine; this module only configures it. `dodo.py` uses `doit_config()` and
`Build.task_namespace()` too, so both entry points share one DB, one checker and one graph.
doit itself is imported only when it is run: a no-op the up-to-date manifest answers never
needs it (`run`).
"""

from __future__ import annotations

import contextlib
import gc
import signal
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from mksap.bank import Question
from mksap.build.manifest import ManifestRun, db_signature, reseal_after_foreign_tasks
from mksap.build.plan import check_dependency_db, db_problem
from mksap.build.progress import ProgressView, QuietProgress
from mksap.build.tasks import Build
from mksap.contracts.errors import ExitCode, MksapError, Terminated, exit_code_for

if TYPE_CHECKING:
    from doit.doit_cmd import DoitMain
    from doit.task import Task

Outcome = Literal["built", "up-to-date", "failed", "skipped"]


@dataclass
class RunReport:
    """What happened to every task, and per question."""

    tasks: dict[str, Outcome] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    interrupted: str | None = None
    exit_code: ExitCode = ExitCode.OK
    db_error: str | None = None  # the dependency DB could not be read or written (one line)
    completed: bool = False  # doit went through the whole run (not stopped by an interrupt)

    def questions(self, final_stage: str) -> dict[str, str]:
        """Per question: failed if any of its tasks failed, else the final task's outcome;
        'unfinished' when an interrupt came before its final task (some of its tasks ran)."""
        result: dict[str, str] = {}
        for name, outcome in self.tasks.items():
            stage, qid = name.split(":", 1)
            if outcome == "failed" or result.get(qid) == "failed":
                result[qid] = "failed"
            elif stage == final_stage:
                result[qid] = outcome
            elif self.interrupted and qid not in result:
                result[qid] = "unfinished"
        return result

    def failed(self) -> bool:
        return any(v == "failed" for v in self.tasks.values())

    def counts(self, final_stage: str) -> dict[str, int]:
        per_q = self.questions(final_stage)
        return {k: sum(1 for v in per_q.values() if v == k) for k in ("built", "up-to-date", "failed", "unfinished")}


def make_reporter(report: RunReport, progress: ProgressView, build: Build, manifest: ManifestRun | None = None) -> type:
    """A doit reporter class bound to this run's report and progress view, and to the
    up-to-date manifest of a build (which learns from it what doit found and did)."""
    from doit.dependency import DatabaseException

    from mksap.build.checker import SourceChecker
    from mksap.build.doit_private import runs_on, save_failure

    class MksapReporter:
        desc = "mksap progress and summary"

        def __init__(self, outstream: Any, options: Any) -> None:
            self.lock = threading.Lock()
            self.done = 0
            self.failed = 0
            self.foreign = False  # a run of no question's task (an export): see complete_run
            self.db_before: Any = None

        def initialize(self, tasks: dict[str, Task], selected_tasks: list[str]) -> None:
            # Tasks are loaded: move them out of the collector's sight and turn it back on
            # (see `quiet_collector`).
            gc.freeze()
            gc.enable()
            if manifest is not None and not runs_on(str(build.dep_file), SourceChecker):
                manifest.distrust()  # doit runs on another DB or checker: the manifest says nothing of it
            if manifest is None:
                stages = {s.name for s in build.stages}
                self.foreign = not any(name.partition(":")[0] in stages for name in tasks)
                self.db_before = db_signature(build.dep_file) if self.foreign else None
            progress.start(sum(1 for name in tasks if ":" in name), gauge=build.runtime.concurrency)

        def _record(self, task: Task, outcome: Outcome, reason: str | None = None) -> None:
            if ":" not in task.name:
                return
            with self.lock:
                report.tasks[task.name] = outcome
                if reason:
                    report.reasons[task.name] = reason
                self.done += 1
                self.failed += outcome == "failed"
                progress.update(self.done, self.failed)

        def get_status(self, task: Task) -> None:
            pass

        def execute_task(self, task: Task) -> None:
            pass

        def add_success(self, task: Task) -> None:
            # doit has just saved this task's record (main thread, between tasks): a good
            # moment to commit finished work so a SIGKILL does not lose it.
            if report.db_error is None:
                try:
                    checkpoint_running_build()
                except (sqlite3.Error, DatabaseException) as e:  # deleted or moved mid-run, disk full
                    report.db_error = db_problem(build.dep_file, e)
            if manifest is not None:
                manifest.task_done(task)
            self._record(task, "built")

        def add_failure(self, task: Task, fail: Any) -> None:
            reason = build.failures_this_run.get(task.name)
            if reason is None:
                kind = type(fail).__name__
                if kind == "UnmetDependency":
                    self._record(task, "skipped")
                    return
                if build.interrupting:
                    return  # cut short by the interrupt: neither built nor failed
                reason = build.record_failure(task.name, fail_line(fail), fail.get_msg())
            self._record(task, "failed", reason)

        def skip_uptodate(self, task: Task) -> None:
            self._record(task, "up-to-date")

        def skip_ignore(self, task: Task) -> None:
            if manifest is not None:
                manifest.task_ignored(task)
            self._record(task, "up-to-date")

        def cleanup_error(self, exception: Any) -> None:
            pass

        def runtime_error(self, msg: str) -> None:
            report.reasons["<doit>"] = msg

        def teardown_task(self, task: Task) -> None:
            pass

        def complete_run(self) -> None:
            # doit has saved and closed its DB: a failed save is the run's one-line error
            failure = save_failure()
            if failure is not None and report.db_error is None:
                report.db_error = db_problem(build.dep_file, failure)
            report.completed = not build.interrupting
            if self.foreign and report.db_error is None:
                reseal_after_foreign_tasks(build, self.db_before)
            progress.finish()

    return MksapReporter


def checkpoint_running_build() -> None:
    """`doit_private.checkpoint_running_build`, by a name of this module (where tests reach it)."""
    from mksap.build import doit_private

    doit_private.checkpoint_running_build()


def doit_config(build: Build, *, jobs: int, reporter: type | None = None) -> dict[str, Any]:
    """The DOIT_CONFIG both entry points use (`jobs` 0: as many threads as calls may be in flight)."""
    from mksap.build.checker import SourceChecker

    jobs = jobs or build.runtime.worker_threads([s.name for s in build.stages if s.uses_llm])
    config: dict[str, Any] = {
        "dep_file": str(build.dep_file),
        "backend": "mksap-sqlite",  # sqlite3 read in one query; transactional, never torn
        "check_file_uptodate": SourceChecker,
        "continue": True,  # one broken question never stops the others
        "par_type": "thread",
        "num_process": jobs if jobs > 1 else 0,
        "verbosity": 0,
    }
    if reporter is not None:
        config["reporter"] = reporter
    return config


@contextlib.contextmanager
def quiet_collector() -> Iterator[None]:
    """No cyclic GC while doit builds ~8 objects per task; the reporter re-enables it.

    Loading 17,600 tasks allocates millions of objects, and the collector rescanning the
    growing heap cost ~1 s of a 2.7 s no-op rebuild (measured with cProfile).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.unfreeze()
        if was_enabled:
            gc.enable()


def raise_terminated(signum: int, frame: Any) -> None:
    """The SIGTERM handler of every build: doit records finished tasks on an interrupt only."""
    raise Terminated()


@contextlib.contextmanager
def interrupts_as_keyboard() -> Iterator[None]:
    """Turn SIGTERM into `Terminated` in the main thread so doit records finished tasks."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(
    build: Build,
    questions: list[Question],
    *,
    jobs: int,
    force: bool = False,
    progress: ProgressView | None = None,
) -> RunReport:
    """Build the given questions' stale tasks (all of them with `force`).

    doit checks only the questions the up-to-date manifest does not vouch for (`manifest.py`);
    the others are reported up to date, and when that is all of them doit does not run."""
    report = RunReport()
    progress = progress or QuietProgress()
    check_dependency_db(build.dep_file)
    build.write_fingerprints()
    manifest = ManifestRun.start(build, questions)
    stale = manifest.choose(report, skip=not force)
    if not stale:
        report.completed = True
        return report
    config = doit_config(build, jobs=jobs, reporter=make_reporter(report, progress, build, manifest))
    args = ["run"] + (["--always-execute"] if force else [])
    try:
        with interrupts_as_keyboard(), quiet_collector():
            code = _doit_main(build, stale, config, report).run(args)
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM as `Terminated`
        build.interrupting = True  # what the cancelled calls fail with is not a failure
        build.runtime.cancel_all()
        report.interrupted = "SIGTERM" if isinstance(e, Terminated) else "SIGINT"
        report.exit_code = exit_code_for(e)
        return report
    if report.db_error is not None:
        raise MksapError(report.db_error)
    failed = report.failed()
    # doit exits 2 when a task errored rather than failed; with `continue` that includes every
    # task downstream of a failed one (UnmetDependency). Those are recorded per question above.
    if code not in (0, 1, 2) or "<doit>" in report.reasons or (code == 2 and not failed):
        detail = report.reasons.get("<doit>", "see the messages above")
        raise MksapError(f"doit could not run the build (exit {code}): {detail}")
    if report.completed:
        manifest.seal(report)
    report.exit_code = ExitCode.FAILED if failed else ExitCode.OK
    return report


def _doit_main(build: Build, questions: list[Question], config: dict[str, Any], report: RunReport) -> DoitMain:
    """doit's entry point over `build`'s tasks for `questions` (no dodo.py needed), whose `run`
    command reports a broken dependency DB in one line (`report.db_error`) instead of letting
    doit print a traceback."""
    from doit.cmd_base import TaskLoader2
    from doit.dependency import DatabaseException
    from doit.doit_cmd import DoitMain
    from doit.loader import load_tasks

    class MksapLoader(TaskLoader2):  # type: ignore[misc]
        def load_doit_config(self) -> dict[str, Any]:
            return config

        def load_tasks(self, cmd: Any, pos_args: list[str]) -> list[Task]:
            namespace = build.task_namespace(questions)
            return load_tasks(namespace, self.cmd_names, allow_delayed=False, args=pos_args, config=self.config)

    class MksapMain(DoitMain):  # type: ignore[misc]
        def get_cmds(self) -> Any:
            cmds = super().get_cmds()

            class RunCommand(cmds["run"]):  # type: ignore[misc, valid-type]
                def execute(self, params: Any, args: Any) -> Any:
                    try:
                        return super().execute(params, args)
                    except (sqlite3.Error, DatabaseException) as e:  # opening it (a failed save is kept)
                        report.db_error = report.db_error or db_problem(build.dep_file, e)
                        return 3

            cmds["run"] = RunCommand
            return cmds

    return MksapMain(MksapLoader())


def fail_line(fail: Any) -> str:
    """One line for a failure doit made itself: its message and the exception's last line."""
    message = " ".join(str(getattr(fail, "message", "") or type(fail).__name__).split())
    trace = [line for line in "".join(getattr(fail, "traceback", []) or []).splitlines() if line.strip()]
    return f"{message}: {trace[-1].strip()}" if trace else message


def failure_lines(report: RunReport, build: Build) -> list[str]:
    """One line per failed question: the first failing task and its reason."""
    lines: dict[str, str] = {}
    for name, outcome in report.tasks.items():
        stage, qid = name.split(":", 1)
        if outcome == "failed" and qid not in lines:
            lines[qid] = f"FAILED {qid} ({stage}): {report.reasons.get(name, 'failed')}"
    return list(lines.values())


_CAPPED = ": cost cap: "  # in the failure line of a task whose request the cap refused


def what_stopped(text: str, build: Build) -> tuple[str, ExitCode | None]:
    """The summary `text` with one line for what stopped the run's requests (the cost cap, no
    provider left, an LLM cache that cannot store), not one failure per question it left
    unfinished; and the exit status that says so (None: nothing stopped the run)."""
    budget, stop = build.runtime.budget, build.runtime.stop_reason
    if budget is not None and budget.stopped:
        return _said_once(text, _CAPPED, budget.line()), ExitCode.COST_CAP
    if stop is not None:
        line = f"stopped: {stop}; run again once that is fixed (what was answered is kept)"
        return _said_once(text, stop, line), ExitCode.ERROR
    return text, None


def _said_once(text: str, reason: str, line: str) -> str:
    kept = [ln for ln in text.splitlines() if not (ln.startswith("FAILED ") and reason in ln)]
    return "\n".join([*kept, line])


def summary(report: RunReport, build: Build) -> str:
    counts = report.counts(build.final_stage.name)
    lines = failure_lines(report, build)
    total = sum(counts.values())
    # Per task, not per question: a rerun cut off early (an upstream task reran, its output
    # did not change) shows here, while the question still counts as up to date.
    outcomes = list(report.tasks.values())
    ran = sum(1 for v in outcomes if v in ("built", "failed"))
    skipped = outcomes.count("skipped")
    lines.append(
        f"tasks: {ran} ran, {outcomes.count('up-to-date')} up to date"
        + (f", {skipped} not run (an upstream task failed)" if skipped else "")
    )
    unfinished = f", {counts['unfinished']} unfinished" if counts["unfinished"] else ""
    lines.append(
        f"{counts['built']} built, {counts['up-to-date']} up to date, {counts['failed']} failed{unfinished} "
        f"({total} question{'s' if total != 1 else ''})"
    )
    if build.errors_logged:
        lines.append(f"{build.errors_logged} error(s) that are not mksap's own: tracebacks in {build.errors_log}")
    if report.db_error:
        lines.append(f"error: {report.db_error}")
    if report.interrupted:
        built = outcomes.count("built")
        lines.append(
            f"interrupted by {report.interrupted}: the {built} task(s) finished are recorded "
            f"({counts['built']} question(s) complete); run again to continue"
        )
    return "\n".join(lines)
