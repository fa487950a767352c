"""What `dodo.py` exposes to plain `doit`: DOIT_CONFIG and the `task_<stage>` generators.

Read-only doit commands (`list`, `info`, `help`, ...) get the same task graph and nothing
else: no lock, no fingerprint writes, no signal handler, the garbage collector left alone.
Only a command that runs tasks takes the build lock and prepares the build like `mksap run`,
and ends like it: a bad setting or bank is one line, a failed question exits 1 (not doit's 2),
Ctrl-C and SIGTERM exit 130 / 143 with the summary and no traceback (`_interrupt_hook`).
`doit` (`doit run`) of the whole build uses the up-to-date manifest as `mksap run` does: doit
gets the tasks of only the questions it does not vouch for. Given task names, `-a` or any
option that changes what doit checks, doit gets every task, as without the manifest.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import signal
import sys
from typing import Any

from mksap.bank import Question, discover
from mksap.build.doit_private import RunArguments, run_arguments
from mksap.build.lock import BuildLock
from mksap.build.manifest import ManifestRun
from mksap.build.plan import check_dependency_db
from mksap.build.progress import choose_progress
from mksap.build.runner import RunReport, doit_config, make_reporter, raise_terminated, summary, what_stopped
from mksap.build.tasks import Build
from mksap.contracts.errors import ExitCode, MksapError, Terminated, exit_code_for
from mksap.settings import load_settings

READ_ONLY_COMMANDS = {"list", "info", "help", "dumpdb", "tabcompletion"}


def _command(argv: list[str]) -> str:
    """The doit command in `argv` (option values such as `-f dodo.py` are not commands)."""
    commands = READ_ONLY_COMMANDS | {"run", "forget", "ignore", "clean", "auto", "strace", "reset-dep"}
    return next((a for a in argv[1:] if a in commands), "run")


def _notice(message: str) -> None:
    print(f"mksap: {message}", file=sys.stderr)


def dodo_namespace(argv: list[str] | None = None) -> dict[str, Any]:
    argv = sys.argv if argv is None else argv
    try:
        settings = load_settings().settings
        build = Build.open(settings, notice=_notice)
        questions = discover(settings.data)
    except MksapError as e:  # a bad setting or a missing bank: one line, as `mksap run` says it
        _notice(f"error: {e}")
        raise SystemExit(exit_code_for(e)) from None
    command = _command(argv)
    if command in READ_ONLY_COMMANDS:
        return {"DOIT_CONFIG": doit_config(build, jobs=settings.jobs), **build.task_namespace(questions)}
    arguments = run_arguments(argv) if command == "run" else None
    config, chosen = _prepare_run(build, settings.jobs, questions, arguments)
    return {"DOIT_CONFIG": config, **build.task_namespace(chosen)}


def _prepare_run(
    build: Build, jobs: int, questions: list[Question], arguments: RunArguments | None
) -> tuple[dict[str, Any], list[Question]]:
    """Lock, fingerprints, SIGTERM as an interrupt, progress and summary: as `mksap run` does.

    For `doit run` (`arguments`), also the up-to-date manifest: when the whole build is asked
    for, doit is given only the questions it does not vouch for, and the others are reported up
    to date; after any completed run the manifest records what doit found (`manifest.py`).
    Returns the DOIT_CONFIG and the questions to define tasks for."""
    gc.disable()  # re-enabled by the reporter once tasks are loaded (see runner.quiet_collector)
    try:
        lock = BuildLock(build.build_dir).acquire()
        check_dependency_db(build.dep_file)
    except MksapError as e:  # refuse at once, as `mksap run` does: a message, not a traceback
        _notice(f"error: {e}")
        raise SystemExit(exit_code_for(e)) from None
    atexit.register(lock.release)
    signal.signal(signal.SIGTERM, raise_terminated)
    for line in build.notices():
        _notice(line)
    atexit.register(build.runtime.close)
    build.write_fingerprints()
    report = RunReport()
    manifest, chosen = None, questions
    if arguments is not None:
        manifest = ManifestRun.start(build, questions)
        chosen = manifest.choose(report, skip=arguments.whole_build)

    def finished() -> None:
        text, stopped = what_stopped(summary(report, build), build)
        if report.tasks:
            print(text, file=sys.stderr)
        if report.completed:  # doit ran the whole graph: exit as `mksap run` would
            if manifest is not None and report.db_error is None:
                manifest.seal(report)
            # (doit says 2 for a question that failed by a task error, and for every task
            # downstream of a failed one; mksap says 1 for any failed question)
            code = ExitCode.ERROR if report.db_error else ExitCode.FAILED if report.failed() else ExitCode.OK
            _exit(build, lock, stopped or code)

    atexit.register(finished)
    sys.excepthook = _interrupt_hook(report, build, lock, sys.excepthook)
    reporter = make_reporter(report, choose_progress(quiet=not chosen), build, manifest)
    return doit_config(build, jobs=jobs, reporter=reporter), chosen


def _interrupt_hook(report: RunReport, build: Build, lock: BuildLock, previous: Any) -> Any:
    """The end of a plain `doit` run that Ctrl-C or SIGTERM stopped, as `mksap run` ends it.

    doit saves its DB on the way out (its runner's `finally`) and then lets the interrupt
    propagate out of `DoitMain.run`, uncaught: Python would print a traceback and exit 1. This
    `sys.excepthook` takes it instead: no traceback, the summary, the calls in flight cancelled,
    and the exit status of `mksap run` (130 / 143) through `os._exit`, which also ends the
    worker threads still busy (daemon threads the interpreter would otherwise wait on)."""

    def hook(kind: type[BaseException], error: BaseException, tb: Any) -> None:
        if not issubclass(kind, KeyboardInterrupt):
            previous(kind, error, tb)
            return
        build.interrupting = True
        build.runtime.cancel_all()
        report.interrupted = "SIGTERM" if isinstance(error, Terminated) else "SIGINT"
        print(summary(report, build), file=sys.stderr)
        _exit(build, lock, exit_code_for(error))

    return hook


def _exit(build: Build, lock: BuildLock, code: int) -> None:
    """End the process with `code`, after what the exit handlers would have done for us."""
    with contextlib.suppress(Exception):  # whatever is left to close, the exit status stands
        build.runtime.close()
    lock.release()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
