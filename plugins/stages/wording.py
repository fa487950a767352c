"""Wording patterns shared by the nlp hints, the offline provider and the validation checks:
case-specific and deictic wording, references to the source, pronoun openings, negation cues.

One place, so that what the nlp stage flags, what the offline rules avoid and what validation
rejects can never drift apart.
"""

from __future__ import annotations

import re

CASE_SPECIFIC = re.compile(
    r"\b(?:this|the|our|that) (?:patient|woman|man|person|boy|girl|individual|case)(?:'s)?\b"
    r"|\bthis (?:[\w-]+ ){1,2}(?:patient|woman|man|person)\b"
    r"|\b(?:immediate|appropriate|best) next step\b"
    r"|\b(?:she|he|her|his|him|hers|himself|herself)\b"
    r"|\b\d+-year-old\b"
    r"|\b(?:in|for|to) this (?:setting|case|scenario|presentation|situation)\b"
    r"|\bthis (?:presentation|scenario|vignette)\b"
    r"|\bas in this\b"
    r"|\b(?:applies|apply|present|fit|fits) here\b"
    r"|\bnone of which (?:is|are) present\b"
    r"|\bwould be (?:inappropriate|appropriate|incorrect|unnecessary|reasonable)\b"
    r"|\b(?:not indicated|unnecessary|inappropriate|premature) now\b"
    r"|\bmost appropriate (?:next step|treatment|management|test|therapy|diagnostic test|choice|option)\b",
    re.I,
)
DEICTIC = re.compile(
    r"\b(?:the|as) above\b|\bas (?:noted|mentioned|described|discussed) (?:above|earlier|previously)\b"
    r"|\bthe (?:former|latter)\b|\bthe following\b|\bthe findings above\b"
    r"|^the (?:laboratory|clinical|examination|imaging|biopsy) (?:findings|results|studies)\b(?! of\b| in\b)",
    re.I,
)
SOURCE_REFERENCE = re.compile(
    r"\boptions? [A-E]\b"
    r"|\((?:see )?table:?[^)]*\)|\bsee (?:the )?(?:table|figure)\b"
    r"|\b(?:the|this) (?:critique|question|explanation|answer choice|answer|vignette|stem|item|table above)\b"
    r"|\b(?:in)?correct (?:answer|option|choice|response)\b|\bis incorrect\b",
    re.I,
)
OPTION_PARENTHESIS = re.compile(r"\s*\((?:Options?|Answers?|Choices?) [A-E](?:(?:,| and| or|, and) [A-E])*\)")
TABLE_PARENTHESIS = re.compile(r"\s*\((?:see )?Table:?[^)]*\)", re.I)
PRONOUN_OPENING = re.compile(
    r"^(?:it|its|they|their|them|these|those|this|that|such|he|she|his|her|either|neither|both of them)\b", re.I
)

#: Cues that negate what follows them (NegEx-style "pre" cues), longest first.
NEGATION_PRE = (
    "no evidence of", "absence of", "negative for", "lack of", "lacks", "lack", "without", "cannot", "can not",
    "does not", "do not", "did not", "is not", "are not", "was not", "were not", "should not", "need not",
    "must not", "will not", "has no", "have no", "not", "no", "never", "neither", "nor", "fails to", "fail to",
    "rather than", "instead of",
)  # fmt: skip
#: Cues that negate what precedes them ("... is unnecessary").
NEGATION_POST = (
    "is unnecessary", "are unnecessary", "is not indicated", "are not indicated", "is contraindicated",
    "are contraindicated", "has been excluded", "was excluded", "is ineffective", "are ineffective",
    "has no role", "ruled out", "unlikely",
)  # fmt: skip
#: What counts as negation in a statement: any cue, plus words that carry a negative meaning.
NEGATION_ANY = re.compile(
    r"\b(?:"
    + "|".join(re.escape(c) for c in sorted({*NEGATION_PRE, *NEGATION_POST}, key=len, reverse=True))
    + r"|unnecessary|ineffective|contraindicated|avoid(?:ed|s)?|insufficient|inadequate|inappropriate"
    r"|excluded)\b|n't\b",
    re.I,
)
_PRE = re.compile(r"\b(" + "|".join(re.escape(c) for c in NEGATION_PRE) + r")\b", re.I)
_POST = re.compile(r"\b(" + "|".join(re.escape(c) for c in NEGATION_POST) + r")\b", re.I)
_CLAUSE_END = re.compile(r"[,;:.()]|\s(?:but|although|though|however|whereas|which|because|while|so)\s", re.I)
_CLAUSE_START = re.compile(r".*(?:[,;:.()]|\s(?:but|although|though|whereas|which|because|while|so)\s)", re.I | re.S)


def negated_spans(text: str) -> list[tuple[str, str]]:
    """(cue, negated span) pairs: a pre-cue negates up to the end of its clause, a post-cue
    what precedes it in its clause. A rule-based NegEx: good enough to notice a lost 'not'."""
    found: list[tuple[str, str]] = []
    for m in _PRE.finditer(text):
        end = _CLAUSE_END.search(text, m.end())
        scope = text[m.end() : end.start() if end else len(text)].strip()
        if scope:
            found.append((m.group(1), scope))
    for m in _POST.finditer(text):
        head = text[: m.start()]
        start = _CLAUSE_START.match(head)
        scope = head[start.end() if start else 0 :].strip()
        if scope:
            found.append((m.group(1), scope))
    return found


def case_wording(text: str) -> list[str]:
    """The case-specific, deictic and source-referring phrases of `text`."""
    return [m.group(0) for rx in (CASE_SPECIFIC, DEICTIC, SOURCE_REFERENCE) for m in rx.finditer(text)]
