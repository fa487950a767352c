"""Sentence-level text cleaning: run-together paragraphs, inline HTML, whitespace.

The extractor often glues paragraphs together with no space ("aspirin.On examination"); the
splitter repairs that without breaking abbreviations ("e.g.", "vs.", "et al.", "Dr."),
decimals ("1.5 mg/dL"), initialisms ("U.S.", "b.i.d.") or genus initials ("S. aureus").
"""

from __future__ import annotations

import html
import re

SUPERSCRIPT = str.maketrans("0123456789+-−", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁻")
_SUPERSCRIPTABLE = re.compile(r"^[0-9+\-−]+$")
# Only real inline-HTML tag names: "<7 g/dL ... >92%" must survive as text.
_TAG_NAMES = r"(?:i|b|em|strong|u|s|sup|sub|span|a|p|br|small|font|div|li|ul|ol|mark|cite|abbr|code)"
_TAG = re.compile(rf"</?{_TAG_NAMES}(?:\s[^<>]*)?/?>", re.I)
_SUP = re.compile(r"<sup(?:\s[^<>]*)?>\s*([^<>]*?)\s*</sup>", re.I)
_SPACE = re.compile(r"\s+")

# A sentence end glued to the next sentence: ".", "!" or "?" right after a non-space
# character and right before a capitalised word ("aspirin.On", "m².This", "mg/dL.Her").
_GLUED = re.compile(r"(?<=[^\s.])([.!?])(?=[\"'(\[]?(?:[A-Z][a-z]|A\s|[α-ωΑ-Ω]-[A-Za-z]))")
# A candidate boundary: end punctuation (plus closing quotes/brackets), space, then a
# capital letter, a digit or a Greek-letter name ("β-Blockers"), possibly behind an opening
# quote or bracket.
_BOUNDARY = re.compile(r"([.!?][\"')\]]*)(\s+)(?=[\"'(\[]?(?:[A-Z0-9]|[α-ωΑ-Ω]-))")
_LAST_TOKEN = re.compile(r"(\S+?)[\"')\]]*$")

#: Never a sentence end when followed by anything.
ABBREVIATIONS = frozenset(
    "e.g i.e eg ie vs al approx dr drs mr mrs ms prof st mt jr sr inc ltd co corp dept univ cf ca resp "
    "wk wks yr yrs mo mos hr hrs min max avg est".split()
)
#: Abbreviations only before a number ("No. 2", "Fig. 3", "p. 14").
NUMBERED = frozenset("no nos fig figs p pp vol ref refs eq tab ch sec".split())
#: A capital letter after these words is a name ("vitamin D."), so the period may end a sentence.
_LETTER_NAMES = frozenset(
    "vitamin hepatitis type group class stage grade phase factor option table figure lead zone "
    "protein complex antigen".split()
)


def superscript(text: str) -> str:
    """'2' -> '²'; text with characters that have no superscript form comes back as '^x'."""
    text = text.strip()
    return text.translate(SUPERSCRIPT) if _SUPERSCRIPTABLE.match(text) else f"^{text}" if text else ""


def strip_html(text: str) -> str:
    """Inline HTML (`<i>`, `<sup>2</sup>`) removed, entities decoded, whitespace collapsed.

    A numeric superscript becomes its Unicode form (m<sup>2</sup> -> m²); a footnote marker
    (<sup>a</sup>) is dropped. Comparators such as "<7 g/dL" are text, not tags, and survive.
    """

    def sup(m: re.Match[str]) -> str:
        inner = _TAG.sub("", m.group(1))
        return inner.translate(SUPERSCRIPT) if _SUPERSCRIPTABLE.match(inner) else ""

    text = _TAG.sub("", _SUP.sub(sup, text))
    return _SPACE.sub(" ", html.unescape(text)).strip()


def _token_before(text: str, end: int) -> str:
    """The word that ends at `end` (the position of the end punctuation), minus brackets."""
    m = _LAST_TOKEN.search(text[:end])
    return m.group(1).lstrip("(\"'[") if m else ""


def _is_abbreviation(token: str, prev_word: str, next_text: str) -> bool:
    low = token.lower()
    if low in ABBREVIATIONS:
        return True
    if low in NUMBERED and next_text[:1].isdigit():
        return True
    if "." in token and re.fullmatch(r"(?:[A-Za-z]{1,3}\.)+[A-Za-z]{1,3}", token):
        return True  # U.S, e.g, b.i.d, Ph.D: an initialism's inner periods
    if re.fullmatch(r"[A-Za-z]", token):
        return prev_word.lower() not in _LETTER_NAMES  # "J. Smith", but "vitamin D. Then"
    return False


def unglue(text: str) -> str:
    """Insert the missing space after a sentence end glued to the next sentence.

    Initialisms ("U.S.Army" stays as it is) and single letters are left alone; an
    abbreviation gets its space back but is still not a sentence end ("e.g.Aspirin").
    """

    def repl(m: re.Match[str]) -> str:
        token = _token_before(text, m.start())
        closed = text[m.start() - 1] in "\"')]"
        if not closed and ("." in token or len(token) == 1):
            return m.group(1)
        return m.group(1) + " "

    return _GLUED.sub(repl, text)


def split_sentences(text: str) -> list[str]:
    """Sentences of `text`, after stripping inline HTML and repairing glued paragraphs.

    Idempotent: splitting the sentences joined by spaces gives the same sentences.
    """
    text = _SPACE.sub(" ", unglue(strip_html(text))).strip()
    if not text:
        return []
    sentences: list[str] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        end = m.end(1)
        if m.group(1)[0] == ".":
            before = text[start : m.start(1)]
            token = _token_before(before, len(before))
            words = before.split()
            prev_word = words[-2].strip("(\"'[,;:") if len(words) >= 2 else ""
            if _is_abbreviation(token, prev_word, text[m.end() :]):
                continue
        sentence = text[start:end].strip()
        if any(c.isalnum() for c in sentence):
            sentences.append(sentence)
            start = m.end()
    tail = text[start:].strip()
    if tail and any(c.isalnum() for c in tail):
        sentences.append(tail)
    elif tail and sentences:
        sentences[-1] = f"{sentences[-1]} {tail}"
    return sentences
