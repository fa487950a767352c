"""Running the task graph with doit: the loader, the reporter, interrupts, dry-run planning.

doit is the engine; this module only configures it. `dodo.py` uses `doit_config()` and
`Build.task_namespace()` too, so both entry points share one DB, one checker and one graph.
"""

from __future__ import annotations

import contextlib
import gc
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from doit.cmd_base import TaskLoader2
from doit.doit_cmd import DoitMain
from doit.loader import load_tasks
from doit.task import Task

from mksap.bank import Question
from mksap.build.checker import SourceChecker
from mksap.build.doit_private import checkpoint_running_build
from mksap.build.progress import ProgressView, QuietProgress
from mksap.build.tasks import Build
from mksap.contracts.errors import ExitCode, MksapError, Terminated, exit_code_for

Outcome = Literal["built", "up-to-date", "failed", "skipped"]


@dataclass
class RunReport:
    """What happened to every task, and per question."""

    tasks: dict[str, Outcome] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    interrupted: str | None = None
    exit_code: ExitCode = ExitCode.OK

    def questions(self, final_stage: str) -> dict[str, Outcome]:
        """Per question: failed if any of its tasks failed, else the final task's outcome."""
        result: dict[str, Outcome] = {}
        for name, outcome in self.tasks.items():
            stage, qid = name.split(":", 1)
            if outcome == "failed" or result.get(qid) == "failed":
                result[qid] = "failed"
            elif stage == final_stage:
                result[qid] = outcome
        return result

    def counts(self, final_stage: str) -> dict[str, int]:
        per_q = self.questions(final_stage)
        return {k: sum(1 for v in per_q.values() if v == k) for k in ("built", "up-to-date", "failed")}


def make_reporter(report: RunReport, progress: ProgressView, build: Build) -> type:
    """A doit reporter class bound to this run's report and progress view."""

    class MksapReporter:
        desc = "mksap progress and summary"

        def __init__(self, outstream: Any, options: Any) -> None:
            self.lock = threading.Lock()
            self.done = 0
            self.failed = 0

        def initialize(self, tasks: dict[str, Task], selected_tasks: list[str]) -> None:
            # Tasks are loaded: move them out of the collector's sight and turn it back on
            # (see `quiet_collector`).
            gc.freeze()
            gc.enable()
            progress.start(sum(1 for name in tasks if ":" in name))

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
            checkpoint_running_build()
            self._record(task, "built")

        def add_failure(self, task: Task, fail: Any) -> None:
            reason = build.failures_this_run.get(task.name)
            if reason is None:
                kind = type(fail).__name__
                if kind == "UnmetDependency":
                    self._record(task, "skipped")
                    return
                reason = " ".join(fail.get_msg().split())[:300]
            self._record(task, "failed", reason)

        def skip_uptodate(self, task: Task) -> None:
            self._record(task, "up-to-date")

        def skip_ignore(self, task: Task) -> None:
            self._record(task, "up-to-date")

        def cleanup_error(self, exception: Any) -> None:
            pass

        def runtime_error(self, msg: str) -> None:
            report.reasons["<doit>"] = msg

        def teardown_task(self, task: Task) -> None:
            pass

        def complete_run(self) -> None:
            progress.finish()

    return MksapReporter


def doit_config(build: Build, *, jobs: int, reporter: type | None = None) -> dict[str, Any]:
    """The DOIT_CONFIG both entry points use."""
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


class MksapLoader(TaskLoader2):
    """doit task loader over a Build and a list of questions (no dodo.py needed)."""

    def __init__(self, build: Build, questions: list[Question], config: dict[str, Any]) -> None:
        super().__init__()
        self.build = build
        self.questions = questions
        self.doit_cfg = config

    def load_doit_config(self) -> dict[str, Any]:
        return self.doit_cfg

    def load_tasks(self, cmd: Any, pos_args: list[str]) -> list[Task]:
        namespace = self.build.task_namespace(self.questions)
        return load_tasks(namespace, self.cmd_names, allow_delayed=False, args=pos_args, config=self.config)


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
    """Build the given questions' stale tasks (all of them with `force`)."""
    report = RunReport()
    progress = progress or QuietProgress()
    build.write_fingerprints()
    config = doit_config(build, jobs=jobs, reporter=make_reporter(report, progress, build))
    loader = MksapLoader(build, questions, config)
    args = ["run"] + (["--always-execute"] if force else [])
    try:
        with interrupts_as_keyboard(), quiet_collector():
            code = DoitMain(loader).run(args)
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM as `Terminated`
        build.runtime.cancel_all()
        report.interrupted = "SIGTERM" if isinstance(e, Terminated) else "SIGINT"
        report.exit_code = exit_code_for(e)
        return report
    failed = any(v == "failed" for v in report.tasks.values())
    # doit exits 2 when a task errored rather than failed; with `continue` that includes every
    # task downstream of a failed one (UnmetDependency). Those are recorded per question above.
    if code not in (0, 1, 2) or "<doit>" in report.reasons or (code == 2 and not failed):
        detail = report.reasons.get("<doit>", "see the messages above")
        raise MksapError(f"doit could not run the build (exit {code}): {detail}")
    report.exit_code = ExitCode.FAILED if failed else ExitCode.OK
    return report


def failure_lines(report: RunReport, build: Build) -> list[str]:
    """One line per failed question: the first failing task and its reason."""
    lines: dict[str, str] = {}
    for name, outcome in report.tasks.items():
        stage, qid = name.split(":", 1)
        if outcome == "failed" and qid not in lines:
            lines[qid] = f"FAILED {qid} ({stage}): {report.reasons.get(name, 'failed')}"
    return list(lines.values())


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
    lines.append(
        f"{counts['built']} built, {counts['up-to-date']} up to date, {counts['failed']} failed "
        f"({total} question{'s' if total != 1 else ''})"
    )
    if report.interrupted:
        lines.append(f"interrupted by {report.interrupted}: finished tasks are recorded; run again to continue")
    return "\n".join(lines)
