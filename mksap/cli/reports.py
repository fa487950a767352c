"""`mksap validate` (statement quality of the built outputs) and `mksap doctor` (what this
machine can run). Commands parse options, call one core function and render its result;
heavy imports stay inside the commands so importing `mksap.cli` stays cheap."""

from __future__ import annotations

import typer

from mksap.cli.options import CacheDir, Data, InPlace, JsonOut, Out, ProviderOpt, Targets, print_table
from mksap.cli.options import envelope as _envelope
from mksap.cli.options import settings_from_flags as _settings
from mksap.contracts.errors import ExitCode


def validate(
    targets: Targets = None,
    data: Data = None,
    out: Out = None,
    cache_dir: CacheDir = None,
    in_place: InPlace = None,
    as_json: JsonOut = False,
) -> None:
    """Statement quality of the built outputs, per system and overall: statements per question,
    words per statement (median, p90), cloze candidates per statement, findings by code,
    repair success rate, and the share of statements passing with no error finding."""
    from mksap.bank import parse_targets
    from mksap.reports.quality import quality_report, render

    settings = _settings(data=data, out=out, cache_dir=cache_dir, in_place=in_place)
    questions = parse_targets(targets or [], settings.data).discover(settings.data)
    base = settings.data if settings.in_place else settings.out
    report = quality_report([(q.system, q.qid, base / q.system / q.qid / f"{q.qid}.json") for q in questions])
    if as_json:
        print(_envelope("validate", report.model_dump(mode="json")))
    else:
        print(render(report))
    if not questions or len(report.not_built) == len(questions):
        raise typer.Exit(ExitCode.FAILED)


def doctor(
    ctx: typer.Context,
    provider: ProviderOpt = None,
    probe: bool = typer.Option(
        False, "--probe", help="also ask the run's endpoints what they can do (network; a few tokens at most)"
    ),
    as_json: JsonOut = False,
) -> None:
    """Which NLP tier is active (and how to install a scispaCy model), which providers are usable
    (key set, CLI executable on PATH), and whether the cache folders are safe. With --probe, what
    each endpoint of the run lacks (enforced JSON schema, prompt caching, batch API), as a run's
    first-call check finds it. Exit 1 on an error."""
    from mksap.contracts.registry import Registry
    from mksap.reports.doctor import diagnose

    report = diagnose(_settings(provider=provider), Registry.load(), probe=probe)
    if as_json:
        print(_envelope("doctor", report.model_dump(mode="json")))
    else:
        print_table(("status", "topic", "message"), [(c.status, c.topic, c.message) for c in report.checks])
    if report.exit_code:
        raise typer.Exit(report.exit_code)
