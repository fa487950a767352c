"""What the three extraction stages (critique, key points, tables) share: building the request
and turning the drafts into statements with stable ids."""

from __future__ import annotations

import json
from typing import Any

from mksap_plugins.stages.prompts import Prompt

from mksap.provider import LLMRequest, Message, schema_of
from mksap.stage import StageJob
from mksap.statements import SourceKind, Statement, StatementDrafts


def statements_request(prompt: Prompt, payload: dict[str, Any], *, max_tokens: int = 4096) -> LLMRequest:
    """One extraction request. The payload is both the user message and the offline context."""
    return LLMRequest(
        task="statements",
        system=prompt.text,
        messages=[Message(role="user", content=json.dumps(payload, ensure_ascii=False, indent=1))],
        output_schema=schema_of(StatementDrafts),
        schema_name="StatementDrafts",
        context=payload,
        max_tokens=max_tokens,
    )


def extract(
    job: StageJob, prompt: Prompt, payload: dict[str, Any], source: SourceKind, id_prefix: str, table: str | None = None
) -> list[Statement]:
    drafts, _ = job.ask(statements_request(prompt, payload), StatementDrafts)
    counts: dict[int, int] = {}
    statements = []
    for d in drafts.statements:
        text = " ".join(d.statement.split())
        if not text:
            continue
        k = counts[d.source_index] = counts.get(d.source_index, 0) + 1
        statements.append(
            Statement(
                statement=text,
                extra_field=(d.extra_field or None),
                id=f"{id_prefix}{d.source_index:02d}.{k}",
                source=source,
                table_source=table,
            )
        )
    return statements
