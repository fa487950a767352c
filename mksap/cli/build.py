"""`mksap run` (build what is stale) and `mksap status` (what is stale, without building)."""

from __future__ import annotations

from typing import Annotated

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
        typer.Option("-j", "--jobs", help="doit worker threads (env MKSAP_JOBS, default 8).", show_default=False),
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
) -> None:
    """Build every stale question of the named systems/questions (all by default).

    Only what changed is rebuilt: an edited question reruns its own tasks, an edited prompt
    reruns that stage. Answers already paid for come from the LLM cache.

    Examples: mksap run cv · mksap run cvmcq24001 --force · mksap run --dry-run
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
    )
    outcome = build_targets(settings, request, registry=registry_of(ctx), notice=lambda m: err(f"mksap: {m}"))
    if outcome.planned is not None:
        for task in outcome.planned:
            print(f"{task.name}: {task.reason}")
        print(f"{len(outcome.planned)} task(s) would run for {outcome.questions} question(s)")
    for line in outcome.lines:
        err(line)
    if outcome.exit_code:
        raise typer.Exit(outcome.exit_code)


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
    from mksap.llm.usage import usage_totals

    settings = settings_from_flags(data=data, out=out, cache_dir=cache_dir, in_place=in_place, provider=provider)
    build = Build.open(settings, notice=lambda m: None, registry=registry_of(ctx))
    questions = parse_targets(targets or [], settings.data).discover(settings.data)
    report = question_states(build, questions)
    usage = usage_totals(settings)
    if as_json:
        print(envelope("status", {**report.model_dump(mode="json"), "usage": usage}))
        return
    columns = ("system", "up to date", "stale", "failed", "never built")
    rows = [(s, c["up-to-date"], c["stale"], c["failed"], c["never built"]) for s, c in report.systems.items()]
    print_table(columns, rows, right=columns[1:])
    for f in report.failures:
        print(f"FAILED {f.qid} ({f.stage}): {f.reason}")
    for name, u in usage.items():
        print(
            f"usage {name}: {u['calls']} calls, {u['cache_hits']} cache hits, {u['input_tokens']} in / "
            f"{u['output_tokens']} out / {u['cache_creation_input_tokens']} cache-write / "
            f"{u['cache_read_input_tokens']} cache-read tokens, est. ${u['cost_usd']:.2f} (all runs)"
        )
