"""Deterministic checks on one statement. Each finding has a code and a severity."""

from __future__ import annotations

import re

from mksap_plugins.stages.keypoints import similarity
from mksap_plugins.stages.nlp_rules import NEGATION_CUES

from mksap.statements import Finding, Statement

MAX_WORDS = 35
_CASE = re.compile(r"\b(this|the|our) (patient|woman|man|case|vignette)\b|\b(she|he|her|his|him)\b|\d+-year-old", re.I)
_SOURCE_REF = re.compile(
    r"\boption [A-E]\b|\(option|\b(the|this) (critique|question|explanation|answer choice)\b|"
    r"\bcorrect answer\b|\bincorrect answer\b",
    re.I,
)
_PRONOUN_OPENING = re.compile(r"^(this|these|those|it|they|such|both|that)\b", re.I)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_NEGATION = re.compile(r"\b(" + "|".join(re.escape(c) for c in NEGATION_CUES) + r")\b", re.I)
_LIST = re.compile(r"[^,;]+,[^,;]+,\s*(?:and|or)\s")


def _f(code: str, severity: str, message: str) -> Finding:
    return Finding(code=code, severity=severity, message=message)  # type: ignore[arg-type]


def check(statement: Statement, source_text: str, all_sources: str) -> list[Finding]:
    """Findings for one statement. `source_text` is the sentence/row it came from (may be ''),
    `all_sources` everything the question says (numbers may come from anywhere in it)."""
    text = statement.statement
    findings: list[Finding] = []
    for cand in statement.cloze_candidates:
        if cand not in text:
            findings.append(_f("cloze_not_verbatim", "error", f"candidate {cand!r} is not in the statement"))
    n = len(statement.cloze_candidates)
    if n == 0:
        findings.append(_f("cloze_missing", "error", "no cloze candidate"))
    elif n == 1 and len(text.split()) > 12:
        findings.append(_f("cloze_few", "warning", "one cloze candidate in a long statement"))
    if m := _CASE.search(text):
        findings.append(_f("case_specific", "error", f"case-specific wording {m.group(0)!r}"))
    if m := _SOURCE_REF.search(text):
        findings.append(_f("source_reference", "error", f"refers to the source: {m.group(0)!r}"))
    if m := _PRONOUN_OPENING.match(text):
        findings.append(_f("pronoun_opening", "error", f"opens with {m.group(0)!r}, which needs context"))
    words = len(text.split())
    if words > MAX_WORDS:
        findings.append(_f("too_long", "warning", f"{words} words (more than {MAX_WORDS})"))
    if _LIST.search(text) and any(c in text for c in statement.cloze_candidates if "," in c):
        findings.append(_f("list_tested", "warning", "a list of 3+ items is tested in one cloze"))
    haystack = all_sources.replace(",", "")
    for num in _NUMBER.findall(text):
        if num.replace(",", "") not in haystack:
            findings.append(_f("number_not_in_source", "error", f"number {num} does not occur in the source"))
    if source_text and _NEGATION.search(source_text) and not _NEGATION.search(text):
        findings.append(_f("negation_lost", "warning", "the source sentence is negated, the statement is not"))
    return findings


def duplicates(statements: list[Statement], threshold: float = 0.8) -> dict[str, Finding]:
    """A finding for each statement that nearly repeats an earlier one."""
    found: dict[str, Finding] = {}
    for i, s in enumerate(statements):
        for earlier in statements[:i]:
            if earlier.id not in found and similarity(s.statement, earlier.statement) >= threshold:
                found[s.id] = _f("duplicate", "error", f"repeats statement {earlier.id}")
                break
    return found
