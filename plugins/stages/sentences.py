"""Sentence-level text cleaning: run-together paragraphs, inline HTML, whitespace.

The extractor often glues paragraphs together with no space ("aspirin.On examination"); the
splitter repairs that without breaking abbreviations ("e.g.", "vs."), decimals ("1.5 mg/dL")
or initials.
"""

from __future__ import annotations

import html
import re

# A period glued to the next sentence: a lowercase word, digit, unit or bracket, then ".", then
# a capitalised word. Decimals ("1.5") and initialisms ("U.S.") do not match.
_GLUED = re.compile(r"(?<=[a-z0-9%\)\]])([.!?])(?=[A-Z][a-z])")
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")
_ABBREVIATIONS = frozenset(
    "e.g i.e vs etc al approx dr mr mrs ms no fig figs cf ca st mt ie eg resp wk wks yr yrs min max".split()
)
_BOUNDARY = re.compile(r"([.!?])(\s+)(?=[\"'(\[]?[A-Z0-9])")


def strip_html(text: str) -> str:
    """Inline HTML (`<i>`, `<sup>`) removed, entities decoded, whitespace collapsed."""
    return _SPACE.sub(" ", html.unescape(_TAG.sub("", text))).strip()


def unglue(text: str) -> str:
    """Insert the missing space after a sentence end glued to the next sentence."""
    return _GLUED.sub(r"\1 ", text)


def split_sentences(text: str) -> list[str]:
    """Sentences of `text`, after repairing glued paragraphs."""
    text = _SPACE.sub(" ", unglue(strip_html(text))).strip()
    if not text:
        return []
    sentences: list[str] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        end = m.start(1) + 1
        before = text[start:end]
        word = re.search(r"(\S+)[.!?]$", before)
        token = word.group(1).lower().lstrip("(\"'") if word else ""
        if m.group(1) == "." and (token in _ABBREVIATIONS or re.fullmatch(r"[a-z]", token)):
            continue  # "e.g. Aspirin", "vs. Warfarin", an initial
        sentences.append(before.strip())
        start = m.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences
