"""cloze: 2-5 verbatim cloze candidates per statement (LLM), after normalisation.

Normalisation runs first, on the statement text, so it can never break a candidate: the
candidates are chosen against the final text, filtered to verbatim, word-aligned,
non-overlapping substrings, and topped up from the nlp terms when the answer has too few.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel

from mksap.contracts.provider import LLMRequest, Message, schema_of
from mksap.contracts.stage import Stage, StageJob
from mksap.contracts.statements import ClozeAnswer, Statement
from mksap_plugins.stages.critique import CritiqueStage
from mksap_plugins.stages.extraction import ExtractedStatements
from mksap_plugins.stages.keypoints import KeyPointsStage
from mksap_plugins.stages.nlp_rules import STOPWORDS, Term, terms_of
from mksap_plugins.stages.normalise import normalise
from mksap_plugins.stages.prompts import load_prompt
from mksap_plugins.stages.tables import TablesStage

__all__ = ["ClozeStage", "ClozedStatements", "normalise", "select_candidates", "candidate_range", "ranked_terms"]

MAX_CANDIDATES = 5
_LIST = re.compile(r"(?:[^,;]+,\s){2,}(?:and|or)\s")
_KIND_RANK = {"number": 0, "abbreviation": 1, "entity": 2, "phrase": 3}


class ClozedStatements(BaseModel):
    """The cloze artifact: every statement of the question, with candidates."""

    statements: list[Statement]


def candidate_range(statement: str) -> tuple[int, int]:
    """(fewest wanted, most allowed) candidates for a statement of this length."""
    words = len(statement.split())
    if words < 6:
        return 1, 1
    if words < 10:
        return 1, 2
    if words < 20:
        return 2, 3
    return 2, 4 if words < 30 else MAX_CANDIDATES


def _word_aligned(statement: str, cand: str) -> int:
    """Start of the first occurrence of `cand`, or -1 when that occurrence cuts a word.
    Only the first occurrence counts: exporters and `mksap show` mark the first one."""
    start = statement.find(cand)
    if start < 0:
        return -1
    end = start + len(cand)
    before = statement[start - 1] if start else " "
    after = statement[end] if end < len(statement) else " "
    if (before.isalnum() and cand[0].isalnum()) or (after.isalnum() and cand[-1].isalnum()):
        return -1
    return start


def select_candidates(statement: str, proposed: list[str], limit: int = MAX_CANDIDATES) -> list[str]:
    """Keep verbatim, word-aligned, non-overlapping, meaningful candidates, in the order
    proposed: never the whole statement (nor most of it), never only common words, never a
    list of three or more items."""
    chosen: list[tuple[int, int, str]] = []
    words = len(statement.split())
    for raw in proposed:
        cand = raw.strip().strip(".,;:")
        if not cand or len(cand.split()) > max(3, int(words * 0.6)) or cand == statement.rstrip("."):
            continue
        if all(w.lower() in STOPWORDS for w in re.findall(r"\w+", cand)) or _LIST.search(cand + ","):
            continue
        start = _word_aligned(statement, cand)
        if start < 0:
            continue
        end = start + len(cand)
        if any(start < e and s < end for s, e, _ in chosen):
            continue
        chosen.append((start, end, cand))
        if len(chosen) == limit:
            break
    return [c for _, _, c in chosen]


def ranked_terms(statement: str, extra: list[Term] | None = None) -> list[str]:
    """Cloze-worthy terms of a statement, best first: quantities, abbreviation pairs,
    entities, then multi-word phrases before single words."""
    terms = [*(extra or []), *terms_of(statement)]

    def rank(t: Term) -> tuple[int, int, int]:
        n = len(t.text.split())
        kind = _KIND_RANK.get(t.kind, 3)
        if t.kind == "number":  # a threshold beats a plain value; an SI conversion "(7.0 mmol/L)" comes last
            bracketed = statement[max(0, statement.find(t.text) - 1) : statement.find(t.text)] == "("
            return kind, 2 if bracketed else 0 if t.text[0] in "≥≤<>" else 1, 0
        return kind, 0 if 2 <= n <= 4 else 1, -len(t.text) if n == 1 else len(t.text)

    return list(dict.fromkeys(t.text for t in sorted(terms, key=rank) if t.text in statement))


def finish(statement: Statement, proposed: list[str]) -> Statement:
    """The statement with its final candidates: the proposal filtered, topped up from the
    nlp terms when it falls short of the range for the statement's length."""
    low, high = candidate_range(statement.statement)
    chosen = select_candidates(statement.statement, proposed, high)
    if len(chosen) < low:
        chosen = select_candidates(statement.statement, [*chosen, *ranked_terms(statement.statement)], high)
    return statement.model_copy(update={"cloze_candidates": chosen})


class ClozeStage(Stage):
    """Cloze candidates for every statement of the question."""

    name = "cloze"
    version = "2"
    needs = ("critique", "keypoints", "tables")
    uses_llm = True

    def config(self) -> dict[str, Any]:
        return {**load_prompt("cloze").fingerprint(), "max_candidates": MAX_CANDIDATES}

    def run(self, job: StageJob) -> ClozedStatements:
        extracted = [job.read(stage, ExtractedStatements) for stage in (CritiqueStage, KeyPointsStage, TablesStage)]
        superseded = {sid for e in extracted for sid in e.superseded}
        statements = [
            s.model_copy(update={"statement": normalise(s.statement)})
            for e in extracted
            for s in e.statements
            if s.id not in superseded
        ]
        if not statements:
            return ClozedStatements(statements=[])
        payload = {
            "statements": [
                {"id": s.id, "text": s.statement, "terms": ranked_terms(s.statement)[:12]} for s in statements
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
        return ClozedStatements(statements=[finish(s, proposed.get(s.id, [])) for s in statements])
