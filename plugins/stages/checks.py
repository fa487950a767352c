"""Deterministic checks on statements. Each finding has a code and a severity.

Codes (severity): cloze_not_verbatim, cloze_missing, cloze_invalid, case_specific,
source_reference, pronoun_opening, number_not_in_source, unit_not_in_source,
comparator_not_in_source, negation_lost, duplicate (error); too_long, list_tested (warning).
"""

from __future__ import annotations

import re
from functools import lru_cache

from mksap.contracts.statements import Finding, Statement
from mksap_plugins.stages.nlp_rules import STOPWORDS
from mksap_plugins.stages.quantities import canonical_unit, quantities
from mksap_plugins.stages.wording import (
    CASE_SPECIFIC,
    DEICTIC,
    NEGATION_ANY,
    PRONOUN_OPENING,
    SOURCE_REFERENCE,
    negated_spans,
)

MAX_WORDS = 30
NEAR_DUPLICATE = 0.8
ERROR_CODES = (
    "cloze_not_verbatim", "cloze_missing", "cloze_invalid", "case_specific", "source_reference",
    "pronoun_opening", "number_not_in_source", "unit_not_in_source", "comparator_not_in_source",
    "negation_lost", "duplicate",
)  # fmt: skip
WARNING_CODES = ("too_long", "list_tested")
_LIST = re.compile(r"(?:[^,;:()]+,\s){2,}(?:and|or)\s[^,;:()]+|(?:[^;]+;\s){2,}[^;]+")
_TOKEN = re.compile(r"[a-z0-9]+")


def finding(code: str, message: str) -> Finding:
    """A finding with the severity its code has."""
    return Finding(code=code, severity="warning" if code in WARNING_CODES else "error", message=message)


def _stem(token: str) -> str:
    """A crude stem, so 'lowers', 'lowered' and 'lower' compare equal."""
    for suffix in ("ing", "ed"):
        if len(token) > 5 and token.endswith(suffix):
            return token[: -len(suffix)]
    return token[:-1] if len(token) > 3 and token.endswith("s") and not token.endswith("ss") else token


@lru_cache(maxsize=8192)
def content_tokens(text: str) -> frozenset[str]:
    """Content words (stop words dropped), crudely stemmed. Cached: duplicate detection
    compares every pair of a question's statements."""
    return frozenset(_stem(t) for t in _TOKEN.findall(text.lower()) if t not in STOPWORDS)


def similarity(a: str, b: str) -> float:
    """Jaccard overlap of content words: 1.0 for the same words in any order."""
    ta, tb = content_tokens(a), content_tokens(b)
    return len(ta & tb) / len(ta | tb) if ta | tb else 1.0


def badness(text: str) -> tuple[int, int]:
    """How far a statement is from the quality bar (lower is better): wording errors, then
    distance from ~15 words. Used to keep the better of two restatements."""
    errors = sum(bool(rx.search(text)) for rx in (CASE_SPECIFIC, DEICTIC, SOURCE_REFERENCE, PRONOUN_OPENING))
    return errors, abs(len(text.split()) - 15)


def cloze_findings(statement: Statement) -> list[Finding]:
    text = statement.statement
    found: list[Finding] = []
    if not statement.cloze_candidates:
        return [finding("cloze_missing", "no cloze candidate")]
    spans: list[tuple[int, int]] = []
    for cand in statement.cloze_candidates:
        start = text.find(cand) if cand else -1
        if start < 0:
            found.append(finding("cloze_not_verbatim", f"candidate {cand!r} is not in the statement"))
            continue
        if cand.strip(" .") == text.strip(" ."):
            found.append(finding("cloze_invalid", "a candidate is the whole statement"))
        elif all(w in STOPWORDS for w in _TOKEN.findall(cand.lower())):
            found.append(finding("cloze_invalid", f"candidate {cand!r} is only common words"))
        elif any(start < e and s < start + len(cand) for s, e in spans):
            found.append(finding("cloze_invalid", f"candidate {cand!r} overlaps another"))
        spans.append((start, start + len(cand)))
    return found


def wording_findings(text: str) -> list[Finding]:
    found = []
    if m := CASE_SPECIFIC.search(text) or DEICTIC.search(text):
        found.append(finding("case_specific", f"case-specific or deictic wording {m.group(0)!r}"))
    if m := SOURCE_REFERENCE.search(text):
        found.append(finding("source_reference", f"refers to the source: {m.group(0)!r}"))
    if m := PRONOUN_OPENING.match(text):
        found.append(finding("pronoun_opening", f"opens with {m.group(0)!r}, which needs another sentence"))
    words = len(text.split())
    if words > MAX_WORDS:
        found.append(finding("too_long", f"{words} words (more than {MAX_WORDS})"))
    if m := _LIST.search(text):
        items = max(m.group(0).count(",") + 1, m.group(0).count(";") + 1)
        found.append(finding("list_tested", f"a list of {items} items in one statement"))
    return found


def faithfulness_findings(text: str, all_sources: str) -> list[Finding]:
    """Numbers, units and comparators must occur (together) in the question's sources."""
    source = quantities(all_sources)
    values = {q.value for q in source}
    found = []
    for q in quantities(text):
        same = [s for s in source if s.value == q.value]
        if q.value not in values:
            found.append(finding("number_not_in_source", f"number {q.value} does not occur in the source"))
        elif q.unit and canonical_unit(q.unit) not in {canonical_unit(s.unit) for s in same}:
            found.append(finding("unit_not_in_source", f"'{q.value} {q.unit}' does not occur in the source"))
        elif q.comparator and q.comparator not in {s.comparator for s in same}:
            found.append(finding("comparator_not_in_source", f"'{q.comparator}{q.value}' does not occur in the source"))
    return found


def negation_findings(text: str, source_text: str) -> list[Finding]:
    """A statement about what its source sentence negates must keep a negation."""
    if not source_text or NEGATION_ANY.search(text):
        return []
    words = content_tokens(text)
    for cue, scope in negated_spans(source_text):
        negated = content_tokens(scope)
        if negated and len(negated & words) / len(negated) >= 0.6:
            return [finding("negation_lost", f"the source says '{cue} {scope}'; the statement has no negation")]
    return []


def check(statement: Statement, source_text: str, all_sources: str) -> list[Finding]:
    """Findings for one statement. `source_text` is the sentence/row it came from (may be ''),
    `all_sources` everything the question says (numbers may come from anywhere in it)."""
    text = statement.statement
    return [
        *cloze_findings(statement),
        *wording_findings(text),
        *faithfulness_findings(text, all_sources),
        *negation_findings(text, source_text),
    ]


def duplicates(statements: list[Statement], threshold: float = NEAR_DUPLICATE) -> dict[str, Finding]:
    """A finding for each statement that repeats (or nearly repeats) an earlier one."""
    found: dict[str, Finding] = {}
    for i, s in enumerate(statements):
        for earlier in statements[:i]:
            if earlier.id in found:
                continue
            score = similarity(s.statement, earlier.statement)
            if score >= threshold:
                kind = "repeats" if score == 1.0 else f"nearly repeats ({score:.2f})"
                found[s.id] = finding("duplicate", f"{kind} statement {earlier.id}")
                break
    return found
