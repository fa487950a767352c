"""The command line. Commands parse options, call one core function, and render its result.

Importing this module loads no plugin and touches no disk; `main()` is the one place where
exceptions become messages and exit codes.
"""

from __future__ import annotations

import sys
import time
from typing import Annotated, Any

import typer
from typer._click.exceptions import ClickException as UsageProblem  # typer vendors click

from mksap.cli.batches import batches_app
from mksap.cli.export import export_app, review
from mksap.cli.options import CacheDir, Data, InPlace, JsonOut, Out, ProviderOpt, Targets
from mksap.cli.options import envelope as _envelope
from mksap.cli.options import err as _err
from mksap.cli.options import settings_from_flags as _settings
from mksap.cli.reports import doctor, validate
from mksap.contracts.errors import MksapError

app = typer.Typer(
    name="mksap",
    help="Turn an MKSAP question bank into atomic flashcard statements with cloze candidates.\n\n"
    "Typical use: `mksap run` (build every stale question), `mksap run cv` (one system), "
    "`mksap run cvmcq24001 --force` (rebuild one question), `mksap status`, `mksap show QID`.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # API keys live in locals
    rich_markup_mode=None,  # help text is plain: "[brackets]" must not become markup
    add_completion=False,
)


@app.command()
def run(
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
        bool, typer.Option("--batch", help="Send LLM requests as Message Batches (anthropic, half price), in rounds.")
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
    """
    from mksap.bank import parse_targets
    from mksap.build.lock import BuildLock
    from mksap.build.progress import choose_progress
    from mksap.build.runner import plan, summary
    from mksap.build.runner import run as run_build
    from mksap.build.tasks import Build
    from mksap.llm.usage import record_usage

    settings = _settings(
        data=data,
        out=out,
        cache_dir=cache_dir,
        in_place=in_place,
        provider=provider,
        model=model,
        jobs=jobs,
        max_concurrency=max_concurrency,
    )
    selection = parse_targets(targets or [], settings.data)
    build = Build.open(settings, notice=lambda m: _err(f"mksap: {m}"), use_cache=not no_cache, refresh=refresh)
    questions = selection.discover(settings.data)
    if not questions:
        raise MksapError(f"no question under {settings.data} matches {' '.join(targets or []) or 'anything'}")
    with BuildLock(settings.build_dir()).acquire(wait=wait):
        if dry_run:
            planned = plan(build, questions, force=force)
            for task in planned:
                print(f"{task.name}: {task.reason}")
            print(f"{len(planned)} task(s) would run for {len(questions)} question(s)")
            return
        if not quiet:
            for line in build.notices():
                _err(f"mksap: {line}")
        t0 = time.monotonic()
        try:
            if batch:
                from mksap.batch.run import BatchOptions, run_batched

                options = BatchOptions(failures=batch_failures, poll_interval=batch_poll)
                report = run_batched(
                    build,
                    questions,
                    jobs=settings.jobs,
                    force=force,
                    quiet=quiet,
                    options=options,
                    notice=lambda m: _err(f"mksap: {m}"),
                )
            else:
                report = run_build(build, questions, jobs=settings.jobs, force=force, progress=choose_progress(quiet))
        finally:
            build.runtime.close()
        _err(summary(report, build) + f" in {time.monotonic() - t0:.1f}s")
        for line in record_usage(settings, build.runtime):
            _err(line)
    if report.exit_code:
        raise typer.Exit(report.exit_code)


@app.command()
def status(
    targets: Targets = None,
    data: Data = None,
    out: Out = None,
    cache_dir: CacheDir = None,
    in_place: InPlace = None,
    provider: ProviderOpt = None,
    as_json: JsonOut = False,
) -> None:
    """Per system: questions up to date, stale, failed (with the reason) and never built."""
    from mksap.bank import parse_targets
    from mksap.build.status import question_states
    from mksap.build.tasks import Build
    from mksap.llm.usage import usage_totals

    settings = _settings(data=data, out=out, cache_dir=cache_dir, in_place=in_place, provider=provider)
    build = Build.open(settings, notice=lambda m: None)
    questions = parse_targets(targets or [], settings.data).discover(settings.data)
    report = question_states(build, questions)
    usage = usage_totals(settings)
    if as_json:
        print(_envelope("status", {**report.model_dump(mode="json"), "usage": usage}))
        return
    print(f"{'system':<8}{'up to date':>12}{'stale':>8}{'failed':>8}{'never built':>13}")
    for system, c in report.systems.items():
        print(f"{system:<8}{c['up-to-date']:>12}{c['stale']:>8}{c['failed']:>8}{c['never built']:>13}")
    for f in report.failures:
        print(f"FAILED {f.qid} ({f.stage}): {f.reason}")
    for name, u in usage.items():
        print(
            f"usage {name}: {u['calls']} calls, {u['cache_hits']} cache hits, {u['input_tokens']} in / "
            f"{u['output_tokens']} out / {u['cache_creation_input_tokens']} cache-write / "
            f"{u['cache_read_input_tokens']} cache-read tokens, est. ${u['cost_usd']:.2f} (all runs)"
        )


@app.command()
def show(
    qid: Annotated[str, typer.Argument(help="Question id, e.g. cvmcq24001.")],
    data: Data = None,
    out: Out = None,
    cache_dir: CacheDir = None,
    in_place: InPlace = None,
    as_json: JsonOut = False,
) -> None:
    """A question's statements, grouped by source, cloze candidates in [brackets]."""
    from mksap.reports.show import load_output, render

    settings = _settings(data=data, out=out, cache_dir=cache_dir, in_place=in_place)
    doc = load_output(settings, qid)
    if as_json:
        print(_envelope("question", doc.output_fields()))
        return
    print(render(doc))


@app.command()
def plugins(as_json: JsonOut = False) -> None:
    """Every installed provider, stage and exporter plugin, with the package it comes from."""
    from mksap.contracts.registry import Registry

    registry = Registry.load()
    rows = [{"kind": e.kind, "name": e.name, "package": e.package, "module": e.module} for e in registry.entries]
    failed = [{"source": f.source, "package": f.package, "error": f.error} for f in registry.failures]
    if as_json:
        print(_envelope("plugins", {"plugins": rows, "failed": failed}))
        return
    for r in rows:
        print(f"{r['kind']:<9} {r['name']:<12} {r['package']:<16} {r['module']}")
    for f in failed:
        print(f"FAILED    {f['source']} ({f['package']}): {f['error']}")


@app.command()
def config(
    data: Data = None,
    out: Out = None,
    cache_dir: CacheDir = None,
    in_place: InPlace = None,
    provider: ProviderOpt = None,
    as_json: JsonOut = False,
) -> None:
    """Each effective setting and where it came from (flag, env, mksap.toml, user config, default)."""
    import os

    from mksap.settings import Settings, load_settings, user_config_file

    resolved = load_settings(dict(data=data, out=out, cache_dir=cache_dir, in_place=in_place, provider=provider))
    rows = []
    for name, field in Settings.model_fields.items():
        value = getattr(resolved.settings, name)
        shown = ("set" if value else "not set") if name == "api_key" else ("" if value is None else str(value))
        rows.append({"name": name, "value": shown, "source": resolved.sources[name], "help": field.description})
    if as_json:
        print(_envelope("config", rows))
        return
    for r in rows:
        print(f"{r['name']:<16} {r['value']:<48} {r['source']}")
    print(f"(user config file: {user_config_file(os.environ)})")


cache_app = typer.Typer(help="The LLM response cache: stats, clear, prune.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")


app.add_typer(export_app, name="export")


app.add_typer(batches_app, name="batches")
app.command()(review)


app.command()(validate)
app.command()(doctor)


def _cache() -> Any:
    from mksap.llm.cache import ResponseCache

    return ResponseCache(_settings().llm_cache_dir)


@cache_app.command("stats")
def cache_stats(as_json: JsonOut = False) -> None:
    """Entries, size on disk, and hits/misses of the last run."""
    stats = _cache().stats()
    if as_json:
        print(_envelope("cache-stats", stats.model_dump()))
        return
    last = stats.last_run
    print(f"location: {stats.location}")
    print(f"entries:  {stats.entries}")
    print(f"size:     {stats.size_bytes / 1e6:.1f} MB")
    print(f"last run: {last.get('hits', 0)} hits, {last.get('misses', 0)} misses")


@cache_app.command("clear")
def cache_clear() -> None:
    """Delete every cached answer (they will be paid for again)."""
    print(f"removed {_cache().clear()} entries")


@cache_app.command("prune")
def cache_prune(
    older_than: Annotated[str, typer.Option("--older-than", help="Age like 30d, 12h, 2w.")] = "30d",
) -> None:
    """Delete answers not used for longer than --older-than."""
    from mksap.llm.cache import parse_age

    age = parse_age(older_than)
    print(f"removed {_cache().prune(age)} entries unused for {older_than}")


def main(argv: list[str] | None = None) -> int:
    """Entry point: the one place where exceptions become messages and exit codes."""
    args = list(sys.argv[1:] if argv is None else argv)
    traceback = "--traceback" in args
    if traceback:
        args.remove("--traceback")
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name="mksap", standalone_mode=False)
    except MksapError as e:
        if traceback:
            raise
        _err(f"mksap: error: {e}")
        return e.exit_code
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        _err("mksap: aborted")
        return 130
    except UsageProblem as e:  # bad option or argument: click's own one-line message
        e.show()
        return e.exit_code
    return result if isinstance(result, int) else 0


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
