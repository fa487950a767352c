"""The rule-based NLP tier: what the nlp stage computes when no spaCy model is installed.

Sentences come from the parse stage; this finds abbreviation pairs, negation cues, candidate
terms (for cloze deletion) and sentences that join several facts.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

STOPWORDS = frozenset(
    """a an the and or but nor of in on at to for from by with without within into onto over under
    as than then that this these those there their they them it its is are was were be been being
    has have had having do does did done can could may might must should would will shall not no
    if when while which who whom whose what where why how also only more most less least very
    such both either neither each every all any some other another same so because although though
    after before during until since between among per via whether most often usually generally
    patient patients including include includes included""".split()
)
NEGATION_CUES = (
    "no", "not", "without", "absence of", "negative for", "does not", "do not", "did not",
    "is not", "are not", "cannot", "never", "neither", "nor", "rule out", "ruled out", "unlikely",
    "no evidence of", "fails to", "lack of",
)  # fmt: skip
_NEG = re.compile(r"\b(" + "|".join(re.escape(c) for c in sorted(NEGATION_CUES, key=len, reverse=True)) + r")\b", re.I)
_NUMBER = re.compile(
    r"(?:[≥≤<>]=?\s?|(?:greater|less|more|fewer) than (?:or equal to )?)?"
    r"\d+(?:[.,]\d+)?(?:\s?(?:–|-|to)\s?\d+(?:\.\d+)?)?"
    r"(?:\s?(?:%|mg/dL|mmol/L|mm Hg|mg|g/dL|mL/min/1\.73 m²|mL/min|U/L|ng/mL|µg/L|μg/dL|kg/m²"
    r"|years?|months?|weeks?|days?|hours?|cm|mm|mEq/L|IU|units?))?"
)
_ABBREV = re.compile(r"\(([A-Za-z][A-Za-z0-9\-]{1,9}s?)\)")
_WORD = re.compile(r"[A-Za-z0-9][\w\-–'/]*")


class Term(BaseModel):
    text: str
    kind: str = Field(description="abbreviation | number | phrase | entity")


class SentenceInfo(BaseModel):
    text: str
    terms: list[Term] = Field(default_factory=list)
    negations: list[str] = Field(default_factory=list)
    atomicity: list[str] = Field(default_factory=list, description="hints that several facts are joined")


def abbreviation_pairs(text: str) -> list[tuple[str, str]]:
    """("left bundle branch block", "LBBB") pairs: a simplified Schwartz-Hearst match."""
    pairs = []
    for m in _ABBREV.finditer(text):
        short = m.group(1)
        letters = [c.lower() for c in short if c.isalpha()]
        if len(letters) < 2 or not any(c.isupper() for c in short):
            continue
        words = _WORD.findall(text[: m.start()])[-(len(letters) + 3) :]
        # shortest tail of words whose first word starts with the first letter and whose
        # characters contain the letters in order
        for n in range(1, len(words) + 1):
            tail = words[-n:]
            if tail[0][0].lower() != letters[0]:
                continue
            if _in_order(letters, " ".join(tail).lower()) and n >= max(1, len(letters) - 3):
                long = text[: m.start()].rstrip()
                start = long.rfind(tail[0])
                pairs.append((long[start:], short))
                break
    return pairs


def _in_order(letters: list[str], text: str) -> bool:
    pos = 0
    for c in letters:
        pos = text.find(c, pos)
        if pos < 0:
            return False
        pos += 1
    return True


def phrases(text: str) -> list[str]:
    """Runs of content words between stop words and punctuation: candidate terms."""
    out = []
    for chunk in re.split(r"[,;:()\[\]]|\s[–-]\s|\.(?=\s|$)", text):
        run: list[str] = []
        for word in chunk.split():
            bare = word.strip(".\"'")
            if bare.lower() in STOPWORDS or not bare:
                if run:
                    out.append(" ".join(run))
                run = []
            else:
                run.append(bare)
        if run:
            out.append(" ".join(run))
    return [p for p in out if len(p) >= 4 and any(c.isalpha() for c in p) and len(p.split()) <= 6]


def analyse(text: str) -> SentenceInfo:
    terms: list[Term] = []
    for long, short in abbreviation_pairs(text):
        terms.append(Term(text=f"{long} ({short})", kind="abbreviation"))
    for m in _NUMBER.finditer(text):
        value = m.group(0).strip()
        if any(c.isdigit() for c in value) and (len(value) > 2 or not value.isdigit()):
            terms.append(Term(text=value, kind="number"))
    for p in phrases(text):
        terms.append(Term(text=p, kind="phrase"))
    hints = []
    if "; " in text:
        hints.append("semicolon joins clauses")
    if text.count(",") >= 2 and re.search(r",\s(?:and|or)\s", text):
        hints.append("list of 3+ items")
    return SentenceInfo(
        text=text,
        terms=terms,
        negations=[m.group(0) for m in _NEG.finditer(text)],
        atomicity=hints,
    )
