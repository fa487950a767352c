"""`mksap run` (build what is stale) and `mksap status` (what is stale, without building)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from mksap.cli.options import (
    CacheDir,
    Data,
    InPlace,
    JsonOut,
    Out,
    ProviderOpt,
    Targets,
    envelope,
    err,
    print_table,
    registry_of,
    settings_from_flags,
)

if TYPE_CHECKING:
    from mksap.llm.estimate import CostEstimate


def run(
    ctx: typer.Context,
    targets: Targets = None,
    data: Data = None,
    out: Out = None,
    cache_dir: CacheDir = None,
    in_place: InPlace = None,
    provider: ProviderOpt = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Model name (env MKSAP_MODEL).", show_default=False)
    ] = None,
    jobs: Annotated[
        int | None,
        typer.Option(
            "-j",
            "--jobs",
            help="doit worker threads (env MKSAP_JOBS; default: max_concurrency when a stage calls an API "
            "provider, so threads never cap the calls in flight, else 8).",
            show_default=False,
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild the named targets even if up to date.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the tasks that would run, and why.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress; only failures and the summary.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="If another build holds the state, wait for it.")] = False,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Bypass the LLM response cache (no reads, no writes).")
    ] = False,
    refresh: Annotated[
        bool, typer.Option("--refresh", help="Skip cache lookups and overwrite: a real regeneration.")
    ] = False,
    max_concurrency: Annotated[
        int | None,
        typer.Option(
            "--max-concurrency", help="LLM calls in flight at once (env MKSAP_MAX_CONCURRENCY).", show_default=False
        ),
    ] = None,
    batch: Annotated[
        bool,
        typer.Option("--batch", help="Send LLM requests through the provider's batch API (half price), in rounds."),
    ] = False,
    batch_failures: Annotated[
        str,
        typer.Option(
            "--batch-failures",
            help="Errored/expired batch requests: call them directly (fallback) or fail their questions (report).",
        ),
    ] = "fallback",
    batch_poll: Annotated[
        float, typer.Option("--batch-poll", min=0.01, help="Seconds between polls of a processing batch.")
    ] = 30.0,
    estimate: Annotated[
        bool,
        typer.Option(
            "--estimate",
            help="Send nothing: print the requests the run would make, those the LLM cache answers, "
            "tokens and dollars per stage and model (plain, with prompt caching, as batches).",
        ),
    ] = False,
    limit: Annotated[
        int | None, typer.Option("--limit", help="Only the first N questions of the targets.", show_default=False)
    ] = None,
    sample: Annotated[
        int | None,
        typer.Option(
            "--sample", help="N questions spread over the systems, the same N every time.", show_default=False
        ),
    ] = None,
    max_cost: Annotated[
        float | None,
        typer.Option(
            "--max-cost",
            help="USD this run may spend; a request that could pass it is not sent, and the run ends with "
            "exit code 4 (env MKSAP_MAX_COST).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Build every stale question of the named systems/questions (all by default).

    Only what changed is rebuilt: an edited question reruns its own tasks, an edited prompt
    reruns that stage. Answers already paid for come from the LLM cache.

    Examples: mksap run cv · mksap run cvmcq24001 --force · mksap run --dry-run ·
    mksap run --estimate · mksap run --sample 20 --max-cost 2
    """
    from mksap.build.session import RunRequest, build_targets

    settings = settings_from_flags(
        data=data,
        out=out,
        cache_dir=cache_dir,
        in_place=in_place,
        provider=provider,
        model=model,
        jobs=jobs,
        max_concurrency=max_concurrency,
        max_cost=max_cost,
    )
    request = RunRequest(
        targets=list(targets or []),
        force=force,
        dry_run=dry_run,
        quiet=quiet,
        wait=wait,
        use_cache=not no_cache,
        refresh=refresh,
        batch=batch,
        batch_failures=batch_failures,
        batch_poll=batch_poll,
        estimate=estimate,
        limit=limit,
        sample=sample,
    )
    outcome = build_targets(settings, request, registry=registry_of(ctx), notice=lambda m: err(f"mksap: {m}"))
    if outcome.planned is not None:
        for task in outcome.planned:
            print(f"{task.name}: {task.reason}")
        print(f"{len(outcome.planned)} task(s) would run for {outcome.questions} question(s)")
    if outcome.estimate is not None:
        print_estimate(outcome.estimate)
    for line in outcome.lines:
        err(line)
    if outcome.exit_code:
        raise typer.Exit(outcome.exit_code)


def _usd(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f}" if value >= 10 else f"{value:.4f}"


def print_estimate(estimate: CostEstimate) -> None:
    """The estimate as two tables (per stage, per model) and its notes."""
    total = estimate.total()
    print(f"estimate for {estimate.questions} question(s); no message request was sent")
    columns = ("stage", "requests", "cached", "input tokens", "output tokens")
    rows = [(s.stage, s.requests, s.cached, f"{s.input_tokens:,}", f"{s.output_tokens:,}") for s in estimate.stages]
    rows.append(("total", total.requests, total.cached, f"{total.input_tokens:,}", f"{total.output_tokens:,}"))
    print_table(columns, rows, right=columns[1:])
    if estimate.models:
        print()
        columns = ("provider/model", "stages", "requests", "plain $", "prompt caching $", "--batch $")
        rows = [
            (
                f"{m.provider}/{m.model}",
                " ".join(m.stages),
                m.requests,
                _usd(m.plain_usd),
                _usd(m.caching_usd),
                _usd(m.batch_usd),
            )
            for m in estimate.models
        ]
        if len(estimate.models) > 1:
            dollars = (_usd(estimate.dollars(kind)) for kind in ("plain", "caching", "batch"))
            rows.append(("total", "", total.requests, *dollars))
        print_table(columns, rows, right=columns[2:])
        dates = sorted({m.prices_date for m in estimate.models if m.prices_date})
        if dates:
            print(f"prices: list prices as of {', '.join(dates)}; output tokens are expected, not known")
    if estimate.local_requests:
        print(f"{estimate.local_requests} request(s) answered by a local provider: free")
    if estimate.up_to_date_tasks:
        print(f"{estimate.up_to_date_tasks} task(s) are up to date in this build: a run makes no request for them")
    for note in estimate.notes:
        print(f"note: {note}")


def status(
    ctx: typer.Context,
    targets: Targets = None,
    data: Data = None,
    out: Out = None,
    cache_dir: CacheDir = None,
    in_place: InPlace = None,
    provider: ProviderOpt = None,
    as_json: JsonOut = False,
) -> None:
    """Per system: questions up to date, stale, failed (with the reason) and never built.

    Read-only: it takes no lock and writes nothing, so it is safe while a build runs."""
    from mksap.bank import parse_targets
    from mksap.build.status import question_states
    from mksap.build.tasks import Build
    from mksap.export.decisions import review_status
    from mksap.llm.usage import usage_totals

    settings = settings_from_flags(data=data, out=out, cache_dir=cache_dir, in_place=in_place, provider=provider)
    build = Build.open(settings, notice=lambda m: None, registry=registry_of(ctx))
    questions = parse_targets(targets or [], settings.data).discover(settings.data)
    report = question_states(build, questions)
    usage = usage_totals(settings)
    review = review_status(settings, build, questions)
    if as_json:
        print(envelope("status", {**report.model_dump(mode="json"), "usage": usage, "review": review.model_dump()}))
        return
    columns = ("system", "up to date", "stale", "failed", "never built")
    rows = [(s, c["up-to-date"], c["stale"], c["failed"], c["never built"]) for s, c in report.systems.items()]
    print_table(columns, rows, right=columns[1:])
    for f in report.failures:
        print(f"FAILED {f.qid} ({f.stage}): {f.reason}")
    print(
        f"review: {review.awaiting_review} statement(s) awaiting review ({review.undecided} undecided, "
        f"{len(review.needs_new_look)} needing a new look; {review.decided} decided); see mksap review"
    )
    for name, u in usage.items():
        print(
            f"usage {name}: {u['calls']} calls, {u['cache_hits']} cache hits, {u['input_tokens']} in / "
            f"{u['output_tokens']} out / {u['cache_creation_input_tokens']} cache-write / "
            f"{u['cache_read_input_tokens']} cache-read tokens, est. ${u['cost_usd']:.2f} (all runs)"
        )
