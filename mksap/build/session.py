"""One `mksap run`: select the targets, take the build lock, then plan (`--dry-run`) or build
(directly or through batches), and record the usage. The command only renders the result."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mksap.bank import parse_targets
from mksap.build.lock import BuildLock
from mksap.build.plan import PlannedTask, plan
from mksap.build.progress import choose_progress
from mksap.build.runner import RunReport, summary
from mksap.build.runner import run as run_graph
from mksap.build.tasks import Build
from mksap.contracts.errors import ExitCode, MksapError
from mksap.contracts.registry import Registry
from mksap.llm.usage import record_usage
from mksap.settings import Settings


@dataclass(frozen=True)
class RunRequest:
    """What the user asked `mksap run` for, besides the settings."""

    targets: list[str]
    force: bool = False
    dry_run: bool = False
    quiet: bool = False
    wait: bool = False
    use_cache: bool = True
    refresh: bool = False
    batch: bool = False
    batch_failures: str = "fallback"
    batch_poll: float = 30.0


@dataclass
class RunOutcome:
    """What happened: the planned tasks of a dry run, or the report and summary of a build."""

    questions: int
    planned: list[PlannedTask] | None = None
    report: RunReport | None = None
    lines: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> ExitCode:
        return self.report.exit_code if self.report is not None else ExitCode.OK


def build_targets(
    settings: Settings, request: RunRequest, *, registry: Registry, notice: Callable[[str], None]
) -> RunOutcome:
    """Build (or plan) the stale tasks of `request.targets`; see the module doc."""
    selection = parse_targets(request.targets, settings.data)
    build = Build.open(settings, notice=notice, use_cache=request.use_cache, refresh=request.refresh, registry=registry)
    questions = selection.discover(settings.data)
    if not questions:
        raise MksapError(f"no question under {settings.data} matches {' '.join(request.targets) or 'anything'}")
    with BuildLock(settings.build_dir()).acquire(wait=request.wait):
        if request.dry_run:
            return RunOutcome(len(questions), planned=plan(build, questions, force=request.force))
        if not request.quiet:
            for line in build.notices():
                notice(line)
        t0 = time.monotonic()
        try:
            if request.batch:
                from mksap.batch.run import BatchOptions, run_batched

                options = BatchOptions(failures=request.batch_failures, poll_interval=request.batch_poll)
                report = run_batched(
                    build,
                    questions,
                    jobs=settings.jobs,
                    force=request.force,
                    quiet=request.quiet,
                    options=options,
                    notice=notice,
                )
            else:
                progress = choose_progress(request.quiet)
                report = run_graph(build, questions, jobs=settings.jobs, force=request.force, progress=progress)
        finally:
            build.runtime.close()
        lines = [summary(report, build) + f" in {time.monotonic() - t0:.1f}s", *record_usage(settings, build.runtime)]
    return RunOutcome(len(questions), report=report, lines=lines)
