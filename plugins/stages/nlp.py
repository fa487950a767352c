"""nlp: sentences, entities, abbreviations, negations and atomicity hints (no LLM).

Uses the configured spaCy/scispaCy model (`[plugins.nlp] model`, or `MKSAP_NLP_MODEL`: a package name,
or a path; a relative path is resolved against the config file naming it) when it is installed, and otherwise the
rule-based tier, saying so once per run. The rule-based analysis runs in both tiers; the model
adds its entities, its abbreviation detector (scispaCy) and its own sentence boundaries.
"""

from __future__ import annotations

import importlib.util
import json
import threading
import warnings
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from mksap.contracts.errors import StageError
from mksap.contracts.stage import Stage, StageJob
from mksap.settings import PluginOptions
from mksap_plugins.stages.nlp_rules import Abbreviation, SentenceInfo, Term, analyse
from mksap_plugins.stages.parse import ParsedQuestion, ParseStage

SCISPACY_RELEASES = "https://s3-us-west-2.amazonaws.com/ai2-s2-scispacy/releases/v{version}/{model}-{version}.tar.gz"
INSTALL_HINT = (
    "install a scispaCy model from its release tarball: pip install "
    + SCISPACY_RELEASES.format(version="0.5.4", model="en_core_sci_sm")
    + " (URL pattern .../releases/v<version>/<model>-<version>.tar.gz; never the look-alike names on PyPI), "
    "or set [plugins.nlp] model (MKSAP_NLP_MODEL) to a model folder"
)
RULES_ONLY = ("", "rules", "none")


class NlpOptions(PluginOptions):
    model: str = Field(
        "en_core_sci_sm",
        description="spaCy/scispaCy model: package name or path; 'rules' for the rule-based tier only",
        json_schema_extra={"path_like": True},
    )


class NlpAnalysis(BaseModel):
    """The nlp artifact."""

    tier: str = Field(description="'rules' or 'spacy:<model>@<version>'")
    critique: list[SentenceInfo]
    key_points: list[SentenceInfo]


def _is_path(model: str) -> bool:
    return "/" in model or model.startswith(".") or model.startswith("~")


def model_available(model: str) -> bool:
    """Installed as a package, or a model folder on disk. Imports nothing."""
    if model in RULES_ONLY:
        return False
    if _is_path(model):
        folder = Path(model).expanduser()
        return (folder / "config.cfg").is_file() or (folder / "meta.json").is_file()
    try:
        return importlib.util.find_spec(model) is not None
    except (ImportError, ValueError):
        return False


def model_version(model: str) -> str:
    """The model's version (its meta.json, or its package metadata); '?' when unknown."""
    try:
        if _is_path(model):
            meta = json.loads((Path(model).expanduser() / "meta.json").read_text(encoding="utf-8"))
            return str(meta.get("version") or "?")
        return metadata.version(model)
    except (OSError, ValueError, metadata.PackageNotFoundError):
        return "?"


class NlpStage(Stage):
    """Sentences, terms, abbreviations, negations; spaCy model if installed, rules otherwise."""

    name = "nlp"
    version = "2"
    needs = ("parse",)
    options_model = NlpOptions

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self._nlp: Any = None
        self._lock = threading.Lock()

    @cached_property
    def tier(self) -> str:
        model = self.options.model
        if not model_available(model):
            return "rules"
        return f"spacy:{model}@{model_version(model)}"

    def config(self) -> dict[str, Any]:
        return {"tier": self.tier}

    def notices(self) -> list[str]:
        model = self.options.model
        if self.tier == "rules" and model not in RULES_ONLY:
            return [f"NLP: spaCy model '{model}' is not installed, using the rule-based tier; {INSTALL_HINT}"]
        return []

    def health(self) -> list[str]:
        model = self.options.model
        if self.tier != "rules":
            return [f"ok: NLP tier {self.tier} (model = {model})"]
        if model in RULES_ONLY:
            return ["ok: NLP tier rules (model is set to the rule-based tier)"]
        return [f"warn: NLP tier rules: model '{model}' not found; {INSTALL_HINT}"]

    def _pipeline(self) -> Any:
        if self._nlp is None:
            import spacy  # heavy: imported only when a model is really used

            model = self.options.model
            try:
                nlp = spacy.load(Path(model).expanduser() if _is_path(model) else model)
            except (OSError, ValueError, ImportError) as e:
                raise StageError(
                    f"NLP: spaCy model '{self.options.model}' failed to load ({str(e).splitlines()[0]}); "
                    "reinstall it or set [plugins.nlp] model = 'rules'"
                ) from None
            if "abbreviation_detector" not in nlp.pipe_names and importlib.util.find_spec("scispacy"):
                import scispacy.abbreviation  # noqa: F401  (registers the factory)

                nlp.add_pipe("abbreviation_detector")
            self._nlp = nlp
        return self._nlp

    def _analyse(self, texts: list[str]) -> list[SentenceInfo]:
        infos = [analyse(t) for t in texts]
        if self.tier == "rules" or not texts:
            return infos
        with self._lock, warnings.catch_warnings():  # one pipeline shared by the worker threads
            warnings.filterwarnings("ignore", message=r".*\[W036\]")  # scispaCy's empty global matcher
            docs = list(self._pipeline().pipe(texts))
        return [enrich(info, doc) for info, doc in zip(infos, docs, strict=True)]

    def run(self, job: StageJob) -> NlpAnalysis:
        parsed = job.read(ParseStage, ParsedQuestion)
        return NlpAnalysis(
            tier=self.tier,
            critique=self._analyse(parsed.critique),
            key_points=self._analyse(parsed.key_points),
        )


def enrich(info: SentenceInfo, doc: Any) -> SentenceInfo:
    """Add what a spaCy doc knows to the rule-based analysis of the same text."""
    entities = [Term(text=e.text, kind="entity", label=e.label_) for e in doc.ents]
    if doc.has_annotation("DEP"):
        entities += [Term(text=c.text, kind="entity", label="NOUN_CHUNK") for c in doc.noun_chunks]
    abbreviations = list(info.abbreviations)
    if doc.has_extension("abbreviations"):
        for short in doc._.abbreviations:
            pair = Abbreviation(long=short._.long_form.text, short=short.text)
            if all(a.short != pair.short for a in abbreviations):
                abbreviations.append(pair)
    hints = list(info.atomicity)
    sentences = list(doc.sents) if doc.has_annotation("SENT_START") else []
    if len(sentences) > 1:
        hints.append(f"the model reads {len(sentences)} sentences")
    known = {t.text for t in info.terms}
    extra = [t for t in entities if t.text not in known and len(t.text) >= 3]
    return info.model_copy(
        update={
            "entities": [*info.entities, *entities],
            "abbreviations": abbreviations,
            "atomicity": hints,
            "terms": [*info.terms[:1], *[t for t in extra if t.label != "NOUN_CHUNK"], *info.terms[1:]],
        }
    )
