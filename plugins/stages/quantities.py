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
        mOsm/kg mL/min mL/kg mL/h mL/d L/min L mL dL U/L IU/L mU/L μU/mL IU U mg/g mg/mg mg/kg/d mg/kg g/kg/d
        g/kg kg/m² kg g mg μg ng mcg mg/d g/d /μL /mm³ /min /h /d bpm years year yr months month mo weeks week
        wk days day d hours hour h minutes minute min seconds s cm mm μm m °C °F mm/h points point beats/min
        breaths/min""".split(),
        "mL/min/1.73 m²",
        "mm Hg",
        "cm H2O",
        "mOsm/kg H2O",
        "× 10⁹/L",
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
QUANTITY = re.compile(
    rf"(?:(?P<cmp>{_PREFIX})\s?)?(?<![\w.])(?P<a>{NUMBER})"
    rf"(?:\s?(?:–|—|-|to)\s?(?P<b>{NUMBER}))?"
    rf"(?:\s?(?P<unit>{UNIT}))?(?:\s(?P<suffix>{_SUFFIX})\b)?",
    re.I,
)


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


@lru_cache(maxsize=4096)
def quantities(text: str) -> tuple[Quantity, ...]:
    """Every number in `text`, with the comparator and unit that go with it.

    Cached: validation asks this of the same question source once per statement."""
    out = []
    for m in QUANTITY.finditer(text.replace("µ", "μ")):
        cmp_word = (m.group("cmp") or "").lower()
        comparator = _PREFIX_WORDS.get(cmp_word) or _SUFFIX_WORDS.get((m.group("suffix") or "").lower())
        unit = m.group("unit")
        for key in ("a", "b"):
            if m.group(key):
                out.append(
                    Quantity(
                        value=canonical_number(m.group(key)),
                        comparator=comparator if key == "a" or m.group("suffix") else None,
                        unit=unit,
                        text=m.group(0).strip(),
                        start=m.start(),
                        end=m.end(),
                    )
                )
    return tuple(out)


def quantity_spans(text: str) -> list[str]:
    """The quantity phrases of `text` as written ('≥30 mg/g', '2–4 weeks'): cloze terms."""
    seen: list[str] = []
    for m in QUANTITY.finditer(text):
        phrase = m.group(0).strip()
        if phrase and phrase not in seen and (m.group("unit") or m.group("cmp") or m.group("b") or m.group("suffix")):
            seen.append(phrase)
    return seen
