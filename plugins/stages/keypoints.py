"""keypoints: statements from the key points, minus those a critique statement already makes."""

from __future__ import annotations

import re
from typing import Any

from mksap_plugins.stages.critique import CritiqueStage, ExtractedStatements, sentence_payload
from mksap_plugins.stages.extraction import extract
from mksap_plugins.stages.nlp import NlpAnalysis, NlpStage
from mksap_plugins.stages.parse import ParsedQuestion, ParseStage
from mksap_plugins.stages.prompts import load_prompt

from mksap.stage import Stage, StageJob
from mksap.statements import Statement

NEAR_DUPLICATE = 0.8


def _tokens(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def similarity(a: str, b: str) -> float:
    """Jaccard overlap of word sets: 1.0 for the same words in any order."""
    ta, tb = _tokens(a), _tokens(b)
    return len(ta & tb) / len(ta | tb) if ta | tb else 1.0


class KeyPointsStage(Stage):
    """Statements from the key points; restatements of critique statements are dropped."""

    name = "keypoints"
    version = "1"
    needs = ("parse", "nlp", "critique")
    uses_llm = True

    def config(self) -> dict[str, Any]:
        return {**load_prompt("keypoints").fingerprint(), "near_duplicate": NEAR_DUPLICATE}

    def run(self, job: StageJob) -> ExtractedStatements:
        parsed = job.read(ParseStage, ParsedQuestion)
        if not parsed.key_points:
            return ExtractedStatements(statements=[])
        nlp = job.read(NlpStage, NlpAnalysis)
        critique = job.read(CritiqueStage, ExtractedStatements).statements
        payload = {
            "source": "key_points",
            **sentence_payload(parsed.objective, nlp.key_points),
            "critique_statements": [s.statement for s in critique],
        }
        found = extract(job, load_prompt("keypoints"), payload, "key_point", "k")
        kept: list[Statement] = [
            s for s in found if all(similarity(s.statement, c.statement) < NEAR_DUPLICATE for c in critique)
        ]
        return ExtractedStatements(statements=kept)
