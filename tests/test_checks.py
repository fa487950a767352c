"""Each validation check, with a case that triggers it and a near miss that does not."""

from __future__ import annotations

import pytest

from mksap.contracts.statements import Statement
from mksap_plugins.stages.checks import ERROR_CODES, WARNING_CODES, check, duplicates, similarity

SOURCE = (
    "Drug K lowers the risk of stroke in atrial fibrillation. Anticoagulation is advised when the score is ≥2. "
    "Drug M does not lower mortality. The dose is 5 mg twice daily for 10 days, and the level should stay <7 g/dL."
)
GOOD = "Drug K lowers the risk of stroke in atrial fibrillation."


def codes(text: str, candidates: list[str] | None = None, source: str = "", everything: str = SOURCE) -> set[str]:
    s = Statement(
        statement=text,
        cloze_candidates=candidates if candidates is not None else ["Drug K"],
        id="c00.1",
        source="critique",
    )
    return {f.code for f in check(s, source, everything)}


# (code, statement that triggers it, near miss that does not); candidates default to ["Drug K"]
CASES = [
    ("case_specific", "In this patient, Drug K lowers the risk of stroke.", GOOD),
    ("case_specific", "Drug K lowers the risk of stroke in a 70-year-old.", GOOD),
    ("case_specific", "Drug K is useful, as noted above, for stroke.", GOOD),
    ("source_reference", "Drug K (Option B) lowers the risk of stroke.", GOOD),
    ("source_reference", "Drug K lowers the risk of stroke (Table: Stroke Prevention).", GOOD),
    ("pronoun_opening", "It lowers the risk of stroke when Drug K is used.", "Drug K lowers the risk; it is cheap."),
    ("number_not_in_source", "Drug K is given as 6 mg twice daily.", "Drug K is given as 5 mg twice daily."),
    ("unit_not_in_source", "Drug K is given as 5 g twice daily.", "Drug K is given as 5 mg twice daily."),
    ("comparator_not_in_source", "Drug K is advised when the score is >2.", "Drug K is advised when the score is ≥2."),
    ("comparator_not_in_source", "Drug K level should stay ≤7 g/dL.", "Drug K level should stay <7 g/dL."),
    ("too_long", "Drug K " + "lowers the risk of stroke and " * 7 + "helps.", GOOD),
    ("list_tested", "Drug K, Drug L, and Drug M lower the risk of stroke.", "Drug K and Drug M lower the stroke risk."),
]


@pytest.mark.parametrize(("code", "bad", "good"), CASES)
def test_each_wording_and_faithfulness_check(code: str, bad: str, good: str) -> None:
    assert code in codes(bad)
    assert code not in codes(good)


def test_negation_lost() -> None:
    source = "Drug M does not lower mortality."
    assert "negation_lost" in codes("Drug M lowers mortality.", ["Drug M"], source)
    assert "negation_lost" not in codes("Drug M does not lower mortality.", ["Drug M"], source)
    # a statement about another part of the sentence keeps no negation, and that is fine
    mixed = "Drug K lowers the risk of stroke, although it does not lower mortality."
    assert "negation_lost" not in codes(GOOD, ["Drug K"], mixed)


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
    for f in check(s, "", SOURCE):
        assert (
            f.severity == ("warning" if f.code in WARNING_CODES else "error") and f.code in ERROR_CODES + WARNING_CODES
        )
