"""Normalisation and cloze-candidate selection: unit cases and hypothesis properties
(normalise is idempotent; a candidate chosen against the normalised text is never broken,
because nothing normalises after selection)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mksap.contracts.statements import Statement
from mksap_plugins.stages.cloze import candidate_range, finish, ranked_terms, select_candidates
from mksap_plugins.stages.normalise import normalise


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Keep  the  dose >= 30 mg ", "Keep the dose ≥30 mg."),
        ("Target <= 130/80 mmHg ;", "Target ≤130/80 mm Hg."),
        ("Recheck in 2-4 weeks", "Recheck in 2–4 weeks."),
        ("Use 5 µg/dL ( low )", "Use 5 μg/dL (low)."),
        ("eGFR ≥ 20 mL/min/1.73 m ² .", "eGFR ≥20 mL/min/1.73 m²."),
        ("A rise of 30 % is fine", "A rise of 30% is fine."),
        ("Is it safe?", "Is it safe?"),
        ("", ""),
    ],
)
def test_normalise(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


_TEXT = st.text(alphabet=list("ab Ab1 2.-–><=≥µμ%,;:()[]m²\nHgm"), max_size=60)


@settings(max_examples=1000, deadline=None)
@given(_TEXT)
def test_normalise_is_idempotent(text: str) -> None:
    once = normalise(text)
    assert normalise(once) == once


@settings(max_examples=500, deadline=None)
@given(_TEXT, st.lists(st.tuples(st.integers(0, 60), st.integers(1, 20)), max_size=6))
def test_candidates_chosen_after_normalising_stay_verbatim(text: str, cuts: list[tuple[int, int]]) -> None:
    final = normalise(text)
    proposed = [final[i : i + n] for i, n in cuts]
    chosen = select_candidates(final, proposed)
    assert all(c and c in final for c in chosen)
    assert normalise(final) == final  # re-normalising (validate, repair) cannot break them
    spans = sorted((final.find(c), final.find(c) + len(c)) for c in chosen)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))


def test_select_candidates_rules() -> None:
    s = "Apixaban is preferred over warfarin in nonvalvular atrial fibrillation."
    assert select_candidates(s, [s, s.rstrip(".")]) == []  # never the whole statement
    assert select_candidates(s, ["is", "in the"]) == []  # never only common words
    assert select_candidates(s, ["Warfarin", "apixaban"]) == []  # verbatim, same case
    assert select_candidates(s, ["atrial fibrillation", "nonvalvular atrial fibrillation"]) == ["atrial fibrillation"]
    assert select_candidates(s, ["warf", "arin"]) == []  # never cuts a word
    assert select_candidates(s, ["Apixaban", "warfarin", "atrial fibrillation"], limit=2) == ["Apixaban", "warfarin"]
    listed = "Risk factors are age, diabetes, and hypertension in adults over sixty."
    assert select_candidates(listed, ["age, diabetes, and hypertension", "diabetes"]) == ["diabetes"]


def test_candidate_range_shrinks_for_short_statements() -> None:
    assert candidate_range("Aspirin helps.") == (1, 1)
    assert candidate_range("Apixaban is preferred over warfarin in most adults.") == (1, 2)
    assert candidate_range(" ".join(["word"] * 15)) == (2, 3)
    assert candidate_range(" ".join(["word"] * 35)) == (2, 5)


def test_finish_tops_up_from_the_nlp_terms() -> None:
    s = Statement(
        statement="Oral anticoagulation is recommended when the stroke risk score is ≥2 in adult men.",
        id="c01.1",
        source="critique",
    )
    done = finish(s, ["not in the text"])
    assert 2 <= len(done.cloze_candidates) <= 3 and all(c in done.statement for c in done.cloze_candidates)
    assert "≥2" in ranked_terms(s.statement)[:2]
