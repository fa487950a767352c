"""keypoints: statements from the key points. A key-point statement that restates a critique
statement is a duplicate: the better of the two is kept (the other dropped, or superseded)."""

from __future__ import annotations

from typing import Any

from mksap.contracts.stage import Stage, StageJob
from mksap.contracts.statements import Statement
from mksap_plugins.stages.checks import NEAR_DUPLICATE, badness, restates
from mksap_plugins.stages.critique import CritiqueStage
from mksap_plugins.stages.extraction import (
    ExtractedStatements,
    extract,
    previous_units,
    sentence_payload,
    unit_keys,
)
from mksap_plugins.stages.nlp import NlpAnalysis, NlpStage
from mksap_plugins.stages.parse import ParsedQuestion, ParseStage
from mksap_plugins.stages.prompts import load_prompt

__all__ = ["KeyPointsStage", "NEAR_DUPLICATE", "drop_restatements"]


def drop_restatements(found: list[Statement], critique: list[Statement]) -> ExtractedStatements:
    """Key-point statements minus restatements of critique statements. When the key point
    says it better (fewer wording problems, closer to ~15 words), it is kept and the critique
    statement is listed as superseded instead."""
    kept: list[Statement] = []
    superseded: list[str] = []
    for s in found:
        scored = [
            (score, c) for c in critique if c.id not in superseded and (score := restates(s.statement, c.statement))
        ]
        if not scored:
            kept.append(s)
            continue
        twin = max(scored, key=lambda sc: sc[0])[1]
        if badness(s.statement) < badness(twin.statement):
            kept.append(s)
            superseded.append(twin.id)
    return ExtractedStatements(statements=kept, superseded=superseded)


class KeyPointsStage(Stage):
    """Statements from the key points; restatements of critique statements are dropped."""

    name = "keypoints"
    version = "4"
    needs = ("parse", "nlp", "critique")
    uses_llm = True

    def config(self) -> dict[str, Any]:
        return {**load_prompt("keypoints").fingerprint(), "near_duplicate": NEAR_DUPLICATE}

    def run(self, job: StageJob) -> ExtractedStatements:
        parsed = job.read(ParseStage, ParsedQuestion)
        if not parsed.key_points:
            return ExtractedStatements(statements=[])
        nlp = job.read(NlpStage, NlpAnalysis)
        units = unit_keys("k:", [info.text for info in nlp.key_points], previous_units(job, self.name))
        critique = job.read(CritiqueStage, ExtractedStatements).statements
        payload = {
            "source": "key_points",
            **sentence_payload(parsed.objective, nlp.key_points),
            "critique_statements": [s.statement for s in critique],
        }
        found = extract(job, load_prompt("keypoints"), payload, "key_point", "k:", units)
        return drop_restatements(found, critique).model_copy(update={"units": units})
