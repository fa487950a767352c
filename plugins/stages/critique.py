"""critique: statements from the critique (LLM), guided by the nlp stage."""

from __future__ import annotations

from typing import Any

from mksap_plugins.stages.extraction import extract
from mksap_plugins.stages.nlp import NlpAnalysis, NlpStage
from mksap_plugins.stages.parse import ParsedQuestion, ParseStage
from mksap_plugins.stages.prompts import load_prompt
from pydantic import BaseModel

from mksap.stage import Stage, StageJob
from mksap.statements import Statement


class ExtractedStatements(BaseModel):
    """The artifact of an extraction stage."""

    statements: list[Statement]


def sentence_payload(objective: str, infos: list[Any]) -> dict[str, Any]:
    return {
        "educational_objective": objective,
        "sentences": [
            {
                "index": i,
                "text": info.text,
                "terms": [t.text for t in info.terms if t.kind != "phrase"],
                "negations": info.negations,
                "atomicity_hints": info.atomicity,
            }
            for i, info in enumerate(infos)
        ],
    }


class CritiqueStage(Stage):
    """Atomic, general statements from the critique."""

    name = "critique"
    version = "1"
    needs = ("parse", "nlp")
    uses_llm = True

    def config(self) -> dict[str, Any]:
        return load_prompt("critique").fingerprint()

    def run(self, job: StageJob) -> ExtractedStatements:
        parsed = job.read(ParseStage, ParsedQuestion)
        nlp = job.read(NlpStage, NlpAnalysis)
        payload = {"source": "critique", **sentence_payload(parsed.objective, nlp.critique)}
        return ExtractedStatements(statements=extract(job, load_prompt("critique"), payload, "critique", "c"))
