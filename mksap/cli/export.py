"""`mksap export anki|csv|jsonl` and `mksap review`: parse options, call `run_export`, render.

Everything heavy (the registry, doit, genanki) is imported inside the commands, so importing
`mksap.cli` stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mksap.cli.options import CacheDir, Data, InPlace, JsonOut, Out, Targets
from mksap.cli.options import envelope as _envelope
from mksap.cli.options import err as _err
from mksap.cli.options import settings_from_flags as _settings

if TYPE_CHECKING:
    from mksap.export.run import ExportReport

export_app = typer.Typer(
    help="Write the built statements as an Anki deck, Anki text import (CSV) or JSONL.\n\n"
    "Each export is a task in the build's dependency DB: exporting again when nothing changed "
    "says 'up to date' and rewrites nothing (--force rewrites).",
    no_args_is_help=True,
)


Output = Annotated[
    Path | None,
    typer.Option(
        "-o",
        "--output",
        help="File to write (default: mksap.apkg, mksap.csv, mksap.jsonl, review.html).",
        show_default=False,
    ),
]
Force = Annotated[bool, typer.Option("--force", help="Rewrite the file even if it is up to date.")]
IncludeFlagged = Annotated[
    bool,
    typer.Option(
        "--include-flagged",
        help="Keep statements flagged by validation (tagged mksap::validation::flagged).",
    ),
]
Deck = Annotated[str, typer.Option("--deck", help="Parent deck; one subdeck per system under it.")]
# Choices and ranges are checked by the exporter's options model, which names the valid values.
Mode = Annotated[
    str,
    typer.Option("--cloze-mode", help="all: one cloze (card) per candidate; single: the first only."),
]
MaxClozes = Annotated[int | None, typer.Option("--max-clozes", help="At most N clozes per note.", show_default=False)]


def _export(
    name: str,
    targets: list[str] | None,
    output: Path | None,
    options: dict[str, Any],
    as_json: bool,
    force: bool,
    **locations: Any,
) -> None:
    from mksap.export.run import run_export

    settings = _settings(**locations)
    report = run_export(
        settings,
        name,
        list(targets or []),
        options,
        output,
        force=force,
        notice=lambda m: _err(f"mksap: {m}"),
    )
    if as_json:
        print(_envelope("export", report.model_dump(mode="json")))
        return
    print(render(report))


def render(report: ExportReport) -> str:
    """The report as a few lines of text."""
    if report.up_to_date:
        unchanged = f"{report.questions} questions unchanged; --force rewrites it"
        return f"{report.path} is up to date ({unchanged})"
    written = report.written
    assert written is not None
    unit = {"anki": "notes", "csv": "notes", "jsonl": "lines"}.get(report.exporter, "statements")
    left_out = ", ".join(f"{n} {why}" for why, n in written.skipped.items() if n)
    lines = [
        f"wrote {report.path}: {written.items} {unit} from {report.questions} questions"
        + (f" (left out: {left_out})" if left_out else "")
    ]
    if report.guids_file:
        gone = len(report.disappeared)
        lines.append(
            f"{gone} note(s) of the previous export are gone (listed in {report.guids_file})"
            if gone
            else "no note of the previous export is gone"
        )
    return "\n".join(lines)


@export_app.command("anki")
def anki(
    targets: Targets = None,
    output: Output = None,
    deck: Deck = "MKSAP",
    cloze_mode: Mode = "all",
    max_clozes: MaxClozes = None,
    include_flagged: IncludeFlagged = False,
    force: Force = False,
    data: Data = None,
    out: Out = None,
    cache_dir: CacheDir = None,
    in_place: InPlace = None,
    as_json: JsonOut = False,
) -> None:
    """An Anki deck (.apkg): one cloze note per statement, one subdeck per system.

    Notes keep their GUID across rebuilds (question id + statement id), so importing a newer
    deck updates them instead of adding duplicates.
    """
    options = {
        "deck": deck,
        "cloze_mode": cloze_mode,
        "max_clozes": max_clozes,
        "include_flagged": include_flagged,
    }
    _export(
        "anki",
        targets,
        output,
        options,
        as_json,
        force,
        data=data,
        out=out,
        cache_dir=cache_dir,
        in_place=in_place,
    )


@export_app.command("csv")
def csv(
    targets: Targets = None,
    output: Output = None,
    separator: Annotated[str, typer.Option("--separator", help="Column separator: tab or comma.")] = "tab",
    deck: Deck = "MKSAP",
    cloze_mode: Mode = "all",
    max_clozes: MaxClozes = None,
    include_flagged: IncludeFlagged = False,
    force: Force = False,
    data: Data = None,
    out: Out = None,
    cache_dir: CacheDir = None,
    in_place: InPlace = None,
    as_json: JsonOut = False,
) -> None:
    """Anki's text import format (File > Import), with cloze markup, GUID, deck and tags columns."""
    options = {
        "deck": deck,
        "cloze_mode": cloze_mode,
        "max_clozes": max_clozes,
        "include_flagged": include_flagged,
        "separator": separator,
    }
    _export(
        "csv",
        targets,
        output,
        options,
        as_json,
        force,
        data=data,
        out=out,
        cache_dir=cache_dir,
        in_place=in_place,
    )


@export_app.command("jsonl")
def jsonl(
    targets: Targets = None,
    output: Output = None,
    include_flagged: IncludeFlagged = False,
    force: Force = False,
    data: Data = None,
    out: Out = None,
    cache_dir: CacheDir = None,
    in_place: InPlace = None,
    as_json: JsonOut = False,
) -> None:
    """One JSON object per statement: ids, source, text, candidates, findings, provider/model."""
    options = {"include_flagged": include_flagged}
    _export(
        "jsonl",
        targets,
        output,
        options,
        as_json,
        force,
        data=data,
        out=out,
        cache_dir=cache_dir,
        in_place=in_place,
    )


def review(
    targets: Targets = None,
    output: Output = None,
    include_flagged: IncludeFlagged = False,
    force: Force = False,
    data: Data = None,
    out: Out = None,
    cache_dir: CacheDir = None,
    in_place: InPlace = None,
    as_json: JsonOut = False,
) -> None:
    """A static HTML page to read the statements: system filter, search, findings; no server.

    Example: mksap review cv -o review.html
    """
    options = {"include_flagged": include_flagged}
    output = output or Path("review.html")
    _export(
        "review",
        targets,
        output,
        options,
        as_json,
        force,
        data=data,
        out=out,
        cache_dir=cache_dir,
        in_place=in_place,
    )


__all__ = ["export_app", "review"]
