"""Validator benchmark: recall per defect kind and false positives, on a seeded-defect set.

The bundled examples are built with the offline provider; its statements, each with the
source unit validation reads it against (`validate.source_unit`), are the clean material,
minus the few that are not clean (KNOWN_DEFECTS, judged by reading). Clean copies are those
statements as built plus benign rewrites a careful writer makes (a synonym of the same
direction, an abbreviation spelled out, an example dropped, a leading clause moved, the first
clause of two); none may be flagged. Each seeded copy carries exactly one realistic defect made
by a rewrite of its own (an edit a model makes when it fails, never a marker the checks look
for): the kind is caught when its code is among the copy's findings.

The reference questions (../shared/reference, when present) are built and seeded the same way as
a held-out set: uncurated, no check fixed against them, their text never read or printed.

Prints a markdown section and writes it into bench/RESULTS.md (replacing only that section).

    .venv/bin/python bench/validator.py [--no-write] [--show KIND] [--reference DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from common import write_sections  # noqa: E402  (puts the repo on sys.path too)

from mksap.cli import main  # noqa: E402
from mksap.contracts.statements import Statement  # noqa: E402
from mksap_plugins.stages.checks import WARNING_CODES, SourceUnit, check  # noqa: E402
from mksap_plugins.stages.nlp_rules import abbreviation_pairs  # noqa: E402
from mksap_plugins.stages.parse import ParsedQuestion  # noqa: E402
from mksap_plugins.stages.quantities import quantities  # noqa: E402
from mksap_plugins.stages.validate import all_source_text, source_unit  # noqa: E402

SECTION = "## Validator"
SEED = 20260
STYLE_CODES = {"too_long", "list_tested"}  # style warnings: measured by bench/quality.py, not defect claims

#: Offline statements that are not clean, by reading (the source sentence itself leans on the
#: one before it, or talks about the case), by question and opening words. Neither clean
#: copies nor seeded.
KNOWN_DEFECTS = {
    ("cvmcq24101", "Digoxin is not a priority"): "'all four core classes' of the therapy named in another sentence",
    ("cvmcq24102", "Dual blockade raises"): "'Dual blockade' by the two drugs named in the clause before",
    ("encor25101", "ACE inhibitors can cause false-negative"): "'false-negative results' of the screen named before",
    ("enmcq24102", "Trials in older adults"): "'no benefit' of the treatment named in the clause before",
    ("enmcq24102", "Treatment with levothyroxine at lower"): "'lower' than the threshold in the sentence before",
    ("gimcq24101", "Tranexamic acid was associated"): "'more' events, in the trial named in the clause before",
    ("idcor25101", "Oral vancomycin remains an acceptable"): "'an acceptable alternative' to the drug named before",
    ("idmcq24102", "Vancomycin and piperacillin-tazobactam are not"): "'these organisms' of the clause before",
    ("npcor25101", "Fluid restriction and tolvaptan act"): "'too slowly' to correct what the clause before names",
    ("npmcq24102", "A serum creatinine increase of up to 30%"): "after starting the drugs named in the clause before",
    ("npmcq24102", "Dual blockade raises"): "'Dual blockade' by the two drugs named in the clause before",
}


def known_defect(qid: str, text: str) -> bool:
    return any(q == qid and text.startswith(opening) for q, opening in KNOWN_DEFECTS)


#: Faithful paraphrases, written for this benchmark in the free style of a model doing its job
#: (subjects resolved, clauses split and reordered, numbers and negations reworded), each with
#: the statement whose source unit it is held to (question, opening words). Clean copies too.
PARAPHRASES = [
    (
        "cvcor25101",
        "Direct oral anticoagulants",
        "DOACs are favored over warfarin unless a mechanical heart valve or moderate to severe mitral "
        "stenosis is present.",
    ),
    (
        "cvcor25101",
        "Direct oral anticoagulants",
        "Compared with warfarin, direct oral anticoagulants cause less intracranial hemorrhage.",
    ),
    (
        "cvcor25101",
        "Apixaban is reduced",
        "The apixaban dose is lowered to 2.5 mg twice daily when at least two of these are present: age ≥80 "
        "years, weight ≤60 kg, serum creatinine ≥1.5 mg/dL.",
    ),
    (
        "cvcor25101",
        "Aspirin is not recommended",
        "Aspirin should not be used for stroke prevention in atrial fibrillation.",
    ),
    (
        "cvcor25101",
        "Aspirin is not recommended",
        "Aspirin gives little stroke protection compared with anticoagulation but carries a similar risk of "
        "major bleeding.",
    ),
    (
        "cvcor25101",
        "Dual antiplatelet therapy",
        "Dual antiplatelet therapy prevents stroke less effectively than oral anticoagulation.",
    ),
    (
        "cvcor25101",
        "Oral anticoagulation is recommended for women",
        "Women with a CHA2DS2-VASc score of 3 or more and men with a score of 2 or more should receive oral "
        "anticoagulation.",
    ),
    (
        "cvmcq24101",
        "Sodium-glucose cotransporter 2 (SGLT2) inhibitors lower",
        "SGLT2 inhibitors reduce heart failure hospitalizations and cardiovascular deaths in patients with or"
        " without diabetes.",
    ),
    (
        "cvmcq24101",
        "Sodium-glucose cotransporter 2 (SGLT2) inhibitors can be started",
        "An SGLT2 inhibitor can be started once the eGFR is at least 20–25 mL/min/1.73 m².",
    ),
    (
        "cvmcq24101",
        "Ivabradine is reserved",
        "Ivabradine is an option only in sinus rhythm with a resting heart rate of 70/min or higher despite a"
        " maximally tolerated β-blocker.",
    ),
    (
        "cvmcq24101",
        "Digoxin can reduce",
        "Digoxin may reduce hospitalizations in patients who remain symptomatic, but it does not improve survival.",
    ),
    (
        "cvmcq24101",
        "Guideline-directed therapy for heart failure",
        "An SGLT2 inhibitor is one of the four drug classes of guideline-directed therapy for heart failure "
        "with reduced ejection fraction.",
    ),
    (
        "cvmcq24102",
        "In patients with diabetes and a urine",
        "An ACE inhibitor or ARB is preferred in diabetes with a UACR of 30 mg/g or more because it slows "
        "albuminuria progression and kidney function loss independent of blood pressure lowering.",
    ),
    (
        "cvmcq24102",
        "Amlodipine and chlorthalidone",
        "Amlodipine and chlorthalidone lower blood pressure but lack the antiproteinuric effect of ACE inhibitors.",
    ),
    (
        "cvmcq24102",
        "β-blockers are not first-line",
        "β-Blockers are not first-line antihypertensives without a compelling indication such as HFrEF, "
        "angina, or atrial fibrillation rate control.",
    ),
    (
        "dmvdx24101",
        "Stevens-Johnson syndrome is usually",
        "Stevens-Johnson syndrome is usually caused by drugs and typically involves at least two mucosal surfaces.",
    ),
    (
        "dmvdx24101",
        "Individual urticarial wheals",
        "Individual urticarial wheals resolve within 24 hours and have no dusky center.",
    ),
    (
        "dmvdx24101",
        "A fixed drug eruption",
        "Fixed drug eruption causes one or a few round violaceous plaques that recur at the same site with "
        "each exposure to the culprit drug.",
    ),
    (
        "dmvdx24101",
        "Frequent HSV-associated",
        "Continuous suppressive antiviral therapy such as valacyclovir can prevent frequent HSV-associated "
        "recurrences of erythema multiforme.",
    ),
    (
        "encor25101",
        "Resistant hypertension is blood pressure",
        "Resistant hypertension means blood pressure above goal despite optimal doses of three "
        "antihypertensive drugs from different classes, one of them a diuretic.",
    ),
    (
        "encor25101",
        "Primary aldosteronism is the most common",
        "Hypokalemia and metabolic alkalosis make primary aldosteronism more likely in resistant hypertension.",
    ),
    (
        "encor25101",
        "Initial screening for primary aldosteronism",
        "Antihypertensive drugs other than mineralocorticoid receptor antagonists need not be stopped before "
        "initial screening for primary aldosteronism.",
    ),
    (
        "encor25101",
        "Renal artery duplex",
        "Renal artery duplex ultrasonography is preferred when there is an abdominal bruit, flash pulmonary "
        "edema, or a creatinine increase of more than 30% after an ACE inhibitor is started.",
    ),
    (
        "enmcq24101",
        "Without unequivocal hyperglycemia",
        "When hyperglycemia is not unequivocal, diabetes requires two abnormal results, which can come from "
        "two different tests on the same blood sample.",
    ),
    (
        "enmcq24101",
        "An oral glucose tolerance test (OGTT) adds no",
        "Once two concordant tests are abnormal, an OGTT adds no diagnostic information.",
    ),
    (
        "enmcq24101",
        "Diabetes mellitus can be diagnosed",
        "Two different abnormal tests, such as hemoglobin A1c and fasting plasma glucose, from one sample "
        "confirm diabetes in an asymptomatic patient.",
    ),
    (
        "enmcq24102",
        "Subclinical hypothyroidism is defined",
        "A single elevated TSH value should be repeated before diagnosing subclinical hypothyroidism, because"
        " transient TSH elevations are common.",
    ),
    (
        "enmcq24102",
        "Serum triiodothyronine",
        "Serum T3 does not need to be measured when hypothyroidism is suspected, since it often stays normal "
        "until late disease.",
    ),
    (
        "enmcq24102",
        "A single elevated thyroid-stimulating hormone (TSH) level",
        "Before subclinical hypothyroidism is diagnosed, an elevated TSH with normal free thyroxine should be"
        " confirmed by repeat testing in 6 to 12 weeks.",
    ),
    (
        "gimcq24101",
        "A high-dose proton pump",
        "High-dose PPI therapy before endoscopy reduces high-risk stigmata at endoscopy but does not reduce mortality.",
    ),
    (
        "gimcq24101",
        "Tranexamic acid showed",
        "In a large randomized trial, tranexamic acid did not lower mortality in gastrointestinal bleeding "
        "and increased venous thromboembolic events.",
    ),
    (
        "gimcq24101",
        "A restrictive threshold of hemoglobin",
        "A restrictive hemoglobin threshold, below 7 g/dL, is advised for stable patients with upper GI "
        "bleeding who have no cardiovascular disease.",
    ),
    (
        "idcor25101",
        "Current guidelines favor",
        "Fidaxomicin 200 mg twice daily for 10 days is favored over oral vancomycin because it lowers "
        "recurrence rates.",
    ),
    (
        "idcor25101",
        "Intravenous vancomycin is not excreted",
        "Intravenous vancomycin has no role in CDI because it is not excreted into the colon.",
    ),
    (
        "idcor25101",
        "Fecal microbiota transplantation",
        "Fecal microbiota transplantation is used for multiple CDI recurrences after appropriate antibiotics,"
        " not for a first episode.",
    ),
    (
        "idmcq24101",
        "Transesophageal echocardiography",
        "Transesophageal echocardiography is preferred when endocarditis is likely, for example with "
        "bacteremia lasting more than 72 hours or a prosthetic valve.",
    ),
    (
        "idmcq24101",
        "Adding gentamicin",
        "Gentamicin adds no benefit in native-valve S. aureus bacteremia and raises the risk of nephrotoxicity.",
    ),
    (
        "idmcq24101",
        "Uncomplicated S. aureus bacteremia requires",
        "Uncomplicated S. aureus bacteremia needs at least 14 days of intravenous antibiotics, counted from "
        "the first negative blood culture.",
    ),
    (
        "idmcq24102",
        "Macrolide monotherapy",
        "Macrolide monotherapy should be limited to healthy patients where pneumococcal macrolide resistance "
        "is below 25%.",
    ),
    (
        "idqqq24101",
        "Rifamycin-based short-course",
        "Short-course rifamycin-based regimens are preferred over 6–9 months of isoniazid because they are as"
        " effective, better completed, and less hepatotoxic.",
    ),
    (
        "idqqq24101",
        "Before rifampin is started",
        "Rifampin induces hepatic cytochrome P450 enzymes, so the medication list should be checked for "
        "interactions before starting it.",
    ),
    (
        "npcor25101",
        "Total correction should",
        "In the first 24 hours, correction of chronic hyponatremia should generally not exceed 8–10 mEq/L to "
        "avoid osmotic demyelination syndrome.",
    ),
    (
        "npcor25101",
        "In syndrome of inappropriate antidiuretic hormone secretion (SIADH) the infused",
        "Isotonic saline can worsen hyponatremia in SIADH, because the sodium is excreted in concentrated "
        "urine and the water is retained.",
    ),
    (
        "npcor25101",
        "Severely symptomatic hyponatremia",
        "Severe symptomatic hyponatremia, such as with seizures or coma, is treated with 100-mL boluses of 3%"
        " saline to raise serum sodium by 4 to 6 mEq/L.",
    ),
    (
        "npmcq24101",
        "Combining an ACE inhibitor",
        "Combining an ACE inhibitor and an ARB raises the risk of hyperkalemia and acute kidney injury "
        "without improving kidney or cardiovascular outcomes.",
    ),
    (
        "npmcq24101",
        "Sodium bicarbonate is considered",
        "Sodium bicarbonate therapy is considered when serum bicarbonate falls below 22 mEq/L.",
    ),
    (
        "npmcq24102",
        "Adding losartan should be avoided",
        "Losartan should not be added to an ACE inhibitor, because dual renin-angiotensin blockade adds no "
        "benefit and increases hyperkalemia and acute kidney injury.",
    ),
    (
        "npmcq24102",
        "A rise in serum creatinine of up to 30%",
        "A creatinine rise of up to 30% after starting an ACE inhibitor or ARB is expected and is not a "
        "reason to stop the drug.",
    ),
    (
        "npmcq24102",
        "An ACE inhibitor should not be combined",
        "ACE inhibitors and ARBs should not be used together.",
    ),
    (
        "gimcq24101",
        "In hemodynamically stable adults, the hemoglobin threshold for red blood cell transfusion is <7.5",
        "For hemodynamically stable adults having cardiac surgery, red cells are transfused when hemoglobin "
        "is below 7.5 g/dL.",
    ),
    (
        "npmcq24101",
        "In chronic kidney disease, glomerular filtration rate (GFR) category G3b",
        "In CKD, GFR category G3b means an eGFR of 30 to 44 mL/min/1.73 m².",
    ),
    (
        "cvmcq24102",
        "Labetalol or extended-release nifedipine",
        "In pregnancy, labetalol or extended-release nifedipine is the antihypertensive of choice.",
    ),
    (
        "cvmcq24102",
        "In pregnancy, angiotensin-converting",
        "ACE inhibitors and ARBs must not be used during pregnancy.",
    ),
    (
        "enmcq24101",
        "A fasting plasma glucose ≥126",
        "A fasting plasma glucose of 126 mg/dL or higher, measured after at least 8 hours without calories, is "
        "one criterion for diagnosing diabetes.",
    ),
]


#: A second batch, written after the checks were settled and run once, as they are: how the
#: checks fare on paraphrases they were not fixed against.
PARAPHRASES_LATE = [
    (
        "cvcor25101",
        "Aspirin is not recommended",
        "For stroke prevention in atrial fibrillation, aspirin is not a recommended alternative to anticoagulation.",
    ),
    (
        "cvcor25101",
        "Direct oral anticoagulants",
        "Direct oral anticoagulants are preferred to warfarin because they cause less intracranial bleeding.",
    ),
    (
        "cvmcq24101",
        "Guideline-directed medical therapy for HFrEF",
        "Guideline-directed medical therapy for HFrEF includes a mineralocorticoid receptor antagonist and an"
        " evidence-based β-blocker.",
    ),
    (
        "cvmcq24101",
        "Hydralazine plus isosorbide",
        "Hydralazine plus isosorbide dinitrate is mainly added for self-identified Black patients who remain "
        "symptomatic on optimal therapy.",
    ),
    (
        "cvmcq24101",
        "Digoxin can reduce",
        "Digoxin has no mortality benefit in heart failure with reduced ejection fraction.",
    ),
    (
        "cvmcq24102",
        "β-blockers are not first-line",
        "Without a compelling indication, β-blockers are not used as first-line antihypertensive drugs.",
    ),
    (
        "cvmcq24102",
        "An ACE inhibitor or angiotensin receptor blocker is the preferred",
        "In patients with diabetes mellitus and a urine albumin-creatinine ratio of at least 30 mg/g, an ACE "
        "inhibitor or ARB is the preferred antihypertensive.",
    ),
    (
        "dmvdx24101",
        "A fixed drug eruption",
        "A fixed drug eruption recurs at the same site each time the culprit drug is taken.",
    ),
    (
        "dmvdx24101",
        "Stevens-Johnson syndrome is usually",
        "Stevens-Johnson syndrome starts on the trunk with flat atypical targets and dusky macules.",
    ),
    (
        "encor25101",
        "A suppressed renin activity",
        "A positive screen for primary aldosteronism, with suppressed renin, an aldosterone-renin ratio of "
        "20–30 or more, and plasma aldosterone of 10–15 ng/dL or more, warrants confirmatory testing.",
    ),
    (
        "encor25101",
        "Plasma free metanephrines",
        "Plasma free metanephrines are measured when paroxysmal headaches, palpitations, or sweating suggest "
        "pheochromocytoma.",
    ),
    (
        "encor25101",
        "Patients with resistant hypertension",
        "Screening for primary aldosteronism uses plasma aldosterone concentration and plasma renin activity "
        "in resistant hypertension or hypertension with hypokalemia.",
    ),
    (
        "enmcq24101",
        "In an asymptomatic patient, diabetes",
        "A hemoglobin A1c of 6.5% or higher diagnoses diabetes in an asymptomatic patient.",
    ),
    (
        "enmcq24101",
        "A repeat hemoglobin A1c",
        "Repeating the hemoglobin A1c is needed only if one test is abnormal or two tests disagree.",
    ),
    (
        "enmcq24101",
        "Measuring glutamic acid",
        "Glutamic acid decarboxylase antibodies are measured only in adults with features suggesting "
        "autoimmune diabetes.",
    ),
    (
        "enmcq24102",
        "Thyroid ultrasonography is unnecessary",
        "A patient with a normal thyroid examination and no palpable nodules does not need thyroid ultrasonography.",
    ),
    (
        "enmcq24102",
        "Levothyroxine is generally recommended",
        "In subclinical hypothyroidism, levothyroxine is generally advised once TSH reaches 10 μU/mL or more.",
    ),
    (
        "gimcq24101",
        "After resuscitation, endoscopy",
        "Endoscopy within 24 hours of presentation, after resuscitation, allows both diagnosis and endoscopic"
        " hemostasis.",
    ),
    (
        "gimcq24101",
        "In a randomized trial, urgent",
        "Urgent endoscopy within 6 hours gave no advantage over endoscopy at 6–24 hours in stable high-risk "
        "patients in a randomized trial.",
    ),
    (
        "gimcq24101",
        "A restrictive threshold of hemoglobin",
        "Stable patients with UGIB and no cardiovascular disease are transfused only below a hemoglobin of 7 g/dL.",
    ),
    (
        "idcor25101",
        "Oral metronidazole is considered only",
        "Oral metronidazole is used for nonsevere CDI only when neither fidaxomicin nor oral vancomycin can "
        "be obtained.",
    ),
    (
        "idcor25101",
        "Fidaxomicin is preferred",
        "For a first episode of Clostridioides difficile infection, fidaxomicin is preferred to oral "
        "vancomycin since it cuts recurrences.",
    ),
    (
        "idmcq24101",
        "Echocardiography is recommended",
        "Every patient with S. aureus bacteremia should have echocardiography, because endocarditis may be "
        "clinically silent.",
    ),
    (
        "idmcq24101",
        "For methicillin-susceptible isolates",
        "Cefazolin or nafcillin lowers mortality compared with vancomycin for methicillin-susceptible S. aureus.",
    ),
    (
        "idmcq24102",
        "Vancomycin and piperacillin-tazobactam",
        "Vancomycin and piperacillin-tazobactam cover MRSA and Pseudomonas aeruginosa.",
    ),
    (
        "idqqq24101",
        "Latent tuberculosis infection (LTBI) is diagnosed",
        "Latent tuberculosis infection is diagnosed with a positive tuberculin skin test or IGRA in a person "
        "without symptoms or radiographic signs of active disease.",
    ),
    (
        "idqqq24101",
        "Four-drug therapy",
        "Four-drug therapy is for active tuberculosis and is not needed once active disease is excluded.",
    ),
    (
        "npcor25101",
        "Fluid restriction and tolvaptan",
        "Fluid restriction and tolvaptan work too slowly for a patient with seizures from SIADH.",
    ),
    (
        "npcor25101",
        "Correction of chronic hyponatremia",
        "To avoid osmotic demyelination, chronic hyponatremia should be corrected by no more than 8–10 mEq/L "
        "in the first 24 hours.",
    ),
    (
        "npmcq24101",
        "Limiting protein to 0.4",
        "Restricting protein intake to 0.4 g/kg/d carries a risk of malnutrition.",
    ),
    (
        "npmcq24102",
        "ACE inhibitors and angiotensin receptor blockers lower",
        "By lowering intraglomerular pressure, ACE inhibitors and ARBs cause an early hemodynamic rise in "
        "serum creatinine.",
    ),
    (
        "npmcq24102",
        "Switching to losartan",
        "Switching from lisinopril to losartan would have the same hemodynamic effect on creatinine.",
    ),
    (
        "idmcq24102",
        "Amoxicillin, 1 g three times daily, is the preferred",
        "For adult outpatients with community-acquired pneumonia and no comorbidities or risk factors for "
        "resistant pathogens, amoxicillin 1 g three times daily is the preferred empiric choice.",
    ),
    (
        "gimcq24101",
        "In hemodynamically stable adults, the hemoglobin threshold for red blood cell transfusion is <8",
        "In stable adults having orthopedic surgery or with preexisting cardiovascular disease, red cells are "
        "transfused below a hemoglobin of 8 g/dL.",
    ),
    (
        "npmcq24101",
        "In chronic kidney disease, glomerular filtration rate (GFR) category G5",
        "An eGFR below 15 mL/min/1.73 m² defines GFR category G5.",
    ),
]

#: defect kind -> the finding code that catches it
KINDS = {
    "dropped negation": "negation_lost",
    "added negation": "negation_added",
    "invented number": "number_not_in_source",
    "number from another unit": "number_not_in_unit",
    "case-specific wording": "case_specific",
    "answer framing": "answer_framing",
    "citation / figure / table": "citation_reference",
    "discourse-marker opening": "discourse_opening",
    "subject-less": "subject_less",
    "swapped term": "swapped_term",
    "direction flip": "direction_flip",
    "dropped hedge": "dropped_hedge",
}


@dataclass
class Item:
    """One statement with what validation reads it against."""

    qid: str
    statement: Statement
    unit: SourceUnit
    everything: str
    pairs: list[tuple[str, str]] = field(default_factory=list)

    def copy(self, text: str) -> Item:
        s = self.statement.model_copy(update={"statement": text, "findings": []})
        words = {w for c in s.cloze_candidates for w in re.findall(r"\w+", c)}
        kept = [c for c in s.cloze_candidates if _whole(text, c)]
        if not kept:  # the rewrite removed every candidate: take a word it kept, as cloze would
            kept = [next((w for w in re.findall(r"[A-Za-z][\w-]{5,}", text) if w not in words), text.split()[-1])]
        s = s.model_copy(update={"cloze_candidates": kept})
        return Item(self.qid, s, self.unit, self.everything, self.pairs)


def _whole(text: str, cand: str) -> bool:
    return bool(re.search(rf"(?<![\w-]){re.escape(cand)}(?![\w-])", text))


# -- building the clean material ----------------------------------------------------------------


@contextlib.contextmanager
def isolated(root: Path) -> Iterator[None]:
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith(("MKSAP_", "ANTHROPIC_")):
            del os.environ[name]
    os.environ.update(
        HOME=str(root / "home"),
        XDG_CACHE_HOME=str(root / "home" / ".cache"),
        MKSAP_USER_CONFIG=str(root / "none.toml"),
        MKSAP_LLM_CACHE_DIR=str(root / "llm"),
        MKSAP_PROVIDER="offline",
        MKSAP_VALIDATE_KEEP_REJECTED="true",
    )
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def material(data_dir: Path, tmp: Path, curated: bool) -> list[Item]:
    """A question set built offline: every statement with its source unit (minus
    KNOWN_DEFECTS when `curated`)."""
    data = tmp / "data"
    shutil.copytree(data_dir, data, ignore=shutil.ignore_patterns("*.md"))
    with isolated(tmp), contextlib.redirect_stderr(io.StringIO()) as err:
        code = main(["run", "-q", "--data", str(data), "--out", str(tmp / "out"), "--cache-dir", str(tmp / "c")])
    if code != 0:
        raise SystemExit(f"mksap run failed on {data_dir} ({code}):\n{err.getvalue()[-1500:]}")
    items = []
    for out in sorted((tmp / "out").glob("*/*/*.json")):
        doc = json.loads(out.read_text(encoding="utf-8"))
        qid = doc["question_id"]
        artifact = tmp / "c" / "build" / out.parent.parent.name / qid / "parse.json"
        parsed = ParsedQuestion.model_validate_json(artifact.read_text(encoding="utf-8"))
        everything = all_source_text(parsed)
        pairs = abbreviation_pairs(everything)
        ts = doc["true_statements"]
        for raw in [*ts["from_critique"], *ts["from_key_points"], *doc["table_statements"]["statements"]]:
            s = Statement.model_validate({**raw, "findings": []})
            if not curated or not known_defect(qid, s.statement):
                items.append(Item(qid, s, source_unit(s, parsed), everything, pairs))
    return items


# -- text helpers -----------------------------------------------------------------------------

ACRONYM = re.compile(r"^[A-Z0-9]{2,}|^[A-Z][a-z]*[A-Z]")


def lower_first(text: str) -> str:
    return text if ACRONYM.match(text) else text[:1].lower() + text[1:]


def upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def body(text: str) -> str:
    return text.rstrip().rstrip(".")


def sub_once(pattern: str, repl: str | Callable[[re.Match[str]], str], text: str, flags: int = re.I) -> str | None:
    new = re.sub(pattern, repl, text, count=1, flags=flags)
    return new if new != text else None


def third_person(verb: str) -> str:
    if verb.endswith(("s", "sh", "ch", "x", "z", "o")):
        return verb + "es"
    if verb.endswith("y") and verb[-2:-1] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


def pick(rng: random.Random, options: list[str | None]) -> str | None:
    usable = [o for o in options if o]
    return rng.choice(usable) if usable else None


# -- benign rewrites (must pass) ----------------------------------------------------------------

SYNONYMS = [
    (r"\breduces\b", "lowers"), (r"\blowers\b", "reduces"), (r"\breduce\b", "lower"),
    (r"\blower\b(?= the risk)", "reduce"),
    (r"\bis recommended\b", "is advised"), (r"\bare recommended\b", "are advised"), (r"\bis preferred\b", "is favored"),
    (r"\bare preferred\b", "are favored"), (r"\bincreases\b", "raises"), (r"\braises\b", "increases"),
    (r"\bis needed\b", "is required"), (r"\bare needed\b", "are required"), (r"\bshould be\b", "is to be"),
    (r"\bis reserved for\b", "is kept for"), (r"\bis considered\b", "is regarded"),
]  # fmt: skip


NEGATION_REWORDS = [
    (r"\bis not recommended\b", "should not be used"), (r"\bdoes not require\b", "does not need"),
    (r"\b(has|have) no\b", "offer no"), (r"\bis unnecessary\b", "is not needed"),
    (r"\bare unnecessary\b", "are not needed"), (r"\bis ineffective\b", "is not effective"),
    (r"\bare not indicated\b", "are not warranted"), (r"\bis not indicated\b", "is not warranted"),
    (r"\bDo not\b", "Never"), (r"\bshould be avoided\b", "should not be used"),
]  # fmt: skip
HEDGE_REWORDS = [
    (r"\busually\b", "typically"), (r"\boften\b", "frequently"), (r"\bmay be\b", "can be"),
    (r"\bgenerally\b", "usually"), (r"\btypically\b", "usually"), (r"\bmost often\b", "usually"),
    (r"\bcan be\b", "may be"), (r"\bmainly\b", "mostly"),
]  # fmt: skip
NUMBER_REWORDS = [
    (r"≥ ?(\d[\d.,]*)", r"at least \1"), (r"<(\d[\d.,]*)", r"less than \1"), (r"≤ ?(\d[\d.,]*)", r"\1 or less"),
    (r"(\d)–(\d)", r"\1 to \2"), (r">(\d[\d.,]*)", r"more than \1"),
]  # fmt: skip


def benign_rewrites(item: Item) -> list[tuple[str, str]]:
    """(rewrite name, text): faithful rewrites that change no fact, as a careful writer (or a
    model doing its job) makes them."""
    text = item.statement.statement
    out: list[tuple[str, str]] = []
    for name, table in (("synonym", SYNONYMS), ("negation reworded", NEGATION_REWORDS),
                        ("hedge reworded", HEDGE_REWORDS), ("numbers reworded", NUMBER_REWORDS)):  # fmt: skip
        for pattern, repl in table:
            if new := sub_once(pattern, repl, text, 0):
                out.append((name, new))
                break
    for long, short in item.pairs:
        if re.search(rf"\b{re.escape(short)}\b", text) and long not in text:
            out.append(("abbreviation spelled out", re.sub(rf"\b{re.escape(short)}\b", long, text, count=1)))
            break
        if long in text and f"({short})" in text:
            out.append(("abbreviation dropped", text.replace(f" ({short})", "", 1)))
            break
    if new := sub_once(r"\s*\(e\.g\.,[^)]*\)", "", text):
        out.append(("example dropped", new))
    if new := sub_once(r"\bpatients with\b", "people with", text):
        out.append(("people for patients", new))
    if new := sub_once(r"^(.{3,60}?) (is|are) (recommended|preferred)\b", r"\1 \2 generally \3", text):
        out.append(("hedge added", new))
    if m := re.match(r"^((?:In|For|During|After|Before|Without) [^,]{4,80}), (.+?)\.?$", text):
        out.append(("leading clause moved", f"{upper_first(m.group(2))} {lower_first(m.group(1))}."))
    if m := re.match(r"^(.{30,}?)(?:, and |; |, but )(?:it |they )?(.+)$", text):
        first = m.group(1)
        if len(first.split()) >= 6 and first.count("(") == first.count(")"):
            out.append(("first clause alone", first.rstrip(",;") + "."))
    two = r"^([A-Z][^,;]{2,60}?) (?:is|are|can|lower|reduce|slow|raise)\b.{10,}?, and (?:they|it) (.+)$"
    if m := re.match(two, text):
        out.append(("second clause with its subject", f"{m.group(1)} {m.group(2)}"))
    return out


# -- seeded defects ---------------------------------------------------------------------------

NEGATION_DROPS: list[tuple[str, str | Callable[[re.Match[str]], str]]] = [
    (r"\bdoes not (\w+)", lambda m: third_person(m.group(1))),
    (r"\bdo not (\w+)", lambda m: m.group(1)),
    (r"\b(is|are|was|were|should|must|can|will) not\b", lambda m: m.group(1)),
    (r"\bcannot\b", "can"),
    (r"\bhas no\b", "has a"),
    (r"\b(offers|provides|adds|showed|has) no\b", lambda m: f"{m.group(1)} a"),
    (r"\bno (benefit|role|advantage)\b", lambda m: f"a {m.group(1)}"),
    (r"\bunnecessary\b", "necessary"),
    (r"\bineffective\b", "effective"),
    (r"\bcontraindicated\b", "indicated"),
    (r"\bshould be avoided\b", "should be used"),
    (r"\bAvoid\b", "Use"),
    (r"\bwithout\b", "with"),
    (r"\black\b", "have"),
    (r"\blacks\b", "has"),
    (r"\bnever\b", "always"),
]
NEGATION_ADDS: list[tuple[str, Callable[[re.Match[str]], str]]] = [
    (r"\b(is|are|should|can|must|may) (?!not\b)", lambda m: f"{m.group(1)} not "),
    (
        r"\b(lowers|reduces|increases|raises|slows|requires|causes|prevents|confirms) ",
        lambda m: f"does not {m.group(1)[:-1]} ",
    ),
]  # fmt: skip
CASE_EDITS: list[Callable[[str], str | None]] = [
    lambda t: f"In this patient, {lower_first(t)}",
    lambda t: sub_once(r"\bpatients\b", "this patient", t),
    lambda t: sub_once(r"\ba patient\b", "this patient", t),
    lambda t: f"For a 68-year-old woman, {lower_first(t)}",
    lambda t: f"{body(t)}, as in this case.",
    lambda t: f"{body(t)}, which applies here.",
    lambda t: sub_once(r"\b(adults|women|men|outpatients)\b", r"her", t) and f"For her, {lower_first(t)}",
]
CITATIONS = [
    " (Table 2)", " (see Figure 1)", " (shown)", " (Figure 3)", " (Okafor et al.)", ", as shown in the figure",
    " [12]", " (N Engl J Med. 2019;380:1509-24)", " (Brandt 2021)", " (see eTable 4)", " (pp. 112–118)",
    " (Table: Recommended Regimens)",
]  # fmt: skip
CITATION_PREFIXES = ["As shown in Table 1, ", "According to Figure 2, ", "As Lee et al. reported, "]
MARKERS = [
    "However,", "Similarly,", "In addition,", "Therefore,", "Moreover,", "Furthermore,", "In contrast,", "Thus,",
    "Conversely,", "Additionally,", "Also,", "Likewise,", "As a result,", "Consequently,", "Nevertheless,",
    "For this reason,", "Finally,", "Importantly,", "Hence,", "Instead,",
]  # fmt: skip
#: (singular, plural) generic subjects by what the replaced subject names.
GENERIC_SUBJECTS = {
    "drug": (["The drug", "This agent", "The medication", "The treatment"], ["These agents", "The drugs"]),
    "disease": (["The condition", "The disorder", "This condition", "The disease"], ["These conditions"]),
    "test": (["The test", "This study", "The examination"], ["These tests", "The studies"]),
    "patients": (["The patient"], ["These patients", "The patients"]),
    "other": (["The intervention", "This approach", "The therapy"], ["These measures", "The interventions"]),
}
PLURAL_VERBS = re.compile(r"^(?:are|have|were|do|lower|reduce|raise|cause|require|slow|offer|provide|target|act)\b")
SUBJECT = re.compile(
    r"^(?!(?:In|For|During|After|Before|Without|When|If|Although|Because|With|Among|Once|Until)\b)"
    r"([A-Z][^,;:]{2,70}?) (?=(?:is|are|can|should|may|has|have|lowers?|reduces?|raises?|causes?|requires?|presents?"
    r"|begins?|slows?|offers?|provides?|remains?|showed|adds|targets?|induces?|lengthens?|act)\b)"
)
#: What a model swaps when it confuses terms: the generator's own list, not the checker's.
SWAPS = {
    "apixaban": "rivaroxaban", "warfarin": "heparin", "aspirin": "clopidogrel", "Aspirin": "Clopidogrel",
    "lisinopril": "losartan", "amlodipine": "nifedipine", "Amlodipine": "Diltiazem", "chlorthalidone": "furosemide",
    "dapagliflozin": "sitagliptin", "Ivabradine": "Digoxin", "Digoxin": "Amiodarone", "hydralazine": "minoxidil",
    "Hydralazine": "Minoxidil", "labetalol": "metoprolol", "nifedipine": "amlodipine", "fidaxomicin": "rifaximin",
    "Fidaxomicin": "Rifaximin", "vancomycin": "linezolid", "metronidazole": "tinidazole", "cefazolin": "ceftriaxone",
    "nafcillin": "oxacillin", "gentamicin": "tobramycin", "rifampin": "rifabutin", "isoniazid": "ethambutol",
    "tolvaptan": "conivaptan", "doxycycline": "minocycline", "amoxicillin": "ampicillin", "Amoxicillin": "Ampicillin",
    "valacyclovir": "famciclovir", "levothyroxine": "liothyronine", "Levothyroxine": "Liothyronine",
    "hyperkalemia": "hypokalemia", "hypokalemia": "hyperkalemia", "hyponatremia": "hypernatremia",
    "hypothyroidism": "hyperthyroidism", "hyperglycemia": "hypoglycemia", "albuminuria": "hematuria",
    "nephrotoxicity": "ototoxicity", "endocarditis": "osteomyelitis", "tuberculosis": "sarcoidosis",
    "bacteremia": "fungemia", "malnutrition": "sarcopenia", "pheochromocytoma": "paraganglioma",
    "echocardiography": "angiography", "Echocardiography": "Angiography", "ultrasonography": "scintigraphy",
    "radiograph": "tomogram", "colonoscopy": "endoscopy", "endoscopy": "colonoscopy",
    "transthoracic": "transesophageal", "Transesophageal": "Transthoracic", "oral": "intravenous",
    "Oral": "Intravenous", "Intravenous": "Oral", "men": "women", "women": "men", "adults": "children",
    "acute": "chronic", "chronic": "acute", "severe": "mild", "nonsevere": "severe", "Severely": "Mildly",
    "mildly": "severely", "HFrEF": "HFpEF", "UGIB": "LGIB", "CDI": "CMV", "OGTT": "HbA1c", "SIADH": "DI",
    "upper": "lower", "native-valve": "prosthetic-valve", "Staphylococcus": "Streptococcus", "aureus": "epidermidis",
    "systolic": "diastolic", "left": "right",
}  # fmt: skip
FLIPS = {
    "increases": "decreases", "increase": "decrease", "increased": "decreased", "decreased": "increased",
    "reduces": "increases", "reduce": "increase", "lowers": "raises", "lower": "higher", "higher": "lower",
    "raises": "lowers", "raise": "lower", "more": "less", "less": "more", "above": "below", "below": "above",
    "excludes": "confirms", "excluded": "confirmed", "confirms": "excludes", "before": "after", "after": "before",
    "positive": "negative", "negative": "positive", "false-negative": "false-positive", "rise": "fall",
    "rises": "falls", "drop": "rise", "improves": "worsens", "worsen": "improve", "greater": "smaller",
    "shorter": "longer", "longer": "shorter", "slow": "speed", "early": "late", "common": "rare", "high": "low",
    "low": "high", "fewer": "more", "lengthens": "shortens", "maximally": "minimally",
}  # fmt: skip
HEDGE_DROPS: list[tuple[str, str | Callable[[re.Match[str]], str]]] = [
    (r"(?<!more )(?<!less )\b(?:usually|typically|generally|often|mainly|mostly|commonly|frequently|most often) ", ""),
    (r"\bmay be\b", "is"),
    (r"\bmay (\w+)", lambda m: m.group(1)),
    (r"\bcan be\b", "is"),
    (r"\bcan (\w+)", lambda m: third_person(m.group(1))),
    (r"\bin most patients\b", "in patients"),
    (r"\brarely ", ""),
]


def _agree(text: str) -> str:
    """'they is' -> 'they are' after a rewrite, for plural subjects (crude)."""
    return re.sub(r"\b(\w+s) is\b(?! \w+s\b)", lambda m: f"{m.group(1)} are", text, count=1)


def seed_defect(kind: str, item: Item, rng: random.Random, others: list[Item]) -> str | None:
    """`item`'s statement with one defect of `kind`, or None when the kind does not apply."""
    text, unit = item.statement.statement, item.unit
    if kind == "dropped negation":
        negative = r"\b(?:not|no|never|without|unnecessary|ineffective|contraindicated|cannot|lacks?|avoid)"
        if not re.search(negative, unit.text, re.I):
            return None
        for pattern, repl in NEGATION_DROPS:
            if new := sub_once(pattern, repl, text, 0 if pattern[2].isupper() else re.I):
                return new
        return None
    if kind == "added negation":
        negative = r"\b(?:not|no|never|without|only|cannot|unnecessary|ineffective|contraindicated|avoid|lack)"
        if re.search(negative, f"{text} {unit.text}", re.I):
            return None
        for pattern, repl in NEGATION_ADDS:
            if new := sub_once(pattern, repl, text):
                return new
        return None
    if kind == "invented number":
        known = {q.value for q in quantities(item.everything)}
        qs = quantities(text)
        if qs:
            q = rng.choice(qs)
            for factor in (1.5, 2, 3, 0.5, 4):
                value = float(q.value) * factor
                new_value = f"{value:g}" if "." in q.value else str(round(value))
                if new_value not in known and new_value != q.value:
                    return text[: q.start] + q.text.replace(q.value, new_value, 1) + text[q.end :]
            return None
        for phrase in (" within 72 hours", " for at least 6 weeks", " in about 35% of patients", " after 48 hours"):
            if not any(v in known for v in re.findall(r"\d+", phrase)):
                return f"{body(text)}{phrase}."
        return None
    if kind == "number from another unit":
        qs = quantities(text)
        own = {q.value for q in quantities(f"{unit.text} {unit.context}")}
        elsewhere = [q for q in quantities(item.everything) if q.value not in own]
        if not qs or not elsewhere or not unit.text:
            return None
        q = rng.choice(qs)
        same_unit = [e for e in elsewhere if e.unit == q.unit] or elsewhere
        e = rng.choice(same_unit)
        return text[: q.start] + q.text.replace(q.value, e.value, 1) + text[q.end :]
    if kind == "case-specific wording":
        return pick(rng, [edit(text) for edit in CASE_EDITS])
    if kind == "answer framing":
        subject = re.match(r"^(.{3,60}?) (?:is|are) ", text)
        options = [
            f"{body(text)}, which makes it the most appropriate choice.",
            f"The correct answer reflects that {lower_first(text)}",
            f"{subject.group(1)} is the most appropriate next step." if subject else None,
            f"{subject.group(1)} is the most appropriate treatment." if subject else None,
            f"The most likely diagnosis is {lower_first(subject.group(1))}." if subject else None,
            f"{body(text)}, so it is the best answer.",
        ]
        return pick(rng, options)
    if kind == "citation / figure / table":
        if rng.random() < 0.25:
            return rng.choice(CITATION_PREFIXES) + lower_first(text)
        return f"{body(text)}{rng.choice(CITATIONS)}."
    if kind == "discourse-marker opening":
        return f"{rng.choice(MARKERS)} {lower_first(text)}"
    if kind == "subject-less":
        if item.statement.source == "table" or not unit.previous:
            return None
        m = SUBJECT.match(text)
        if not m or m.group(1).count("(") != m.group(1).count(")"):
            return None
        subject, rest = m.group(1), text[m.end() :]
        low = subject.lower()
        if re.search(r"\b(?:patients|adults|outpatients)\b", low):
            kind_of = "patients"
        elif re.search(r"mab|pril|sartan|olol|dipine|mycin|micin|cillin|cycline|gliflozin|inhibitor|blocker|aspirin"
                       r"|warfarin|saline|digoxin|ivabradine|hydralazine|rifampin|metronidazole|anticoagula|therapy"
                       r"|regimen|acid|agents?|drugs?", low):  # fmt: skip
            kind_of = "drug"
        elif re.search(r"syndrome|disease|infection|itis|osis|emia|ism|hypertension|diabetes|bacteremia|eruption"
                       r"|fibrillation|failure", low):  # fmt: skip
            kind_of = "disease"
        elif re.search(r"graphy|test|screen|measurement|culture|assay|ultrasound|echocardio|metanephrines", low):
            kind_of = "test"
        else:
            kind_of = "other"
        singular, plural = GENERIC_SUBJECTS[kind_of]
        return f"{rng.choice(plural if PLURAL_VERBS.match(rest) else singular)} {rest}"
    if kind == "swapped term":
        around = f"{unit.text} {unit.context}".lower()
        absent = [
            (w, r)
            for w, r in SWAPS.items()
            if re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", text) and r.lower() not in around
        ]
        if not absent:
            return None
        w, r = rng.choice(absent)
        return re.sub(rf"(?<![\w-]){re.escape(w)}(?![\w-])", r, text, count=1)
    if kind == "direction flip":
        found = [w for w in FLIPS if re.search(rf"(?<![\w-]){w}(?![\w-])(?! than or equal)", text)]
        # not a comparator before a number ("below 30"): that is the comparator check's business
        found = [w for w in found if not re.search(rf"\bor {w}\b|\b{w}(?: than)? ?\d", text)]
        if not found:
            return None
        w = rng.choice(found)
        return re.sub(rf"(?<![\w-]){w}(?![\w-])", FLIPS[w], text, count=1)
    if kind == "dropped hedge":
        for pattern, repl in HEDGE_DROPS:
            if re.search(pattern, unit.text, re.I) and (new := sub_once(pattern, repl, text)):
                return _agree(upper_first(new))
        return None
    raise ValueError(kind)


# -- running ----------------------------------------------------------------------------------


@dataclass
class Outcome:
    kind: str
    text: str
    codes: set[str]
    qid: str
    sid: str


def run_checks(item: Item) -> set[str]:
    return {f.code for f in check(item.statement, item.unit, item.everything)}


def paraphrases(items: list[Item]) -> dict[int, list[tuple[str, str]]]:
    """The hand-written paraphrases, by the index of the item whose unit they are held to."""
    found: dict[int, list[tuple[str, str]]] = {}
    for name, table in (("written paraphrase", PARAPHRASES), ("late paraphrase", PARAPHRASES_LATE)):
        for qid, opening, text in table:
            index = next(
                (i for i, it in enumerate(items) if it.qid == qid and it.statement.statement.startswith(opening)), None
            )
            if index is None:
                raise SystemExit(f"bench/validator.py: no statement of {qid} opens with {opening!r}; update {name}s")
            found.setdefault(index, []).append((name, text))
    return found


def evaluate(items: list[Item], written: bool = False) -> tuple[list[Outcome], list[Outcome]]:
    rng = random.Random(SEED)
    clean: list[Outcome] = []
    seeded: list[Outcome] = []
    extra = paraphrases(items) if written else {}
    for index, item in enumerate(items):
        copies = [("as built", item.statement.statement), *benign_rewrites(item), *extra.get(index, [])]
        for name, text in copies:
            codes = run_checks(item.copy(text)) - STYLE_CODES
            clean.append(Outcome(name, text, codes, item.qid, item.statement.id))
        for kind in KINDS:
            text = seed_defect(kind, item, rng, items)
            if text and text != item.statement.statement:
                seeded.append(Outcome(kind, text, run_checks(item.copy(text)), item.qid, item.statement.id))
    return clean, seeded


@dataclass
class Run:
    """The outcome on one question set."""

    label: str
    questions: int
    items: list[Item]
    clean: list[Outcome]
    seeded: list[Outcome]

    def recall(self, kind: str) -> tuple[int, int]:
        outcomes = [o for o in self.seeded if o.kind == kind]
        return sum(KINDS[kind] in o.codes for o in outcomes), len(outcomes)

    @property
    def flagged(self) -> list[Outcome]:
        return [o for o in self.clean if o.codes]


def _cell(caught: int, seeded: int) -> str:
    return f"{caught}/{seeded} = {caught / seeded:.1%}" if seeded else "-"


def report(runs: list[Run], seconds: float) -> str:
    dev, held = runs[0], runs[1:]
    lines = [
        SECTION,
        "",
        f"`.venv/bin/python bench/validator.py` on {time.strftime('%Y-%m-%d')}, checks {seconds:.1f} s. "
        f"Development set: the {dev.questions} bundled examples built offline, {len(dev.items)} clean statements "
        f"({len(KNOWN_DEFECTS)} statements that are not clean left out, listed in `KNOWN_DEFECTS`), "
        f"{len(dev.clean)} clean copies (as built, plus benign rewrites), {len(dev.seeded)} seeded copies with "
        "exactly one defect each.",
    ]
    if held:
        lines[-1] += (
            f" Held-out set: the {held[0].questions} reference questions (../shared/reference) built the same way, "
            f"{len(held[0].items)} statements, uncurated; no check was fixed against them and their text is "
            "never read or printed (only these counts were seen while the checks were written)."
        )
    header = "| defect kind | code | severity | caught / seeded (examples) |"
    rule = "|---|---|---|---:|"
    if held:
        header += " caught / seeded (held out) |"
        rule += "---:|"
    lines += ["", header, rule]
    for kind, code in KINDS.items():
        severity = "warning" if code in WARNING_CODES else "error"
        row = f"| {kind} | `{code}` | {severity} | {_cell(*dev.recall(kind))} |"
        if held:
            row += f" {_cell(*held[0].recall(kind))} |"
        lines.append(row)
    rewrites = Counter(o.kind for o in dev.clean)
    fp_rate = len(dev.flagged) / len(dev.clean)
    errors = [o for o in dev.flagged if o.codes - set(WARNING_CODES)]
    lines += [
        "",
        f"False positives (examples): {len(dev.flagged)} of {len(dev.clean)} clean copies flagged ({fp_rate:.1%}; "
        f"{len(errors)} with an error finding). Clean copies: "
        + ", ".join(f"{name} {n}" for name, n in rewrites.most_common())
        + ". Style warnings (too_long, list_tested) are not counted.",
    ]
    for name in ("written paraphrase", "late paraphrase"):
        mine = [o for o in dev.clean if o.kind == name]
        hit = [o for o in mine if o.codes]
        if mine:
            codes = ", ".join(sorted({c for o in hit for c in o.codes})) or "none"
            lines.append(f"Of them, {name}s (hand-written): {len(hit)} of {len(mine)} flagged ({codes}).")
    for run in held:
        codes = Counter(c for o in run.flagged for c in o.codes)
        share = len(run.flagged) / len(run.clean) if run.clean else 0.0
        lines.append(
            f"Held out: {len(run.flagged)} of {len(run.clean)} copies flagged ({share:.1%}), uncurated, so real "
            "defects of the offline output count here too; by code: "
            + (", ".join(f"{c} {n}" for c, n in codes.most_common()) or "none")
            + "."
        )
    if dev.flagged:
        codes = Counter(c for o in dev.flagged for c in o.codes)
        lines.append("Flagged clean copies by code: " + ", ".join(f"{c} {n}" for c, n in codes.most_common()) + ".")
    recalls = {kind: dev.recall(kind) for kind in KINDS}
    worst = min(recalls, key=lambda k: recalls[k][0] / max(1, recalls[k][1]))
    low = recalls[worst][0] / max(1, recalls[worst][1])
    lines += [
        "",
        "| goal (examples) | measured | met |",
        "|---|---:|---|",
        f"| recall ≥ 95% for every kind | lowest {low:.1%} ({worst}) | {'yes' if low >= 0.95 else 'no'} |",
        f"| false positives ≤ 3% of clean copies | {fp_rate:.1%} | {'yes' if fp_rate <= 0.03 else 'no'} |",
    ]
    if held:
        worst_held = min(
            (k for k in KINDS if held[0].recall(k)[1]), key=lambda k: held[0].recall(k)[0] / held[0].recall(k)[1]
        )
        c, n = held[0].recall(worst_held)
        lines.append(
            f"| the same recall on the held-out set | lowest {c / n:.1%} ({worst_held}, {n} copies) | "
            f"{'yes' if c / n >= 0.95 else 'no'} |"
        )
    lines += ["", CAVEAT]
    return "\n".join(lines) + "\n"


CAVEAT = (
    "How far to trust this. The checks and the defect generator were written by one person from one "
    "reading of these 15 examples: the generator's edits are its own (its own swap and antonym lists, "
    "templates for framing and citations), never the checks' patterns, but the seeded recall above is "
    "an upper bound for defects of these shapes, and a kind with a few dozen copies moves several "
    "points per miss. The clean copies that matter most are the hand-written paraphrases, in the "
    "freer style of a model: on their first run the checks flagged 8 of the 53 written paraphrases "
    "(15%: 'unless' for 'without', a negation on another phrase of the sentence, 'did not lower' read "
    "as a direction, a post-cue after 'and', 'more often' read as a hedge, 'to avoid' read as a "
    "negation, 'severe' for 'severely', a direction word far from its opposite) and 4 of the 35 late "
    "ones, written after the checks were thought final (11%: 'bleeding' for 'hemorrhage', 'no more "
    "than' for 'limited to', '20-30 or more' for '≥20-30', 'does not need X' for 'X is "
    "unnecessary'). Each was a fault of "
    "the checks and was fixed, so neither set is untouched any more: expect roughly one misfire in "
    "ten on a model's paraphrases until the checks have met more of them. The reference questions "
    "are the one set no check was fixed against; there the subject-less, direction-flip and "
    "dropped-hedge checks fall short of the goal."
)


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, default=ROOT.parent / "shared" / "reference")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    parser.add_argument("--show", metavar="KIND", help="list the examples' misses of KIND ('clean': flagged copies)")
    args = parser.parse_args()
    sets = [("examples", ROOT / "examples", True)]
    if args.reference.is_dir():
        sets.append(("reference", args.reference, False))
    built = []
    for label, data_dir, curated in sets:
        tmp = Path(tempfile.mkdtemp(prefix="mksap-validator-"))
        try:
            items = material(data_dir, tmp, curated)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        built.append((label, items))
    started = time.perf_counter()
    runs = []
    for label, items in built:
        clean, seeded = evaluate(items, written=label == "examples")
        runs.append(Run(label, len({i.qid for i in items}), items, clean, seeded))
    section = report(runs, time.perf_counter() - started)
    print(section)
    if args.show:  # the examples only: the reference text is not ours to print
        dev = runs[0]
        wanted = dev.flagged if args.show == "clean" else [
            o for o in dev.seeded if o.kind == args.show and KINDS[o.kind] not in o.codes
        ]  # fmt: skip
        for o in wanted:
            print(f"- {o.qid} {o.sid} [{o.kind}] {sorted(o.codes)}: {o.text}")
    if not args.no_write:
        title, _, body = section.partition("\n")
        write_sections({title.removeprefix("## "): body})


if __name__ == "__main__":
    main_bench()
