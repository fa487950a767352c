"""What `dodo.py` exposes to plain `doit`: DOIT_CONFIG and the `task_<stage>` generators."""

from __future__ import annotations

import atexit
import gc
import signal
import sys
from typing import Any

from mksap.bank import discover
from mksap.build.tasks import Build
from mksap.build.runner import RunReport, doit_config, make_reporter, summary
from mksap.contracts.errors import MksapError
from mksap.build.lock import BuildLock
from mksap.build.progress import choose_progress
from mksap.settings import load_settings

READ_ONLY_COMMANDS = {"list", "info", "help", "dumpdb", "tabcompletion"}


def _command(argv: list[str]) -> str:
    """The doit command in `argv` (option values such as `-f dodo.py` are not commands)."""
    commands = READ_ONLY_COMMANDS | {"run", "forget", "ignore", "clean", "auto", "strace", "reset-dep"}
    return next((a for a in argv[1:] if a in commands), "run")


def _on_term(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # doit saves finished tasks on KeyboardInterrupt, not on SIGTERM


def dodo_namespace(argv: list[str] | None = None) -> dict[str, Any]:
    argv = sys.argv if argv is None else argv
    gc.disable()  # re-enabled by the reporter once tasks are loaded (see engine.quiet_collector)
    settings = load_settings().settings

    def notice(message: str) -> None:
        print(f"mksap: {message}", file=sys.stderr)

    build = Build.open(settings, notice=notice)
    if _command(argv) not in READ_ONLY_COMMANDS:
        try:
            lock = BuildLock(settings.build_dir()).acquire()
        except MksapError as e:  # refuse at once, as `mksap run` does: a message, not a traceback
            notice(f"error: {e}")
            raise SystemExit(e.exit_code) from None
        atexit.register(lock.release)
        signal.signal(signal.SIGTERM, _on_term)
        for line in build.notices():
            notice(line)
    atexit.register(build.runtime.close)
    build.write_fingerprints()
    report = RunReport()
    progress = choose_progress(quiet=False)

    def finished() -> None:
        if report.tasks:
            print(summary(report, build), file=sys.stderr)

    atexit.register(finished)
    reporter = make_reporter(report, progress, build)
    questions = discover(settings.data)
    return {"DOIT_CONFIG": doit_config(build, jobs=settings.jobs, reporter=reporter), **build.task_namespace(questions)}
