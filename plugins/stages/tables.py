"""tables: statements from each clinical table, caption as context. Lab panels are skipped.

The request for a table holds only the table (not the question), so the same table copied
into several questions is one request: merged in flight and answered once from the cache.
"""

from __future__ import annotations

from typing import Any

from mksap.contracts.stage import Stage, StageJob
from mksap_plugins.stages.extraction import ExtractedStatements, extract, previous_units, table_units, unit_keys
from mksap_plugins.stages.html_tables import ParsedTable
from mksap_plugins.stages.parse import ParsedQuestion, ParseStage
from mksap_plugins.stages.prompts import load_prompt


def table_payload(table: ParsedTable) -> dict[str, Any]:
    """What the tables prompt describes: caption, column labels, numbered rows and footnotes
    (numbered after the rows, so a footnote statement has its own source index)."""
    return {
        "source": "table",
        "caption": table.caption,
        "columns": table.columns(),
        "rows": [
            {
                "index": i,
                "cells": row,
                "paragraphs": table.paragraphs[i] if i < len(table.paragraphs) else [[c] for c in row],
                "group": table.sections[i] if i < len(table.sections) else "",
                "footnote_marks": table.row_marks[i] if i < len(table.row_marks) else [],
            }
            for i, row in enumerate(table.rows)
        ],
        "footnotes": [{"index": len(table.rows) + k, "text": note} for k, note in enumerate(table.footnotes)],
    }


class TablesStage(Stage):
    """Statements from clinical tables (one request per table)."""

    name = "tables"
    version = "3"
    needs = ("parse",)
    uses_llm = True

    def config(self) -> dict[str, Any]:
        return load_prompt("tables").fingerprint()

    def run(self, job: StageJob) -> ExtractedStatements:
        parsed = job.read(ParseStage, ParsedQuestion)
        previous = previous_units(job, self.name)
        statements, units = [], []
        for table in parsed.tables:
            prefix = f"t:{table.file.removesuffix('.html')}:"
            keys = unit_keys(prefix, table_units(table), previous)
            payload = table_payload(table)
            statements += extract(job, load_prompt("tables"), payload, "table", prefix, keys, table.file, table.caption)
            units += keys
        return ExtractedStatements(statements=statements, units=units)
