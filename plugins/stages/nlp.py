"""nlp: sentences, terms, abbreviations, negations and atomicity hints (no LLM).

Uses the configured spaCy/scispaCy model when it is installed (a package name, or a path),
and otherwise the rule-based tier, saying so once per run.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any

from mksap_plugins.stages.nlp_rules import SentenceInfo, Term, analyse
from mksap_plugins.stages.parse import ParsedQuestion, ParseStage
from pydantic import BaseModel, Field

from mksap.stage import Stage, StageJob

INSTALL_HINT = (
    "install a scispaCy model from its release tarball, e.g. "
    "pip install https://s3-us-west-2.amazonaws.com/ai2-s2-scispacy/releases/v0.5.4/en_core_sci_sm-0.5.4.tar.gz "
    "(never the look-alike names on PyPI)"
)


class NlpAnalysis(BaseModel):
    """The nlp artifact."""

    tier: str = Field(description="'rules' or 'spacy:<model>'")
    critique: list[SentenceInfo]
    key_points: list[SentenceInfo]


def model_available(model: str) -> bool:
    """Installed as a package, or a model folder on disk. Imports nothing."""
    if "/" in model or model.startswith("."):
        return (Path(model) / "config.cfg").is_file() or (Path(model) / "meta.json").is_file()
    return importlib.util.find_spec(model) is not None


class NlpStage(Stage):
    """Sentences, terms, abbreviations, negations; spaCy model if installed, rules otherwise."""

    name = "nlp"
    version = "1"
    needs = ("parse",)

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self._nlp: Any = None
        self._lock = threading.Lock()

    @property
    def tier(self) -> str:
        model = self.settings.nlp_model
        return f"spacy:{model}" if model and model_available(model) else "rules"

    def config(self) -> dict[str, Any]:
        return {"tier": self.tier}

    def notices(self) -> list[str]:
        if self.tier == "rules":
            return [
                f"NLP: spaCy model '{self.settings.nlp_model}' not installed, using the rule-based tier; {INSTALL_HINT}"
            ]
        return []

    def _pipeline(self) -> Any:
        with self._lock:
            if self._nlp is None:
                import spacy  # heavy: imported only when a model is really used

                self._nlp = spacy.load(self.settings.nlp_model)
            return self._nlp

    def _analyse(self, texts: list[str]) -> list[SentenceInfo]:
        infos = [analyse(t) for t in texts]
        if self.tier == "rules" or not texts:
            return infos
        nlp = self._pipeline()
        for info, doc in zip(infos, nlp.pipe(texts), strict=True):
            info.terms.extend(Term(text=e.text, kind="entity") for e in doc.ents)
        return infos

    def run(self, job: StageJob) -> NlpAnalysis:
        parsed = job.read(ParseStage, ParsedQuestion)
        return NlpAnalysis(
            tier=self.tier,
            critique=self._analyse(parsed.critique),
            key_points=self._analyse(parsed.key_points),
        )
