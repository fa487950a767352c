"""What the three extraction stages (critique, key points, tables) share: the request payload
built from the nlp artifacts, the request itself, and turning drafts into statements with
stable ids."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field

from mksap.contracts.provider import LLMRequest, Message, schema_of
from mksap.contracts.stage import StageJob
from mksap.contracts.statements import SourceKind, Statement, StatementDrafts
from mksap_plugins.stages.nlp_rules import SentenceInfo
from mksap_plugins.stages.prompts import Prompt


class ExtractedStatements(BaseModel):
    """The artifact of an extraction stage."""

    statements: list[Statement]
    superseded: list[str] = Field(
        default_factory=list, description="ids of earlier statements a better restatement replaces"
    )


def sentence_payload(objective: str, infos: list[SentenceInfo]) -> dict[str, Any]:
    """The sentences with the nlp stage's hints, as the prompt describes them."""
    return {
        "educational_objective": objective,
        "sentences": [
            {
                "index": i,
                "text": info.text,
                "entities": list(dict.fromkeys(t.text for t in info.entities)),
                "abbreviations": [f"{a.long} ({a.short})" for a in info.abbreviations],
                "negations": [f"{n.cue}: {n.scope}" for n in info.negations],
                "atomicity_hints": info.atomicity,
                "case_specific": info.case_specific,
            }
            for i, info in enumerate(infos)
        ],
    }


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
    job: StageJob,
    prompt: Prompt,
    payload: dict[str, Any],
    source: SourceKind,
    id_prefix: str,
    table: str | None = None,
    context: str | None = None,
) -> list[Statement]:
    """Ask for statements; ids are `<prefix><source index>.<n>`. `context` is the default
    extra field (a table's caption)."""
    drafts, _ = job.ask(statements_request(prompt, payload), StatementDrafts)
    counts: dict[int, int] = {}
    statements = []
    for d in drafts.statements:
        text = " ".join(d.statement.split())
        if not text:
            continue
        k = counts[d.source_index] = counts.get(d.source_index, 0) + 1
        extra = " ".join((d.extra_field or "").split()) or context
        statements.append(
            Statement(
                statement=text,
                extra_field=extra or None,
                id=f"{id_prefix}{d.source_index:02d}.{k}",
                source=source,
                table_source=table,
            )
        )
    return statements
