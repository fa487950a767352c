"""cloze: 2-5 verbatim cloze candidates per statement (LLM), after normalisation.

Normalisation runs first, on the statement text only, so it can never break a candidate: the
candidates are chosen against the final text and filtered to verbatim substrings.
"""

from __future__ import annotations

import json
import re
from typing import Any

from mksap_plugins.stages.critique import CritiqueStage, ExtractedStatements
from mksap_plugins.stages.keypoints import KeyPointsStage
from mksap_plugins.stages.nlp_rules import STOPWORDS, analyse
from mksap_plugins.stages.prompts import load_prompt
from mksap_plugins.stages.tables import TablesStage
from pydantic import BaseModel

from mksap.provider import LLMRequest, Message, schema_of
from mksap.stage import Stage, StageJob
from mksap.statements import ClozeAnswer, Statement

MAX_CANDIDATES = 5


class ClozedStatements(BaseModel):
    """The cloze artifact: every statement of the question, with candidates."""

    statements: list[Statement]


def normalise(text: str) -> str:
    """Whitespace collapsed, spaced hyphen ranges as en dashes, a final period. Idempotent."""
    text = " ".join(text.split())
    text = re.sub(r"(?<=\d) ?- ?(?=\d)", "–", text)
    text = re.sub(r"\s+([,.;:])", r"\1", text)
    if text and text[-1] not in ".?!":
        text += "."
    return text


def select_candidates(statement: str, proposed: list[str], limit: int = MAX_CANDIDATES) -> list[str]:
    """Keep verbatim, non-overlapping, meaningful candidates, in the order proposed."""
    chosen: list[tuple[int, int, str]] = []
    for raw in proposed:
        cand = raw.strip().strip(".,;:")
        if not cand or cand == statement.rstrip(".") or len(cand) >= len(statement) - 1:
            continue
        if all(w.lower() in STOPWORDS for w in re.findall(r"\w+", cand)):
            continue
        start = statement.find(cand)
        if start < 0:
            continue
        end = start + len(cand)
        if any(start < e and s < end for s, e, _ in chosen):
            continue
        chosen.append((start, end, cand))
        if len(chosen) == limit:
            break
    return [c for _, _, c in chosen]


class ClozeStage(Stage):
    """Cloze candidates for every statement of the question."""

    name = "cloze"
    version = "1"
    needs = ("critique", "keypoints", "tables")
    uses_llm = True

    def config(self) -> dict[str, Any]:
        return {**load_prompt("cloze").fingerprint(), "max_candidates": MAX_CANDIDATES}

    def run(self, job: StageJob) -> ClozedStatements:
        statements = [
            s.model_copy(update={"statement": normalise(s.statement)})
            for stage in (CritiqueStage, KeyPointsStage, TablesStage)
            for s in job.read(stage, ExtractedStatements).statements
        ]
        if not statements:
            return ClozedStatements(statements=[])
        payload = {
            "statements": [
                {"id": s.id, "text": s.statement, "terms": [t.text for t in analyse(s.statement).terms]}
                for s in statements
            ]
        }
        prompt = load_prompt("cloze")
        request = LLMRequest(
            task="cloze",
            system=prompt.text,
            messages=[Message(role="user", content=json.dumps(payload, ensure_ascii=False, indent=1))],
            output_schema=schema_of(ClozeAnswer),
            schema_name="ClozeAnswer",
            context=payload,
        )
        answer, _ = job.ask(request, ClozeAnswer)
        proposed = {item.statement_id: item.cloze_candidates for item in answer.items}
        return ClozedStatements(
            statements=[
                s.model_copy(update={"cloze_candidates": select_candidates(s.statement, proposed.get(s.id, []))})
                for s in statements
            ]
        )
