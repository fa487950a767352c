"""Numbers with their comparators and units ("≥30 mg/g", "2–4 weeks", "at least 14 days").

Shared by the nlp stage (candidate terms), the normaliser and the faithfulness checks, so that
all three read a quantity the same way. Comparators are compared in a canonical form: "at
least 3", "3 or more" and "≥3" are the same claim.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_UNITS = sorted(
    [
        *"""% mg/dL g/dL μg/dL ng/dL mg/L g/L μg/L ng/mL pg/mL μg/mL mEq/L mmol/L μmol/L nmol/L pmol/L mmol/mol
        mOsm/kg mOsm/L mL/min mL/kg mL/kg/h mL/h mL/d mL/s L/min L/d L mL dL U/L IU/L IU/mL mU/L μU/mL IU U U/kg
        units mg/g mg/mg mg/mmol mg/kg/d mg/kg/day mg/kg g/kg/d g/kg kg/m² kg g mg μg ng mcg mg/d g/d mmol/d mEq/d
        mg/24 h g/24 h μg/kg/min mcg/kg/min kcal kcal/d kcal/kg /μL /mm³ /hpf /min /h /d cells/μL copies/mL bpm
        years year yr y months month mo weeks week wk days day d hours hour h hr minutes minute min seconds second
        s sec ms msec milliseconds cm mm μm nm m mm³ cm³ °C °F mm/h points point beats/min breaths/min HU
        ounces ounce oz lb lbs pounds pound ft feet drinks drink pack-years Gy mSv""".split(),
        "mL/min/1.73 m²",
        "mm Hg",
        "cm H2O",
        "cm H₂O",
        "mOsm/kg H2O",
        "mOsm/kg H₂O",
        "× 10⁹/L",
        "× 10³/μL",
        "× 10⁶/μL",
        "beats per minute",
        "breaths per minute",
        "drinks per week",
        "drinks per day",
    ],
    key=len,
    reverse=True,
)
UNIT = "(?:" + "|".join(re.escape(u) for u in _UNITS) + r")(?![A-Za-z0-9])"
NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_PREFIX_WORDS = {
    "greater than or equal to": "≥",
    "more than or equal to": "≥",
    "less than or equal to": "≤",
    "greater than": ">",
    "more than": ">",
    "higher than": ">",
    "above": ">",
    "exceeding": ">",
    "in excess of": ">",
    "less than": "<",
    "fewer than": "<",
    "lower than": "<",
    "below": "<",
    "younger than": "<",
    "older than": ">",
    "at least": "≥",
    "no less than": "≥",
    "at most": "≤",
    "no more than": "≤",
    "up to": "≤",
    "≥": "≥",
    ">=": "≥",
    "≤": "≤",
    "<=": "≤",
    ">": ">",
    "<": "<",
}
_SUFFIX_WORDS = {
    "or more": "≥",
    "or higher": "≥",
    "or greater": "≥",
    "or above": "≥",
    "or less": "≤",
    "or lower": "≤",
    "or fewer": "≤",
    "or below": "≤",
}
_PREFIX = "|".join(re.escape(w) for w in sorted(_PREFIX_WORDS, key=len, reverse=True))
_SUFFIX = "|".join(re.escape(w) for w in sorted(_SUFFIX_WORDS, key=len, reverse=True))
_SEP = r"\s?(?:–|—|-|to)\s?"
_NOT_RANGE_ON = r"(?!\s?[–—-]\s?\d)"  # "2 weeks to 4–6 weeks": "4" starts a range of its own
QUANTITY = re.compile(
    rf"(?:(?P<cmp>{_PREFIX})\s?)?(?<![\w.])(?P<a>{NUMBER})(?:/(?P<slash>{NUMBER}))?"
    rf"(?:\s?(?P<ua>{UNIT}){_SEP}(?P<b2>{NUMBER}){_NOT_RANGE_ON}\s?(?P<ub>{UNIT})"  # "20% to 30%"
    rf"|{_SEP}(?P<b>{NUMBER}){_NOT_RANGE_ON}(?:\s?(?P<unit>{UNIT}))?"  # "2–4 weeks"
    rf"|(?:\s?(?P<unit1>{UNIT}))?)"  # "30 mg/g", "140/90 mm Hg"
    rf"(?:\s(?P<suffix>{_SUFFIX})\b)?",
    re.I,
)
#: A quantity restated in other units right after it, in brackets: "≥200 mg/dL (11.1 mmol/L)".
_PAIRED_OPEN = re.compile(r"\s?[(\[]")


@dataclass(frozen=True)
class Quantity:
    """One number as the text states it. A range gives two quantities sharing the unit."""

    value: str
    comparator: str | None
    unit: str | None
    text: str
    start: int
    end: int


def canonical_number(value: str) -> str:
    """'11,200' -> '11200'; '7.0' stays '7.0' (the text's precision is part of the claim)."""
    return value.replace(",", "")


def canonical_unit(unit: str | None) -> str | None:
    if unit is None:
        return None
    return unit.replace("µ", "μ").replace("mcg", "μg").lower().replace(" ", "")


def _unit_of(m: re.Match[str], key: str) -> str | None:
    if key == "a":
        return m.group("ua") or m.group("ub") or m.group("unit") or m.group("unit1")
    return m.group("ub") or m.group("unit") or m.group("unit1")


def _has_range(m: re.Match[str]) -> bool:
    return bool(m.group("b") or m.group("b2"))


@lru_cache(maxsize=4096)
def quantities(text: str) -> tuple[Quantity, ...]:
    """Every number in `text`, with the comparator and unit that go with it. A range ("2–4
    weeks", "20% to 30%") and a slash value ("140/90 mm Hg") give one quantity per number.

    Cached: validation asks this of the same question source once per statement."""
    out = []
    for m in QUANTITY.finditer(text.replace("µ", "μ")):
        cmp_word = (m.group("cmp") or "").lower()
        suffix = (m.group("suffix") or "").lower()
        comparator = _PREFIX_WORDS.get(cmp_word) or _SUFFIX_WORDS.get(suffix)
        for key in ("a", "slash", "b", "b2"):
            if m.group(key):
                first = key in ("a", "slash")
                out.append(
                    Quantity(
                        value=canonical_number(m.group(key)),
                        comparator=comparator if first or suffix else None,
                        unit=_unit_of(m, "a" if key in ("a", "slash") else "b"),
                        text=m.group(0).strip(),
                        start=m.start(),
                        end=m.end(),
                    )
                )
    return tuple(out)


def _spans(text: str) -> list[tuple[int, int, re.Match[str]]]:
    """(start, end, match) of each quantity phrase that is more than a bare number."""
    found = []
    for m in QUANTITY.finditer(text):
        phrase = m.group(0)
        unit = m.group("ua") or m.group("ub") or m.group("unit") or m.group("unit1")
        if phrase.strip() and (unit or m.group("cmp") or _has_range(m) or m.group("suffix") or m.group("slash")):
            start = m.start() + len(phrase) - len(phrase.lstrip())
            found.append((start, m.start() + len(phrase.rstrip()), m))
    return found


def quantity_spans(text: str) -> list[str]:
    """The quantity phrases of `text` as written ('≥30 mg/g', '2–4 weeks', '<140/90 mm Hg'):
    cloze terms."""
    seen: list[str] = []
    for start, end, _ in _spans(text):
        phrase = text[start:end]
        if phrase not in seen:
            seen.append(phrase)
    return seen


def quantity_ranges(text: str) -> list[tuple[int, int]]:
    """Where the quantity phrases of `text` are (start, end): a cloze candidate must take a
    phrase whole or leave it alone, never cut a number from its comparator or unit."""
    return [(start, end) for start, end, _ in _spans(text)]


def paired_quantities(text: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Quantities restated in other units in brackets right after them ("≥200 mg/dL (11.1
    mmol/L)", "<7 g/dL (70 g/L)", "≥0.4 ng/mL [0.4 μg/L]"): ((start, end) of the first,
    (start, end) of the restatement). The two are one fact, so they are hidden together."""
    spans = _spans(text)
    pairs = []
    for (s1, e1, _), (s2, e2, m2) in zip(spans, spans[1:], strict=False):
        gap = text[e1:s2]
        closing = text[e2 : e2 + 1]
        unit2 = m2.group("ua") or m2.group("ub") or m2.group("unit") or m2.group("unit1")
        if unit2 and _PAIRED_OPEN.fullmatch(gap) and closing in ")]":
            pairs.append(((s1, e1), (s2, e2)))
    return pairs
