"""What `dodo.py` exposes to plain `doit`: DOIT_CONFIG and the `task_<stage>` generators.

Read-only doit commands (`list`, `info`, `help`, ...) get the same task graph and nothing
else: no lock, no fingerprint writes, no signal handler, the garbage collector left alone.
Only a command that runs tasks takes the build lock and prepares the build like `mksap run`.
"""

from __future__ import annotations

import atexit
import gc
import signal
import sys
from typing import Any

from mksap.bank import discover
from mksap.build.lock import BuildLock
from mksap.build.progress import choose_progress
from mksap.build.runner import RunReport, doit_config, make_reporter, raise_terminated, summary
from mksap.build.tasks import Build
from mksap.contracts.errors import MksapError, exit_code_for
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
    settings = load_settings().settings
    build = Build.open(settings, notice=_notice)
    questions = discover(settings.data)
    if _command(argv) in READ_ONLY_COMMANDS:
        return {"DOIT_CONFIG": doit_config(build, jobs=settings.jobs), **build.task_namespace(questions)}
    return _prepare_run(build, settings.jobs) | build.task_namespace(questions)


def _prepare_run(build: Build, jobs: int) -> dict[str, Any]:
    """Lock, fingerprints, SIGTERM as an interrupt, progress and summary: as `mksap run` does."""
    gc.disable()  # re-enabled by the reporter once tasks are loaded (see runner.quiet_collector)
    try:
        lock = BuildLock(build.build_dir).acquire()
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

    def finished() -> None:
        if report.tasks:
            print(summary(report, build), file=sys.stderr)

    atexit.register(finished)
    reporter = make_reporter(report, choose_progress(quiet=False), build)
    return {"DOIT_CONFIG": doit_config(build, jobs=jobs, reporter=reporter)}
