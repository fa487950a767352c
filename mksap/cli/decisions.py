"""`mksap decisions import FILE`: the triage decisions saved from the review page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mksap.cli.options import CacheDir, Data, InPlace, JsonOut, Out, envelope, registry_of, settings_from_flags

decisions_app = typer.Typer(
    help="Triage decisions (accept, reject, edit) saved from the review page (`mksap review`).",
    no_args_is_help=True,
)
File = Annotated[Path, typer.Argument(help="The decisions file the review page saved (mksap-decisions.json).")]


@decisions_app.command("import")
def decisions_import(
    ctx: typer.Context,
    file: File,
    data: Data = None,
    out: Out = None,
    cache_dir: CacheDir = None,
    in_place: InPlace = None,
    as_json: JsonOut = False,
) -> None:
    """Merge a decisions file into the build state; exports and `mksap sync` then honour it.

    Each decision replaces the stored one on the same statement; one on a statement no build
    has (a stable id not found) is reported and left out. Example: mksap decisions import
    ~/Downloads/mksap-decisions.json"""
    from mksap.export.decisions import import_decisions

    settings = settings_from_flags(data=data, out=out, cache_dir=cache_dir, in_place=in_place)
    report = import_decisions(settings, file, registry_of(ctx))
    if as_json:
        print(envelope("decisions-import", report.model_dump(mode="json")))
        return
    counts = ", ".join(f"{n} {action}" for action, n in report.imported.items())
    print(
        f"imported {sum(report.imported.values())} decision(s) from {report.file} ({counts}); "
        f"{report.stored} stored in {report.store}"
    )
    for sid in report.unknown:
        print(f"not found: {sid} (no built statement has this id; left out)")
    for sid in report.needs_new_look:
        print(f"needs a new look: {sid} (the statement changed since it was decided on; the built one is used)")
