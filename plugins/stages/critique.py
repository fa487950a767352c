"""critique: statements from the critique (LLM), guided by the nlp stage."""

from __future__ import annotations

from typing import Any

from mksap.contracts.stage import Stage, StageJob
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

__all__ = ["CritiqueStage", "ExtractedStatements", "sentence_payload"]


class CritiqueStage(Stage):
    """Atomic, general statements from the critique."""

    name = "critique"
    version = "3"
    needs = ("parse", "nlp")
    uses_llm = True

    def config(self) -> dict[str, Any]:
        return load_prompt("critique").fingerprint()

    def run(self, job: StageJob) -> ExtractedStatements:
        parsed = job.read(ParseStage, ParsedQuestion)
        nlp = job.read(NlpStage, NlpAnalysis)
        payload = {"source": "critique", **sentence_payload(parsed.objective, nlp.critique)}
        units = unit_keys("c:", [info.text for info in nlp.critique], previous_units(job, self.name))
        statements = extract(job, load_prompt("critique"), payload, "critique", "c:", units)
        return ExtractedStatements(statements=statements, units=units)
