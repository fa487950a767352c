"""`mksap sync anki`: the command. It parses options, calls `sync_anki` or `rollback_anki`,
and renders the result (text, or `--json` in mksap's envelope)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from mksap.cli.options import CacheDir, Data, InPlace, JsonOut, Out, Targets, envelope, err, registry_of

HELP = (
    "Bring a running Anki up to date through the AnkiConnect add-on, without an .apkg import.\n\n"
    "`mksap sync anki` adds new notes (with mksap's GUIDs), updates changed ones, leaves alone "
    "those you edited in Anki, tags vanished ones mksap::gone; --dry-run shows the changes first, "
    "--rollback undoes the last sync."
)

Url = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="AnkiConnect's address [default: http://127.0.0.1:8765; env MKSAP_ANKI_SYNC_URL].",
        show_default=False,
    ),
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key", help="The add-on's apiKey, if it has one (prefer env MKSAP_ANKI_SYNC_API_KEY).", show_default=False
    ),
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Change nothing: list what the sync (or rollback) would do.")]
Rollback = Annotated[
    bool, typer.Option("--rollback", help="Undo the last sync: delete the notes it added, put back what it changed.")
]
Deck = Annotated[
    str | None,
    typer.Option(
        "--deck",
        help="Parent deck of new notes, one subdeck per system [default: [plugins.anki] deck, MKSAP].",
        show_default=False,
    ),
]
IncludeFlagged = Annotated[
    bool | None,
    typer.Option(
        "--include-flagged/--no-include-flagged",
        help="Keep statements flagged by validation (tagged flagged).",
        show_default=False,
    ),
]


def sync_app() -> typer.Typer:
    app = typer.Typer(help=HELP, no_args_is_help=True, rich_markup_mode=None, pretty_exceptions_show_locals=False)
    app.command("anki")(anki)
    return app


def anki(
    ctx: typer.Context,
    targets: Targets = None,
    url: Url = None,
    api_key: ApiKey = None,
    dry_run: DryRun = False,
    rollback: Rollback = False,
    deck: Deck = None,
    include_flagged: IncludeFlagged = None,
    data: Data = None,
    out: Out = None,
    cache_dir: CacheDir = None,
    in_place: InPlace = None,
    as_json: JsonOut = False,
) -> None:
    """Sync the built statements of TARGETS (default: all) into the Anki that is running.

    The notes are those `mksap export anki` writes (its options in [plugins.anki]: deck, cloze
    mode, flagged statements). A note you edited in Anki since the last sync is never
    overwritten; a note whose statement is gone is tagged mksap::gone, never deleted. Every
    sync keeps a snapshot under the build state, so --rollback can undo it.
    """
    from mksap.cli.options import settings_from_flags
    from mksap.contracts.errors import ConfigError, ExitCode
    from mksap_plugins.exporters.anki import AnkiOptions
    from mksap_plugins.sync.anki import PLUGIN, AnkiSyncOptions, sync_anki
    from mksap_plugins.sync.report import render_rollback, render_sync
    from mksap_plugins.sync.rollback import rollback_anki

    settings = settings_from_flags(data=data, out=out, cache_dir=cache_dir, in_place=in_place)
    given: dict[str, Any] = {k: v for k, v in {"url": url, "api_key": api_key}.items() if v}
    options = settings.with_plugin_options(PLUGIN, **given).plugin_options(PLUGIN, AnkiSyncOptions)
    if rollback:
        if targets or deck or include_flagged is not None:
            raise ConfigError("--rollback undoes the whole last sync: it takes no TARGETS, --deck or --include-flagged")
        report = rollback_anki(settings, options, dry_run=dry_run)
        print(envelope("sync-rollback", report.model_dump(mode="json")) if as_json else render_rollback(report))
        return
    flags = {k: v for k, v in {"deck": deck, "include_flagged": include_flagged}.items() if v is not None}
    anki_options = settings.with_plugin_options("anki", **flags).plugin_options("anki", AnkiOptions)
    result = sync_anki(
        settings,
        registry_of(ctx),
        list(targets or []),
        options,
        anki_options,
        dry_run=dry_run,
        notice=lambda m: err(f"mksap: {m}"),
    )
    print(envelope("sync", result.model_dump(mode="json")) if as_json else render_sync(result))
    if result.failed:
        raise typer.Exit(ExitCode.FAILED)  # the rest was synced; the next sync tries these again
