"""Statement text normalisation: comparators, units, dashes, spacing, the final period.

It runs on a statement's text *before* cloze candidates are chosen (and again on a repaired
text before its candidates are re-chosen), never after, so it cannot break a verbatim
candidate. It is idempotent: normalising normalised text changes nothing.
"""

from __future__ import annotations

import re

_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\s+"), " "),
    (re.compile("µ"), "μ"),  # micro sign -> Greek mu, the form the bank uses
    (re.compile(r"(?:>=|=>)"), "≥"),
    (re.compile(r"(?:<=|=<)"), "≤"),
    (re.compile(r"(?<![\w<>=])([≥≤<>])\s+(?=\d)"), r"\1"),  # "≥ 30" -> "≥30"
    (re.compile(r"(?<=\d) ?- ?(?=\d)"), "–"),  # numeric range "2-4" -> "2–4"
    (re.compile(r"(?<=\d) (?=%)"), ""),  # "30 %" -> "30%"
    (re.compile(r"\bmmHg\b"), "mm Hg"),
    (re.compile(r"\bm ²"), "m²"),
    (re.compile(r"\s+([,.;:!?%)\]])"), r"\1"),
    (re.compile(r"([(\[])\s+"), r"\1"),
]
_TRAILING = re.compile(r"[\s,;:]+$")


def normalise(text: str) -> str:
    """Whitespace collapsed, comparators and micro signs unified, numeric ranges with an en
    dash, no space before punctuation, one final period. Idempotent."""
    for _ in range(10):  # rules can expose each other's matches: repeat up to a fixpoint
        before = text
        for pattern, repl in _RULES:
            text = pattern.sub(repl, text)
        text = _TRAILING.sub("", text.strip())
        if text == before:
            break
    if text and text[-1] not in ".?!":
        text += "."
    return text
