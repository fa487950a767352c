"""tables: statements from each clinical table, caption as context. Lab panels are skipped.

The request for a table holds only the table (not the question), so the same table copied
into several questions is one request: merged in flight and answered once from the cache.
"""

from __future__ import annotations

from typing import Any

from mksap_plugins.stages.critique import ExtractedStatements
from mksap_plugins.stages.extraction import extract
from mksap_plugins.stages.parse import ParsedQuestion, ParseStage
from mksap_plugins.stages.prompts import load_prompt

from mksap.stage import Stage, StageJob


class TablesStage(Stage):
    """Statements from clinical tables (one request per table)."""

    name = "tables"
    version = "1"
    needs = ("parse",)
    uses_llm = True

    def config(self) -> dict[str, Any]:
        return load_prompt("tables").fingerprint()

    def run(self, job: StageJob) -> ExtractedStatements:
        parsed = job.read(ParseStage, ParsedQuestion)
        statements = []
        for table in parsed.tables:
            payload = {
                "source": "table",
                "caption": table.caption,
                "columns": table.columns(),
                "rows": [{"index": i, "cells": row} for i, row in enumerate(table.rows)],
                "footnotes": table.footnotes,
            }
            stem = table.file.removesuffix(".html")
            statements += extract(job, load_prompt("tables"), payload, "table", f"t:{stem}:", table.file)
        return ExtractedStatements(statements=statements)
