"""First-party exporters: Anki deck, Anki text import (CSV), JSONL, and the review page."""

from __future__ import annotations

import typer

from mksap.contracts.hookspecs import Register


def register_exporters(register: Register) -> None:
    """Register mksap's own exporters (genanki is imported only when a deck is written)."""
    from mksap_plugins.exporters.anki import AnkiExporter
    from mksap_plugins.exporters.csv_export import CsvExporter
    from mksap_plugins.exporters.jsonl import JsonlExporter
    from mksap_plugins.exporters.review import ReviewExporter

    for exporter in (AnkiExporter, CsvExporter, JsonlExporter, ReviewExporter):
        register(exporter)


def register_commands(app: typer.Typer) -> None:
    """`mksap review`: the review page at the top level (the same as `mksap export review`)."""
    from mksap.cli.export import exporter_command
    from mksap_plugins.exporters.review import ReviewExporter

    app.command("review")(exporter_command(ReviewExporter))
