"""One `mksap run`: select the targets (`--limit`, `--sample`), then estimate the bill
(`--estimate`, no lock: it writes nothing of the build state), or take the build lock and plan
(`--dry-run`) or build (directly or through batches, within `max_cost`), and record the usage.
The command only renders the result."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mksap.bank import Question, parse_targets
from mksap.build.lock import BuildLock
from mksap.build.plan import PlannedTask, plan
from mksap.build.progress import choose_progress
from mksap.build.runner import RunReport, summary, what_stopped
from mksap.build.runner import run as run_graph
from mksap.build.tasks import Build
from mksap.contracts.errors import ConfigError, ExitCode, MksapError
from mksap.contracts.provider import Usage
from mksap.contracts.registry import Registry
from mksap.llm.usage import record_usage
from mksap.settings import Settings, check_stage_settings

if TYPE_CHECKING:
    from mksap.llm.estimate import CostEstimate


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
    estimate: bool = False
    limit: int | None = None  # the first N questions of the targets
    sample: int | None = None  # N questions spread over the systems, the same N every time


@dataclass
class RunOutcome:
    """What happened: the planned tasks of a dry run, the estimate, or the report and summary
    of a build."""

    questions: int
    planned: list[PlannedTask] | None = None
    report: RunReport | None = None
    lines: list[str] = field(default_factory=list)
    estimate: CostEstimate | None = None

    @property
    def exit_code(self) -> ExitCode:
        return self.report.exit_code if self.report is not None else ExitCode.OK


def build_targets(
    settings: Settings, request: RunRequest, *, registry: Registry, notice: Callable[[str], None]
) -> RunOutcome:
    """Build (or plan, or estimate) the stale tasks of `request.targets`; see the module doc."""
    check_request(request)
    selection = parse_targets(request.targets, settings.data)
    build = Build.open(settings, notice=notice, use_cache=request.use_cache, refresh=request.refresh, registry=registry)
    check_stage_settings(settings, [s.name for s in build.stages])
    questions = choose(selection.discover(settings.data), limit=request.limit, sample=request.sample)
    if not questions:
        raise MksapError(f"no question under {settings.data} matches {' '.join(request.targets) or 'anything'}")
    if request.estimate:
        from mksap.build.estimate import estimate_run

        estimate = estimate_run(
            build, questions, force=request.force, use_cache=request.use_cache, refresh=request.refresh, notice=notice
        )
        return RunOutcome(len(questions), estimate=estimate)
    with BuildLock(settings.build_dir()).acquire(wait=request.wait):
        if request.dry_run:
            return RunOutcome(len(questions), planned=plan(build, questions, force=request.force))
        if request.batch:
            check_batch(build)
        if settings.max_cost is not None:
            check_priced(build)
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
        text, stopped = what_stopped(summary(report, build) + f" in {time.monotonic() - t0:.1f}s", build)
        if stopped is not None:
            report.exit_code = stopped
        lines = [text, *record_usage(settings, build.runtime)]
    return RunOutcome(len(questions), report=report, lines=lines)


def check_request(request: RunRequest) -> None:
    """Options that cannot go together, or out of range."""
    if request.estimate and request.dry_run:
        raise ConfigError("--estimate and --dry-run: choose one (--estimate also says which requests are cached)")
    if request.limit is not None and request.sample is not None:
        raise ConfigError("--limit and --sample: choose one")
    for name, n in (("--limit", request.limit), ("--sample", request.sample)):
        if n is not None and n < 1:
            raise ConfigError(f"{name} must be at least 1, not {n}")


def choose(questions: list[Question], *, limit: int | None = None, sample: int | None = None) -> list[Question]:
    """`--limit N`: the first N questions (in bank order). `--sample N`: N questions spread over
    the systems in proportion to their size (at least one each while N allows), and within a
    system evenly over its questions in bank order: a fixed choice, the same N every time."""
    if limit is not None:
        return questions[:limit]
    if sample is None or sample >= len(questions):
        return questions
    systems: dict[str, list[Question]] = {}
    for q in questions:
        systems.setdefault(q.system, []).append(q)
    shares = _shares(sample, {name: len(qs) for name, qs in systems.items()})
    chosen = {q.qid for name, qs in systems.items() for q in _spread(qs, shares[name])}
    return [q for q in questions if q.qid in chosen]


def _shares(n: int, sizes: dict[str, int]) -> dict[str, int]:
    """`n` split over `sizes` by largest remainder; ties go to the system whose name hashes
    lowest (stable, and not always the alphabetically first)."""
    total = sum(sizes.values())
    exact = {name: n * size / total for name, size in sizes.items()}
    shares = {name: int(x) for name, x in exact.items()}
    if n >= len(sizes):  # every system is represented
        for name in shares:
            shares[name] = max(1, shares[name])
    order = sorted(sizes, key=lambda k: (-(exact[k] - int(exact[k])), hashlib.sha256(k.encode()).hexdigest()))
    while sum(shares.values()) > n:  # the minimum of one each overshot: take from the largest
        largest = max(shares, key=lambda k: (shares[k] - exact[k], shares[k]))
        shares[largest] -= 1
    i = 0
    while sum(shares.values()) < n:
        name = order[i % len(order)]
        if shares[name] < sizes[name]:
            shares[name] += 1
        i += 1
    return shares


def _spread(questions: list[Question], k: int) -> list[Question]:
    """`k` of `questions`, evenly spaced (the middle of each of k equal slices)."""
    n = len(questions)
    return [questions[(2 * j + 1) * n // (2 * k)] for j in range(k)] if k else []


def check_batch(build: Build) -> None:
    """What `--batch` cannot do yet: a per-stage model, or a spending cap."""
    if build.settings.max_cost is not None:
        raise ConfigError(
            "--batch with max_cost: batches are paid when submitted, and the cap is not applied to them yet; "
            "price the run with `mksap run --estimate --batch`, then drop --max-cost (or max_cost in config)"
        )
    default = build.runtime.identity()
    other = [s.name for s in build.stages if s.uses_llm and build.runtime.identity(s.name) != default]
    if other:
        raise ConfigError(
            f"--batch sends every request with the run's own model; [stages.{other[0]}] names another: "
            "run without --batch, or remove that stage's provider/model"
        )


def check_priced(build: Build) -> None:
    """`max_cost` needs a price for every paid model the run may call."""
    for stage in (s for s in build.stages if s.uses_llm):
        for provider in build.runtime.providers(stage.name):
            if not provider.local and provider.estimate_cost(Usage(input_tokens=1)) is None:
                raise ConfigError(
                    f"max_cost needs the price of {provider.name}/{provider.model}, which is unknown: set it in "
                    f"[plugins.{provider.name}] prices, or drop --max-cost"
                )
