"""The nlp stage: the rule-based tier's artifacts, the spaCy tier with a model loaded by path
(a blank spaCy pipeline saved to a temporary folder: no scispaCy model is ever downloaded),
the once-only fallback notice, and `mksap doctor`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mksap.settings import load_settings
from mksap_plugins.stages.nlp import NlpStage, model_available
from mksap_plugins.stages.nlp_rules import abbreviation_pairs, analyse, phrases
from tests.conftest import Workspace


def test_abbreviation_pairs() -> None:
    text = (
        "A proton pump inhibitor (PPI) or a urine albumin-creatinine ratio (UACR) and left bundle branch block (LBBB)."
    )
    assert abbreviation_pairs(text) == [
        ("proton pump inhibitor", "PPI"),
        ("urine albumin-creatinine ratio", "UACR"),
        ("left bundle branch block", "LBBB"),
    ]
    assert abbreviation_pairs("Give it twice (daily) or (x).") == []


def test_rule_tier_artifacts() -> None:
    info = analyse(
        "Drug K (Option B) lowers the risk in this patient, but it does not lower mortality; "
        "a dose ≥20 mg, a level <5 mg/L, and a course of 2–4 weeks are typical."
    )
    assert {n.cue for n in info.negations} >= {"does not"}
    assert any("lower mortality" in n.scope for n in info.negations)
    assert "semicolon joins clauses" in info.atomicity and any("list of" in h for h in info.atomicity)
    assert "contrast joins two facts" in info.atomicity
    assert {"Option B", "this patient"} <= set(info.case_specific)
    numbers = [t.text for t in info.terms if t.kind == "number"]
    assert numbers == ["≥20 mg", "<5 mg/L", "2–4 weeks"]


def test_phrases_keep_genus_initials_and_drop_verbs() -> None:
    assert "S. aureus bacteremia" in phrases("Give cefazolin for S. aureus bacteremia.")
    assert all("offered" not in p for p in phrases("It offered no benefit vs. endoscopy."))


def _stage(nlp_model: str) -> NlpStage:
    return NlpStage(load_settings(env={}).settings.with_plugin_options("nlp", model=nlp_model))


def test_without_a_model_the_rule_tier_says_so_once(isolated_env: Path) -> None:
    stage = _stage("en_core_sci_sm_not_installed")
    assert stage.tier == "rules"
    (notice,) = stage.notices()
    assert "rule-based tier" in notice and "releases/v" in notice and ".tar.gz" in notice
    assert _stage("rules").notices() == [] and _stage("rules").tier == "rules"


@pytest.fixture
def blank_model(tmp_path: Path) -> Path:
    """A real spaCy pipeline on disk (blank English + sentencizer), loadable by path."""
    spacy = pytest.importorskip("spacy")
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.meta["name"] = "blank_test"
    nlp.meta["version"] = "0.0.1"
    path = tmp_path / "models" / "blank"
    path.parent.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(path)
    return path


def test_a_model_folder_is_loaded_by_path(isolated_env: Path, blank_model: Path) -> None:
    assert model_available(str(blank_model))
    stage = _stage(str(blank_model))
    assert stage.tier == f"spacy:{blank_model}@0.0.1" and stage.notices() == []
    infos = stage._analyse(["Use a proton pump inhibitor (PPI). Then stop it.", "No benefit was seen."])
    assert any("the model reads 2 sentences" in h for h in infos[0].atomicity)
    assert [a.short for a in infos[0].abbreviations] == ["PPI"]
    assert infos[1].negations and infos[1].negations[0].cue.lower() == "no"


def test_run_with_a_relative_model_path_from_mksap_toml(ws: Workspace, blank_model: Path) -> None:
    rel = blank_model.relative_to(ws.root)
    (ws.root / "mksap.toml").write_text(f'[plugins.nlp]\nmodel = "{rel}"\n', encoding="utf-8")
    result = ws.cli("run", "-q", "cvmcq24101")
    assert result.code == 0, result.text
    assert "rule-based tier" not in result.err
    doc: dict[str, Any] = json.loads(ws.output_json("cvmcq24101").read_text(encoding="utf-8"))
    assert doc["mksap"]["provenance"]["nlp"] == f"spacy:{ws.root / rel}@0.0.1"
    nlp = json.loads(ws.artifact("cvmcq24101", "nlp").read_text(encoding="utf-8"))
    assert nlp["tier"].startswith("spacy:") and nlp["critique"][0]["abbreviations"]


def test_the_default_run_uses_the_rule_tier_and_records_it(built: Workspace) -> None:
    doc = json.loads(built.output_json("cvmcq24101").read_text(encoding="utf-8"))
    assert doc["mksap"]["provenance"]["nlp"] == "rules"
    nlp = json.loads(built.artifact("cvmcq24101", "nlp").read_text(encoding="utf-8"))
    first = nlp["critique"][1]
    assert {"text", "terms", "entities", "abbreviations", "negations", "atomicity", "case_specific"} <= set(first)


def test_doctor_reports_the_tier_the_providers_and_the_cache(ws: Workspace, blank_model: Path) -> None:
    result = ws.cli("doctor")
    assert result.code == 0, result.text
    assert "NLP tier rules" in result.out and "ai2-s2-scispacy/releases/v" in result.out
    assert "provider offline" in result.out and "no API key" in result.out
    assert "`claude` not found on PATH" in result.out or "`claude` found at" in result.out
    assert "llm cache" in result.out
    data = json.loads(ws.cli("doctor", "--json").out)["data"]
    assert {c["topic"] for c in data["checks"]} >= {"stage nlp", "providers", "llm cache", "build state"}


def test_doctor_with_a_model_and_an_unsafe_cache(ws: Workspace, blank_model: Path, monkeypatch: Any) -> None:
    cache = ws.root / "shared-cache"
    cache.mkdir()
    cache.chmod(0o777)
    monkeypatch.setenv("MKSAP_LLM_CACHE_DIR", str(cache))
    monkeypatch.setenv("MKSAP_NLP_MODEL", str(blank_model))
    result = ws.cli("doctor")
    assert result.code == 1
    assert "NLP tier spacy:" in result.out and "writable by other users" in result.out
