"""First-party sync plugins: `mksap sync anki` brings a running Anki up to date through the
AnkiConnect add-on (see `mksap_plugins.sync.anki`)."""

from __future__ import annotations

import typer

from mksap.settings import PluginOptions


def command_options() -> dict[str, type[PluginOptions]]:
    """The options of this plugin's commands, by plugin name (`[plugins.anki-sync]`), for
    `mksap config` to show with their sources."""
    from mksap_plugins.sync.anki import PLUGIN, AnkiSyncOptions

    return {PLUGIN: AnkiSyncOptions}


def register_commands(app: typer.Typer) -> None:
    """`mksap sync anki`. Nothing heavy is imported until the command runs."""
    from mksap_plugins.sync.cli import sync_app

    app.add_typer(sync_app(), name="sync")
