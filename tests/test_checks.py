"""Each validation check, with a case that triggers it and a near miss that does not; the false
positives the checks used to raise, as regressions; the source unit a statement is held to."""

from __future__ import annotations

import pytest

from mksap.contracts.statements import Statement
from mksap_plugins.stages.checks import (
    ERROR_CODES,
    WARNING_CODES,
    SourceUnit,
    check,
    duplicates,
    restates,
    similarity,
)
from mksap_plugins.stages.html_tables import ParsedTable
from mksap_plugins.stages.parse import ParsedQuestion
from mksap_plugins.stages.validate import all_source_text, source_unit

SOURCE = (
    "Drug K lowers the risk of stroke in atrial fibrillation. Anticoagulation is advised when the score is ≥2. "
    "Drug M does not lower mortality. The dose is 5 mg twice daily for 10 days, and the level should stay <7 g/dL."
)
GOOD = "Drug K lowers the risk of stroke in atrial fibrillation."


def codes(
    text: str,
    candidates: list[str] | None = None,
    source: str | SourceUnit = "",
    everything: str = SOURCE,
    kind: str = "critique",
) -> set[str]:
    s = Statement(
        statement=text,
        cloze_candidates=candidates if candidates is not None else [text.split()[0]],
        id="c:00000000.1",
        source=kind,  # type: ignore[arg-type]
    )
    return {f.code for f in check(s, source, everything)}


def against(text: str, unit: str, previous: str = "", candidates: list[str] | None = None) -> set[str]:
    """The codes for `text` held to the source sentence `unit` (after `previous`)."""
    return codes(
        text, candidates or [text.split()[-1].strip(".")], SourceUnit(unit, previous=previous), f"{previous} {unit}"
    )


# (code, statement that triggers it, near miss that does not); candidates default to the first word
CASES = [
    ("case_specific", "In this patient, Drug K lowers the risk of stroke.", GOOD),
    ("case_specific", "Drug K lowers the risk of stroke in a 70-year-old.", GOOD),
    ("case_specific", "Drug K is useful, as noted above, for stroke.", GOOD),
    ("source_reference", "Drug K (Option B) lowers the risk of stroke.", GOOD),
    ("source_reference", "Option C is incorrect because Drug K lowers the risk of stroke.", GOOD),
    ("pronoun_opening", "It lowers the risk of stroke when Drug K is used.", "Drug K lowers the risk; it is cheap."),
    ("number_not_in_source", "Drug K is given as 6 mg twice daily.", "Drug K is given as 5 mg twice daily."),
    ("unit_not_in_source", "Drug K is given as 5 g twice daily.", "Drug K is given as 5 mg twice daily."),
    ("comparator_not_in_source", "Drug K is advised when the score is >2.", "Drug K is advised when the score is ≥2."),
    ("comparator_not_in_source", "Drug K level should stay ≤7 g/dL.", "Drug K level should stay <7 g/dL."),
    ("too_long", "Drug K " + "lowers the risk of stroke and " * 7 + "helps.", GOOD),
    ("list_tested", "Drug K, Drug L, and Drug M lower the risk of stroke.", "Drug K and Drug M lower the stroke risk."),
    # answer framing: the question's answer, not a fact; a superlative fact is fine
    ("answer_framing", "The most likely diagnosis is pemphigus vulgaris.", "Pemphigus vulgaris causes flaccid bullae."),
    (
        "answer_framing",
        "Colonoscopy is the most appropriate next step after a positive fecal immunochemical test.",
        "Colonoscopy should follow a positive fecal immunochemical test.",
    ),
    ("answer_framing", "The correct answer is lithium toxicity.", "Lithium toxicity causes a coarse tremor."),
    (
        "answer_framing",
        "The most likely cause is a retained gallstone.",
        "The most likely cause of painless jaundice in an older adult is pancreatic cancer.",
    ),
    # citations, figures and tables the card cannot show; a clinical colon or "seen in" is fine
    (
        "citation_reference",
        "Koilonychia is a spooning of the nails (shown).",
        "Koilonychia is a spooning of the nails.",
    ),
    ("citation_reference", "Dermatomes are mapped in Figure 2.", "Dermatomes map spinal roots to skin areas."),
    ("citation_reference", "Table: causes of microcytic anemia.", "Microcytic anemia: iron deficiency first."),
    ("citation_reference", "Statins lower LDL cholesterol (Marsh et al., 2019).", "Statins lower LDL cholesterol."),
    (
        "citation_reference",
        "Early dialysis gave no benefit (Kidney J. 2018;12:233-41).",
        "Early dialysis gave no benefit in the trial.",
    ),
    ("citation_reference", "Lead lines appear in long bones (pp. 212–214).", "Lead lines appear in long bones."),
    # a connective that needs the sentence before; a leading phrase of its own is fine
    (
        "discourse_opening",
        "However, ceftriaxone does not cover enterococci.",
        "Ceftriaxone does not cover enterococci.",
    ),
    ("discourse_opening", "Similarly, rifampin induces CYP3A4.", "Like phenytoin, rifampin induces CYP3A4."),
    (
        "discourse_opening",
        "In addition, thiazides raise serum calcium.",
        "In addition to lowering blood pressure, thiazides raise serum calcium.",
    ),
    (
        "discourse_opening",
        "Therefore, metformin is held before iodinated contrast.",
        "Metformin is held before contrast.",
    ),
    ("discourse_opening", "Overall, survival improved.", "Overall survival improved with adjuvant therapy."),
]


@pytest.mark.parametrize(("code", "bad", "good"), CASES)
def test_each_wording_and_faithfulness_check(code: str, bad: str, good: str) -> None:
    assert code in codes(bad)
    assert code not in codes(good)


# -- the false positives the issue reported -------------------------------------------------------


def test_negation_scope_ends_at_an_and_that_starts_a_new_clause() -> None:
    source = (
        "A normal serum potassium does not exclude hypercortisolism and clinical signs of Cushing syndrome "
        "include violaceous striae and proximal muscle weakness."
    )
    clean = "Clinical signs of Cushing syndrome include violaceous striae and proximal muscle weakness."
    assert {"negation_lost", "negation_added"}.isdisjoint(against(clean, source))
    # the negation is still held where it belongs
    assert "negation_lost" in against("A normal serum potassium excludes hypercortisolism.", source)


def test_overlap_is_word_aligned() -> None:
    text = "The epidermis lies above the dermis, which holds the hair follicles."
    # 'dermis' inside 'epidermis' is no occurrence: placed at the word 'dermis', nothing overlaps
    assert "cloze_invalid" not in codes(text, ["epidermis", "dermis"], everything=text)
    assert "cloze_invalid" in codes("The epidermis is avascular.", ["dermis"], everything=text)
    # a term is found as a word: 'dermis' in the statement is not in a source that only says 'epidermis'
    source = "Psoriasis thickens the epidermis."
    assert "swapped_term" not in against("Psoriasis thickens the epidermis.", source)


def test_statements_that_differ_in_a_drug_name_are_not_duplicates() -> None:
    a = Statement(
        statement="Benralizumab reduces exacerbations in severe eosinophilic asthma with frequent steroid bursts.",
        id="c:1.1",
        source="critique",
    )
    b = Statement(
        statement="Mepolizumab reduces exacerbations in severe eosinophilic asthma with frequent steroid bursts.",
        id="c:2.1",
        source="critique",
    )
    assert similarity(a.statement, b.statement) >= 0.8  # the words alone would merge them
    assert duplicates([a, b]) == {} and restates(a.statement, b.statement) is None
    hyper = "Hyperkalemia with peaked T waves calls for intravenous calcium gluconate at once."
    hypo = "Hypokalemia with peaked T waves calls for intravenous calcium gluconate at once."
    assert restates(hyper, hypo) is None
    # a restatement in other words (same terms) is still a duplicate
    again = Statement(
        statement="In severe eosinophilic asthma with frequent steroid bursts, benralizumab reduces exacerbations.",
        id="k:3.1",
        source="key_point",
    )
    assert set(duplicates([a, again])) == {"k:3.1"}


def test_an_expletive_it_is_not_a_pronoun_opening() -> None:
    assert "pronoun_opening" not in codes("It is imperative to give epinephrine first in anaphylaxis.")
    assert "pronoun_opening" not in codes("It is unclear whether aspirin prevents preeclampsia in twins.")
    assert "pronoun_opening" in codes("It is the first-line drug for anaphylaxis.")
    assert "pronoun_opening" in codes("It causes a dry cough in some patients.")


# -- checks held to the source unit -------------------------------------------------------------


def test_negation_lost() -> None:
    source = "Drug M does not lower mortality."
    assert "negation_lost" in codes("Drug M lowers mortality.", ["Drug M"], source)
    assert "negation_lost" not in codes("Drug M does not lower mortality.", ["Drug M"], source)
    # a statement about another part of the sentence keeps no negation, and that is fine
    mixed = "Drug K lowers the risk of stroke, although it does not lower mortality."
    assert "negation_lost" not in codes(GOOD, ["Drug K"], mixed)
    # a post-cue ("is unnecessary") governs what precedes it
    unit = "Routine chest imaging is unnecessary in uncomplicated cellulitis."
    assert "negation_lost" in against("Routine chest imaging is needed in uncomplicated cellulitis.", unit)
    assert "negation_lost" not in against("Routine chest imaging is not needed in uncomplicated cellulitis.", unit)


def test_negation_added() -> None:
    unit = "Inhaled corticosteroids reduce exacerbations in asthma with eosinophilia."
    assert "negation_added" in against("Inhaled corticosteroids do not reduce exacerbations in asthma.", unit)
    assert "negation_added" not in against("Inhaled corticosteroids reduce exacerbations in asthma.", unit)
    negated = "Inhaled corticosteroids do not reduce mortality in stable COPD."
    assert "negation_added" not in against("Inhaled corticosteroids do not reduce mortality in COPD.", negated)


def test_direction_flip() -> None:
    unit = "Loop diuretics increase urinary calcium excretion, whereas thiazides decrease it."
    assert "direction_flip" in against("Loop diuretics decrease urinary calcium excretion.", unit)
    assert "direction_flip" not in against("Loop diuretics increase urinary calcium excretion.", unit)
    assert "direction_flip" not in against("Thiazides decrease urinary calcium excretion.", unit)
    test = "A negative D-dimer excludes venous thromboembolism when the pretest probability is low."
    assert "direction_flip" in against("A negative D-dimer confirms venous thromboembolism at low probability.", test)
    assert "direction_flip" not in against(
        "A negative D-dimer rules out venous thromboembolism at low probability.", test
    )
    # a comparator before a number is the comparator check's business, not a direction word
    cutoff = "Treatment is advised when the platelet count is below 20,000/μL."
    assert "direction_flip" not in against("Platelet transfusion is advised at a count less than 20,000/μL.", cutoff)


def test_swapped_term() -> None:
    unit = "Benralizumab reduces exacerbations in severe eosinophilic asthma."
    assert "swapped_term" in against("Mepolizumab reduces exacerbations in severe eosinophilic asthma.", unit)
    assert "swapped_term" not in against("Benralizumab lowers exacerbation rates in severe eosinophilic asthma.", unit)
    route = "Intravenous acyclovir is given for herpes simplex encephalitis."
    assert "swapped_term" in against("Oral acyclovir is given for herpes simplex encephalitis.", route)
    assert "swapped_term" not in against("Acyclovir is given intravenously for herpes simplex encephalitis.", route)
    lab = "Hyperkalemia with ECG changes is treated first with calcium gluconate."
    assert "swapped_term" in against("Hypokalemia with ECG changes is treated first with calcium gluconate.", lab)
    # an abbreviation the question spells out is the same term
    spelled = "Chronic kidney disease (CKD) raises the risk of hyperkalemia with spironolactone."
    assert "swapped_term" not in against("CKD raises the risk of hyperkalemia with spironolactone.", spelled)


def test_dropped_hedge() -> None:
    unit = "Giant cell arteritis usually occurs after age 50 and typically causes new headache."
    assert "dropped_hedge" in against("Giant cell arteritis occurs after age 50.", unit)
    assert "dropped_hedge" not in against("Giant cell arteritis typically occurs after age 50.", unit)
    assert "dropped_hedge" not in against("Giant cell arteritis usually occurs after age 50.", unit)
    may = "Amiodarone may cause hypothyroidism or hyperthyroidism."
    assert "dropped_hedge" in against("Amiodarone causes hypothyroidism.", may)
    assert "dropped_hedge" not in against("Amiodarone can cause hypothyroidism.", may)
    # a superlative is no hedge: "the most appropriate" says nothing about how often
    assert "dropped_hedge" not in against(
        "Lumbar puncture is not needed.", "Lumbar puncture is the most invasive test."
    )


def test_subject_less() -> None:
    before = "Bullous pemphigoid is an autoimmune blistering disease of older adults."
    found = check(
        Statement(statement="The typical lesion is a tense bulla on urticarial skin.", id="c:1.1", source="critique"),
        SourceUnit("The typical lesion is a tense bulla on urticarial skin.", previous=before),
        before,
    )
    (subject,) = [f for f in found if f.code == "subject_less"]
    assert subject.severity == "warning" and "Bullous pemphigoid" in subject.message
    unit = "The typical lesion is a tense bulla on urticarial skin."
    for text in (
        "The typical lesion is a tense bulla on urticarial skin.",
        "The disorder spares the mucous membranes in most patients.",
        "Treatment starts with a potent topical corticosteroid.",
        "Usually presents with itching before blisters appear.",
    ):
        assert "subject_less" in against(text, unit, before), text
    for text in (
        "The typical lesion of bullous pemphigoid is a tense bulla.",
        "Bullous pemphigoid presents with tense bullae on urticarial skin.",
        "Treatment of bullous pemphigoid starts with a potent topical corticosteroid.",
        "The preferred treatment is clobetasol for localized bullous pemphigoid.",
        "The medication list should be reviewed for dipeptidyl peptidase-4 inhibitors.",
    ):
        assert "subject_less" not in against(text, unit, before), text


FAITHFULNESS = {"negation_lost", "negation_added", "direction_flip", "swapped_term", "dropped_hedge"}
FAITHFULNESS |= {"number_not_in_unit", "number_not_in_source", "unit_not_in_source", "comparator_not_in_source"}
# (source sentence, a faithful rewording a model might write): none of the faithfulness checks may fire
REWORDINGS = [
    (
        "Tenecteplase is given to patients without a history of intracranial hemorrhage.",
        "Tenecteplase is given unless there is a history of intracranial hemorrhage.",
    ),
    (
        "Lumbar puncture is unnecessary in a febrile infant with a clear urinary source.",
        "A febrile infant with a clear urinary source does not need a lumbar puncture.",
    ),
    (
        "Oral vancomycin is not absorbed from the gut and has no role in treating bacteremia.",
        "Oral vancomycin has no role in bacteremia because it is not absorbed from the gut.",
    ),
    ("Short regimens are more often completed and less toxic.", "Short regimens are completed more reliably."),
    (
        "Rapid lowering of blood pressure in acute stroke can cause infarct extension.",
        "In acute stroke, blood pressure is lowered gradually to avoid infarct extension.",
    ),
    (
        "Severely symptomatic hypocalcemia is treated with intravenous calcium gluconate.",
        "Severe symptomatic hypocalcemia is treated with intravenous calcium gluconate.",
    ),
    (
        "Drug Q showed no survival benefit and was associated with more bleeding.",
        "Drug Q did not lower mortality and increased bleeding.",
    ),
    (
        "Gastrointestinal bleeding is less frequent with apixaban than with warfarin.",
        "Apixaban causes less gastrointestinal hemorrhage than warfarin.",
    ),
    (
        "Potassium replacement should be limited to 10 mEq/h through a peripheral line.",
        "Through a peripheral line, potassium is replaced at no more than 10 mEq/h.",
    ),
    (
        "A ferritin level ≥30–45 ng/mL argues against iron deficiency.",
        "A ferritin level of 30–45 ng/mL or more argues against iron deficiency.",
    ),
    (
        "Serum magnesium should be measured in two of three patients with refractory hypokalemia.",
        "Serum magnesium should be measured in 2 of 3 patients with refractory hypokalemia.",
    ),
    (
        "Haemorrhage into the adrenal glands may follow meningococcal sepsis.",
        "Hemorrhage into the adrenal glands may follow meningococcal sepsis.",
    ),
]


@pytest.mark.parametrize(("source", "rewording"), REWORDINGS)
def test_faithful_rewordings_raise_nothing(source: str, rewording: str) -> None:
    assert not FAITHFULNESS & against(rewording, source)


def _parsed() -> ParsedQuestion:
    table = ParsedTable(
        file="gitab99101.html",
        kind="clinical",
        caption="Rockall thresholds (score 0-2 low risk)",
        header_rows=[["Finding", "Points"]],
        rows=[["Age 60-79 years", "1"], ["Systolic pressure <100 mm Hg", "2"]],
        sections=["", ""],
        footnotes=["A score of 0 to 2 after endoscopy allows early discharge."],
    )
    return ParsedQuestion(
        qid="gimcq99101",
        system="gi",
        document={},
        objective="Risk-stratify upper gastrointestinal bleeding.",
        critique=[
            "Variceal bleeding is treated with octreotide for 5 days.",
            "Ceftriaxone 1 g daily is given for up to 7 days in cirrhosis.",
        ],
        key_points=["Endoscopy within 12 hours is advised for suspected variceal bleeding."],
        tables=[table],
        skipped_tables=[],
    )


def _unit_codes(text: str, source: str, index: int, parsed: ParsedQuestion) -> set[str]:
    prefix = {"critique": "c:", "key_point": "k:", "table": "t:gitab99101:"}[source]
    s = Statement(
        statement=text,
        id=f"{prefix}00000000.1",
        source=source,  # type: ignore[arg-type]
        table_source="gitab99101.html" if source == "table" else None,
        source_index=index,
        cloze_candidates=[text.split()[0]],
    )
    return {f.code for f in check(s, source_unit(s, parsed), all_source_text(parsed))}


def test_numbers_are_held_to_the_statements_own_unit() -> None:
    parsed = _parsed()
    # the 7 days belong to ceftriaxone (sentence 1), not to octreotide (sentence 0)
    assert "number_not_in_unit" in _unit_codes(
        "Octreotide is given for 7 days in variceal bleeding.", "critique", 0, parsed
    )
    assert "number_not_in_unit" not in _unit_codes("Octreotide is given for 5 days.", "critique", 0, parsed)
    assert "number_not_in_source" in _unit_codes("Octreotide is given for 9 days.", "critique", 0, parsed)
    assert "number_not_in_unit" in _unit_codes("Endoscopy within 7 hours is advised.", "key_point", 0, parsed)
    assert "number_not_in_unit" not in _unit_codes("Endoscopy within 12 hours is advised.", "key_point", 0, parsed)
    # a table row is read with its caption and labels; a footnote is a unit of its own
    row = "A systolic pressure <100 mm Hg scores 2 points, and 0-2 points is low risk."
    assert not {"number_not_in_unit", "number_not_in_source"} & _unit_codes(row, "table", 1, parsed)
    pressure = "Age 60-79 years with a pressure <100 mm Hg scores 1 point."
    assert "number_not_in_unit" in _unit_codes(pressure, "table", 0, parsed)
    assert "number_not_in_unit" not in _unit_codes("A score of 0 to 2 allows early discharge.", "table", 2, parsed)
    # a statement whose unit cannot be found is held to the whole question, as before
    lost = Statement(statement="Ceftriaxone is given for 5 days.", id="c:ffffffff.1", source="critique")
    assert "number_not_in_unit" not in {f.code for f in check(lost, "", all_source_text(parsed))}


def test_cloze_checks() -> None:
    assert "cloze_missing" in codes(GOOD, [])
    assert "cloze_missing" not in codes(GOOD, ["Drug K"])
    assert "cloze_not_verbatim" in codes(GOOD, ["drug K"])
    assert "cloze_not_verbatim" not in codes(GOOD, ["Drug K", "atrial fibrillation"])
    assert "cloze_invalid" in codes(GOOD, [GOOD])
    assert "cloze_invalid" in codes(GOOD, ["the"])
    assert "cloze_invalid" in codes(GOOD, ["atrial fibrillation", "fibrillation"])
    assert "cloze_invalid" not in codes(GOOD, ["Drug K", "stroke"])


def test_duplicates() -> None:
    a = Statement(statement=GOOD, id="c00.1", source="critique")
    b = Statement(statement="In atrial fibrillation, Drug K lowers the risk of stroke.", id="k00.1", source="key_point")
    c = Statement(statement="Drug M does not lower mortality.", id="c02.1", source="critique")
    found = duplicates([a, b, c])
    assert set(found) == {"k00.1"} and found["k00.1"].code == "duplicate" and "c00.1" in found["k00.1"].message
    assert duplicates([a, c]) == {}
    assert similarity(GOOD, GOOD.upper()) == 1.0


def test_a_good_statement_has_no_finding_and_severities_are_fixed() -> None:
    assert codes(GOOD, ["Drug K", "atrial fibrillation"]) == set()
    s = Statement(statement="In this patient it is 9 mg.", id="c00.1", source="critique")
    found = check(s, "", SOURCE)
    assert {f.code for f in found} == {"cloze_missing", "case_specific", "number_not_in_source"}
    for f in found:
        assert f.severity == ("warning" if f.code in WARNING_CODES else "error")
    assert not set(ERROR_CODES) & set(WARNING_CODES)


def _table_codes(text: str, row: int, everything: str = "") -> set[str]:
    """The codes for `text` held to row `row` of a small table of preferred and alternative
    agents (a row is read with its caption and column labels; row 2 is the footnote)."""
    table = ParsedTable(
        file="nptab99101.html",
        kind="clinical",
        caption="Preferred Agents and Criteria in Chronic Kidney Disease",
        header_rows=[["Condition", "Preferred Agent", "Alternative Agent"]],
        rows=[["CKD with albuminuria", "ACE inhibitor", "ARB"], ["G2", "60-89 mL/min/1.73 m²", "eGFR"]],
        sections=["", ""],
        footnotes=["Chronic kidney disease requires a GFR <60 mL/min/1.73 m² for >3 months."],
    )
    parsed = ParsedQuestion(
        qid="npmcq99101",
        system="np",
        document={},
        objective="Treat chronic kidney disease (CKD).",
        critique=[
            "The glomerular filtration rate (GFR) falls with age.",
            "The estimated glomerular filtration rate (eGFR) is used to stage CKD.",
        ],
        key_points=[],
        tables=[table],
        skipped_tables=[],
    )
    s = Statement(
        statement=text,
        id="t:nptab99101:00000000.1",
        source="table",
        table_source="nptab99101.html",
        source_index=row,
        cloze_candidates=[text.split()[0]],
    )
    return {f.code for f in check(s, source_unit(s, parsed), everything or all_source_text(parsed))}


def test_negation_added_reads_a_table_rows_caption_and_labels() -> None:
    # "preferred" is only in the column label, "criteria" only in the caption (and plural)
    assert "negation_added" in _table_codes("An ACE inhibitor is not the preferred agent in CKD with albuminuria.", 0)
    assert "negation_added" not in _table_codes("An ACE inhibitor is the preferred agent in CKD with albuminuria.", 0)
    assert "negation_added" in _table_codes("G2 is not a criterion in chronic kidney disease.", 1)
    assert "negation_added" not in _table_codes("G2 is a criterion in chronic kidney disease.", 1)


def test_negation_added_expands_the_questions_abbreviations() -> None:
    # the footnote says "GFR"; the statement spells it out
    assert "negation_added" in _table_codes(
        "Chronic kidney disease does not require a glomerular filtration rate <60 mL/min/1.73 m² for >3 months.", 2
    )
    assert "negation_added" not in _table_codes(
        "Chronic kidney disease requires a glomerular filtration rate <60 mL/min/1.73 m² for >3 months.", 2
    )
    # a verb the row never says ("defined") does not hide the negation of what it does say
    assert "negation_added" in _table_codes("G2 is not defined by an estimated glomerular filtration rate 60-89.", 1)
    assert "negation_added" not in _table_codes("G2 is defined by an estimated glomerular filtration rate 60-89.", 1)


def test_negation_added_far_into_a_list_and_its_near_misses() -> None:
    unit = "Diabetes is diagnosed by a hemoglobin A1c ≥6.5%, a fasting plasma glucose ≥126 mg/dL, or an OGTT."
    assert "negation_added" in against("Diabetes is not diagnosed by a fasting plasma glucose ≥126 mg/dL.", unit)
    assert "negation_added" not in against("Diabetes is diagnosed by a fasting plasma glucose ≥126 mg/dL.", unit)
    # the unit negates the same words with another verb
    ppi = "A proton pump inhibitor reduces high-risk stigmata at endoscopy, although it does not lower mortality."
    assert "negation_added" not in against(
        "A proton pump inhibitor reduces stigmata but does not reduce mortality.", ppi
    )
    # "should not exceed 10" is a comparator ("limited to 10"), not a negation
    limit = "Correction should be limited to 8-10 mEq/L in the first 24 hours."
    assert "negation_added" not in against("Correction should not exceed 8-10 mEq/L in the first 24 hours.", limit)
    assert "negation_added" in against("Correction should not be limited to 8-10 mEq/L in the first 24 hours.", limit)


def test_swapped_abbreviation_in_parentheses() -> None:
    unit = "Intravenous vancomycin has no role in treating CDI."
    everything = f"Clostridioides difficile infection (CDI) is common. {unit}"

    def swapped(text: str) -> bool:
        s = Statement(statement=text, cloze_candidates=["vancomycin"], id="c:00000000.1", source="critique")
        return "swapped_term" in {f.code for f in check(s, SourceUnit(unit), everything)}

    assert swapped("Intravenous vancomycin has no role in treating Clostridioides difficile infection (CMV).")
    assert not swapped("Intravenous vancomycin has no role in treating Clostridioides difficile infection (CDI).")


def test_swapped_term_beside_the_units_neighbour() -> None:
    # the unit's term ("adults") is elsewhere in the statement too, but not beside "stable"
    unit = (
        "Hospitalized adults, including those in intensive care; <7 g/dL \n Thresholds in Hemodynamically Stable Adults"
    )
    assert "swapped_term" in against(
        "In hemodynamically stable children, the threshold is <7 g/dL in hospitalized adults, including those in "
        "intensive care.",
        unit,
    )
    assert "swapped_term" not in against(
        "In hemodynamically stable adults, the threshold is <7 g/dL in hospitalized adults and children.", unit
    )
    # naming the unit's term and another across a clause break is no swap
    both = "Without unequivocal hyperglycemia, two abnormal results are needed."
    assert "swapped_term" not in against(
        "When hyperglycemia is not unequivocal, diabetes requires two abnormal results.", both
    )


def test_a_partly_spelled_out_abbreviation_is_no_new_term() -> None:
    unit = "A restrictive threshold is recommended for stable patients with UGIB and no cardiovascular disease."
    everything = f"Upper gastrointestinal bleeding (UGIB) is common. {unit}"

    def swapped(text: str) -> bool:
        s = Statement(statement=text, cloze_candidates=["restrictive"], id="c:00000000.1", source="critique")
        return "swapped_term" in {f.code for f in check(s, SourceUnit(unit), everything)}

    # "upper GI bleeding" spells out UGIB with "GI" kept; "lower GI bleeding" does not
    assert not swapped(
        "A restrictive threshold is advised for patients with upper GI bleeding who have no cardiovascular disease."
    )
    assert swapped(
        "A restrictive threshold is advised for patients with lower GI bleeding who have no cardiovascular disease."
    )


def test_dropped_hedge_across_a_defined_abbreviation() -> None:
    unit = "Levothyroxine is generally recommended for subclinical hypothyroidism when TSH is ≥10 μU/mL."
    assert "dropped_hedge" in against(
        "Levothyroxine is recommended for subclinical hypothyroidism when thyroid-stimulating hormone (TSH) "
        "is ≥10 μU/mL.",
        unit,
    )
    assert "dropped_hedge" not in against(
        "Levothyroxine is generally recommended for subclinical hypothyroidism when thyroid-stimulating hormone (TSH) "
        "is ≥10 μU/mL.",
        unit,
    )


def test_a_repeat_is_never_the_statement_a_later_one_repeats() -> None:
    a, b, c = (
        Statement(statement=text, id=f"c:{k}.1", source="critique")
        for k, text in enumerate(
            [
                "Drug K lowers the risk of stroke.",
                "Drug K markedly lowers the risk of stroke.",
                "Today drug K markedly lowers the risk of stroke.",
            ]
        )
    )
    # c restates b (6 of 7 words) but not a (5 of 7): b repeats a, so c is held to a only
    assert restates(c.statement, b.statement) is not None and restates(c.statement, a.statement) is None
    found = duplicates([a, b, c])
    assert set(found) == {"c:1.1"} and "c:0.1" in found["c:1.1"].message
    assert set(duplicates([b, c])) == {"c:2.1"}


def test_statements_without_a_content_word_repeat_each_other_only() -> None:
    empty = [Statement(statement=t, id=f"c:{k}.1", source="critique") for k, t in enumerate(["It is.", "The", GOOD])]
    found = duplicates(empty)
    assert set(found) == {"c:1.1"} and "repeats statement c:0.1" in found["c:1.1"].message


def test_a_list_of_semicolon_items_is_counted_like_the_regex() -> None:
    codes_found = codes("Drug K lowers stroke; Drug M lowers mortality; Drug N, Drug O lower both.")
    assert "list_tested" in codes_found
    s = Statement(
        statement="Give Drug K; Drug M; Drug N, or Drug O.", cloze_candidates=["Drug K"], id="c:1.1", source="critique"
    )
    message = next(f.message for f in check(s, "", SOURCE) if f.code == "list_tested")
    assert message == "a list of 3 items in one statement"  # "Drug K; Drug M; Drug N, or Drug O": 2 semicolons
