"""`mksap run --estimate`: the bill of a run before it is paid, with no message request sent.

Later stages' requests depend on earlier answers, so the estimate runs the real task graph, into a
temporary build state (never the user's: their artifacts, doit DB, fingerprints and outputs are
not touched, and in-place mode is off), with the provider runtime answering every request the
LLM cache misses from the offline rules while recording what it would have sent
(`mksap.llm.estimate`). A request of a task the user's build has up to date is not counted: a
real run would not execute that task.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from mksap.bank import Question
from mksap.build.plan import plan
from mksap.build.progress import QuietProgress
from mksap.build.runner import failure_lines
from mksap.build.runner import run as run_graph
from mksap.build.tasks import Build
from mksap.contracts.errors import ConfigError
from mksap.llm.cache import ResponseCache
from mksap.llm.estimate import CostEstimate, EstimateCache, EstimateRecorder, Tally, caching_note, summarise
from mksap.llm.runtime import ProviderRuntime, ResponseStore


def estimate_run(
    build: Build,
    questions: list[Question],
    *,
    force: bool,
    use_cache: bool,
    refresh: bool,
    notice: Callable[[str], None],
) -> CostEstimate:
    """What `mksap run` with the same targets and options would send and pay; sends nothing."""
    settings = build.settings
    stale = None if force else {t.name for t in plan(build, questions)}
    tally = Tally(stale=stale)
    real: ResponseStore | None = None
    if use_cache and not refresh and settings.llm_cache_dir.is_dir():  # never create it
        real = ResponseCache(settings.llm_cache_dir)
    answerer = build.settings.estimate_with  # a local provider: it answers any request from its context
    if answerer not in build.registry.names("provider") or not build.registry.provider(answerer).local:
        raise ConfigError(
            f"--estimate answers requests with the local provider '{answerer}' (estimate_with), which is not installed"
        )
    notice(f"estimate: {len(questions)} question(s) through the task graph in a temporary build state; nothing is sent")
    with tempfile.TemporaryDirectory(prefix="mksap-estimate-") as tmp:
        scratch = settings.model_copy(update={"cache_dir": Path(tmp) / "cache", "out": Path(tmp) / "out"})
        scratch = scratch.model_copy(update={"in_place": False})
        runtime = ProviderRuntime(scratch, build.registry, cache=EstimateCache(real, tally), notice=notice)
        runtime.budget = None  # nothing is paid
        runtime.miss_handler = EstimateRecorder(build.registry.provider(answerer)(scratch), tally)
        dry = Build(scratch, build.registry, runtime)
        try:
            report = run_graph(dry, questions, jobs=settings.jobs, force=False, progress=QuietProgress())
        finally:
            runtime.close()
    estimate = summarise(tally, [s.name for s in dry.stages if s.uses_llm], len(questions))
    local = [(n, m) for (n, m) in runtime.totals if (p := runtime.provider_for(n, m)) is not None and p.local]
    estimate.local_requests = sum(runtime.totals[k].calls for k in local)
    estimate.notes = [*readiness(build), *(caching_note(m) for m in estimate.models)]
    failed = failure_lines(report, dry)
    if failed:
        estimate.notes.append(
            f"{len(failed)} question(s) fail before their requests could be counted (e.g. {failed[0]})"
        )
    return estimate


def readiness(build: Build) -> list[str]:
    """Why a provider of the run cannot be used now (a missing key), and what `auto` passed over."""
    runtime = build.runtime
    notes = []
    chain = runtime.chain
    if chain.passed_over:
        chosen = chain.names[0]
        for name, reason in chain.passed_over.items():
            notes.append(
                f"provider '{name}' is not ready ({reason}); provider auto would use '{chosen}' instead: "
                f"for the bill of '{name}': mksap run --estimate --provider {name}"
            )
    seen: set[str] = set()
    for stage in (s for s in build.stages if s.uses_llm):
        for provider in runtime.providers(stage.name):
            if provider.name in seen:
                continue
            seen.add(provider.name)
            reason = type(provider).unready(provider.settings)
            if reason is not None:
                notes.append(
                    f"provider '{provider.name}' is not ready: {reason}; a run now would stop at its first request"
                )
    return notes
