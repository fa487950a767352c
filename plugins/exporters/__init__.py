"""First-party exporters: Anki deck, Anki text import (CSV), JSONL, and the review page."""

from __future__ import annotations

from mksap.contracts.hookspecs import Register


def register_exporters(register: Register) -> None:
    """Register mksap's own exporters (genanki is imported only when a deck is written)."""
    from mksap_plugins.exporters.anki import AnkiExporter
    from mksap_plugins.exporters.csv_export import CsvExporter
    from mksap_plugins.exporters.jsonl import JsonlExporter
    from mksap_plugins.exporters.review import ReviewExporter

    for exporter in (AnkiExporter, CsvExporter, JsonlExporter, ReviewExporter):
        register(exporter)
