"""Deterministic checks on statements. Each finding has a code, and each code one severity.

An **error** is a defect a card must not ship with: it goes to the repair round and, if it is
still there, the statement is set aside in `rejected_statements`. A **warning** is recorded on
the statement and shown, never rejected: style, or a heuristic guess about a statement whose
fact is usually still true.

errors
  cloze_not_verbatim, cloze_missing, cloze_invalid   the cloze candidates
  case_specific         about the case: "this patient", "she", "a 67-year-old", "applies here"
  source_reference      about the question: "Option C", "the critique", "is incorrect"
  answer_framing        the question's framing, not a fact: "The most likely diagnosis is ...",
                        "... is the most appropriate next step", "The correct answer ..."
  citation_reference    a figure, table, image or literature reference the card cannot show:
                        "(shown)", "Table:", "Figure 2", "et al.", "2019;380:1509", "pp. 12-18"
  pronoun_opening       opens with a pronoun ("It", "They", "These"); an expletive "It is
                        imperative to ..." refers to nothing and is fine
  discourse_opening     opens with a connective that needs the sentence before it: "However,",
                        "Similarly,", "In addition,", "Therefore,"
  number_not_in_source  a number the question never states (invented)
  number_not_in_unit    a number the question states, but not the statement's own source unit
                        (its critique sentence, key point, or table row with caption and labels)
  unit_not_in_source, comparator_not_in_source   a number's unit or comparator is not the one
                        its source unit gives it
  negation_lost         the source unit negates what the statement asserts
  negation_added        the statement negates what its source unit says without a negation (and
                        does not imply one: "only for X", "preferred over Y"); a table unit is read
                        with its caption and column labels, and abbreviations in either form
  direction_flip        the opposite direction of its source unit: higher/lower, increases/
                        decreases, more/less, above/below, excludes/confirms, before/after
  swapped_term          a drug, disease, test, organism or closed-set term (route, sex, acuity,
                        laterality ...) the source unit does not have, where the unit has another
                        of the same kind in that place
  duplicate             repeats an earlier statement of the question (statements that differ in
                        a term, e.g. two drug names, are two facts, not a duplicate)
warnings
  subject_less          opens with a generic subject ("The typical lesion", "The disorder",
                        "Treatment", "This condition") that it never identifies, or with a bare
                        predicate ("Usually presents with"): its subject is only in the source's
                        previous sentence. A guess about what a phrase refers to, about a fact
                        that is itself true, so it is recorded rather than rejected; "This"/
                        "These" openings are errors anyway (pronoun_opening)
  dropped_hedge         the source unit hedges (usually, often, may, typically, most, rarely)
                        and the statement says the same thing as an absolute. Overstated, not
                        false, and the quality bar does not list hedges among what must be kept
  too_long, list_tested style

The faithfulness checks compare a statement with its own source unit (`SourceUnit`, which
validate builds from the statement's id); words are compared whole ('dermis' is not in
'epidermis'). Without a unit (an id that does not resolve) they are skipped, and numbers are
held to the whole question as before.
"""

from __future__ import annotations

import heapq
import math
import re
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache

from mksap.contracts.statements import Finding, Statement, aligned_starts
from mksap_plugins.stages.nlp_rules import STOPWORDS, abbreviation_pairs, enumeration, phrases
from mksap_plugins.stages.quantities import Quantity, canonical_unit, quantities
from mksap_plugins.stages.wording import (
    ADVERB_OPENERS,
    ANSWER_FRAMING,
    CASE_SPECIFIC,
    CITATION,
    DEICTIC,
    DIRECTION,
    DIRECTION_PHRASES,
    DISCOURSE_OPENING,
    GENERIC_HEADS,
    HEDGE,
    NEGATION_ANY,
    NEGATION_POST,
    OPTION_PARENTHESIS,
    PARTICIPLE_OPENING,
    PREDICATE_VERBS,
    PRONOUN_OPENING,
    SOURCE_HEDGE,
    SOURCE_REFERENCE,
    SUBJECTLESS_OPENING,
    TABLE_PARENTHESIS,
    cut_at_new_clause,
    negated_spans,
    new_clause_at,
    term_category,
)

MAX_WORDS = 30
NEAR_DUPLICATE = 0.8
ERROR_CODES = (
    "cloze_not_verbatim", "cloze_missing", "cloze_invalid", "case_specific", "source_reference",
    "answer_framing", "citation_reference", "pronoun_opening", "discourse_opening", "number_not_in_source",
    "number_not_in_unit", "unit_not_in_source", "comparator_not_in_source", "negation_lost", "negation_added",
    "direction_flip", "swapped_term", "duplicate",
)  # fmt: skip
WARNING_CODES = ("subject_less", "dropped_hedge", "too_long", "list_tested")
_TOKEN = re.compile(r"[a-z0-9]+")
_WORD = re.compile(r"[A-Za-z0-9α-ωΑ-Ω][\w'’-]*")
_CLAUSE_BREAK = re.compile(
    r"[,;:()]|\s(?=(?:but|although|though|whereas|while|because|so|which|unless|except)\s)", re.I
)
_NAMING = ("drug", "disease", "organism")
#: Terms of one kind that say the same thing (stemmed as the checks compare them).
_SYNONYMS = (
    ("bleeding", "hemorrhage"), ("bleed", "hemorrhage"), ("seizure", "convulsion"), ("tumor", "neoplasm"),
    ("cancer", "malignancy"), ("cancer", "carcinoma"), ("infarction", "infarct"), ("ultrasonography", "ultrasound"),
    ("echocardiography", "echocardiogram"), ("radiography", "radiograph"), ("antibiotic", "antimicrobial"),
)  # fmt: skip
_PREDICATE_ADJECTIVES = frozenset(
    """effective ineffective useful safe unsafe appropriate inappropriate preferable necessary unnecessary common
    uncommon rare typical usual contraindicated self-limited benign reserved first-line second-line not often
    usually typically generally also more less most best better too option options choice choices alternative
    alternatives""".split()
)
_NUMBER_WORDS = {
    w: str(i)
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen twenty".split()
    )
} | {"thirty": "30", "forty": "40", "fifty": "50", "hundred": "100", "once": "1", "twice": "2"}
_FUNCTION_WORDS = frozenset("a an the be been being is are was were to".split())
_NEAR = 5  # words: how close to what it negates a statement's negation must be


def finding(code: str, message: str) -> Finding:
    """A finding with the severity its code has."""
    return Finding(code=code, severity="warning" if code in WARNING_CODES else "error", message=message)


@dataclass(frozen=True)
class SourceUnit:
    """What one statement was drawn from, as validation compares it."""

    text: str = ""
    """the critique sentence, key point, table row (cells joined) or table footnote; '' if unknown"""
    context: str = ""
    """what the unit is read with: a table's caption, column labels and row group"""
    previous: str = ""
    """the source sentence before it (the objective for the first one): where a subject it
    leaves out may be"""


def _stem(token: str) -> str:
    """A crude stem, so 'lowers', 'lowered' and 'lower' (and 'therapies', 'therapy') compare equal."""
    for suffix in ("ing", "ed"):
        if len(token) > 5 and token.endswith(suffix):
            return token[: -len(suffix)]
    if len(token) > 4 and token.endswith("ies"):
        return token[:-3] + "y"
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


def _words(text: str) -> list[str]:
    """Whole words as written ('epidermis' is one word: 'dermis' is not in it)."""
    return _WORD.findall(text)


_BRITISH = re.compile(r"aem|oed|oes|paed|our\b")


#: Plurals no suffix rule reads as their singular.
_IRREGULAR = {"criteria": "criterion", "phenomena": "phenomenon", "bacteria": "bacterium"}


def _norm(word: str) -> str:
    """A word as the faithfulness checks compare it: lower case, stemmed, American spelling
    ('haemorrhage', 'oedema', 'tumour' read as 'hemorrhage', 'edema', 'tumor'), singular
    ('criteria' read as 'criterion')."""
    low = word.lower().strip("'’-")
    low = _IRREGULAR.get(low, low)
    if _BRITISH.search(low):
        low = low.replace("aem", "em").replace("oed", "ed").replace("oes", "es").replace("paed", "ped")
        low = re.sub(r"our\b", "or", low) if len(low) > 5 else low
    return _stem(low)


def _norms(text: str) -> list[str]:
    return [_norm(w) for w in _words(text)]


def _clean(source: str) -> str:
    """A source without its option letters and table pointers, which no statement keeps."""
    return TABLE_PARENTHESIS.sub("", OPTION_PARENTHESIS.sub("", source))


def _terms_differ(a: str, b: str) -> bool:
    """Whether two statements differ in a term: each has a word the other lacks and those two
    words are of one kind (two drugs, two diseases, two numbers) or siblings with a long shared
    ending (benralizumab / mepolizumab, hyperkalemia / hypokalemia, increased / decreased)."""
    wa, wb = {_norm(w): w for w in _words(a)}, {_norm(w): w for w in _words(b)}
    only_a = [w for n, w in wa.items() if n not in wb and n not in STOPWORDS]
    only_b = [w for n, w in wb.items() if n not in wa and n not in STOPWORDS]
    for x in only_a:
        for y in only_b:
            if any(c.isdigit() for c in x) and any(c.isdigit() for c in y):  # 7 / 8, G4 / G5
                return True
            if term_category(x) is not None and term_category(x) == term_category(y):
                return True
            lx, ly = x.lower(), y.lower()
            if min(len(lx), len(ly)) >= 7 and not (lx.startswith(ly) or ly.startswith(lx)):
                shared = len(_common_suffix(lx, ly))
                if shared >= 5 and shared < min(len(lx), len(ly)):
                    return True
    return False


def _common_suffix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    return a[len(a) - n :]


def restates(a: str, b: str, threshold: float = NEAR_DUPLICATE) -> float | None:
    """The similarity of two statements when one restates the other, else None. Statements
    that differ only in a term ("Benralizumab ..." / "Mepolizumab ...") state two facts."""
    score = similarity(a, b)
    return score if score >= threshold and not _terms_differ(a, b) else None


def badness(text: str) -> tuple[int, int]:
    """How far a statement is from the quality bar (lower is better): wording errors, then
    distance from ~15 words. Used to keep the better of two restatements."""
    patterns = (CASE_SPECIFIC, DEICTIC, SOURCE_REFERENCE, ANSWER_FRAMING, CITATION, PRONOUN_OPENING, DISCOURSE_OPENING)
    return sum(bool(rx.search(text)) for rx in patterns), abs(len(text.split()) - 15)


# -- cloze candidates -------------------------------------------------------------------------


def cloze_findings(statement: Statement) -> list[Finding]:
    """Candidates are placed as the exporters place them (longest first, each at its first free
    occurrence), but only at whole words: 'dermis' inside 'epidermis' is not an occurrence."""
    text = statement.statement
    if not statement.cloze_candidates:
        return [finding("cloze_missing", "no cloze candidate")]
    found: list[Finding] = []
    placed: list[tuple[int, int]] = []
    for cand in sorted(statement.cloze_candidates, key=len, reverse=True):
        if not cand or cand not in text:
            found.append(finding("cloze_not_verbatim", f"candidate {cand!r} is not in the statement"))
            continue
        if cand.strip(" .") == text.strip(" ."):
            found.append(finding("cloze_invalid", "a candidate is the whole statement"))
            continue
        if all(w in STOPWORDS for w in _TOKEN.findall(cand.lower())):
            found.append(finding("cloze_invalid", f"candidate {cand!r} is only common words"))
            continue
        starts = aligned_starts(text, cand)
        free = [s for s in starts if not any(s < e and b < s + len(cand) for b, e in placed)]
        if not starts:
            found.append(finding("cloze_invalid", f"candidate {cand!r} occurs only inside a longer word"))
        elif not free:
            found.append(finding("cloze_invalid", f"candidate {cand!r} overlaps another"))
        else:
            placed.append((free[0], free[0] + len(cand)))
    return found


# -- wording ----------------------------------------------------------------------------------


def wording_findings(text: str) -> list[Finding]:
    found = []
    if m := CASE_SPECIFIC.search(text) or DEICTIC.search(text):
        found.append(finding("case_specific", f"case-specific or deictic wording {m.group(0)!r}"))
    if m := SOURCE_REFERENCE.search(text):
        found.append(finding("source_reference", f"refers to the source: {m.group(0)!r}"))
    if m := ANSWER_FRAMING.search(text):
        found.append(finding("answer_framing", f"frames the question's answer ({m.group(0)!r}); state the fact itself"))
    if m := CITATION.search(text):
        found.append(finding("citation_reference", f"cites a figure, table or publication ({m.group(0)!r}); drop it"))
    if m := PRONOUN_OPENING.match(text):
        found.append(finding("pronoun_opening", f"opens with {m.group(0)!r}, which needs another sentence"))
    if m := DISCOURSE_OPENING.match(text):
        found.append(
            finding("discourse_opening", f"opens with {m.group(0).rstrip(',')!r}, which needs the sentence before")
        )
    words = len(text.split())
    if words > MAX_WORDS:
        found.append(finding("too_long", f"{words} words (more than {MAX_WORDS})"))
    if items := _list_items(text):
        found.append(finding("list_tested", f"a list of {items} items in one statement"))
    return found


def _list_items(text: str) -> int | None:
    r"""The items of the first list in `text`: "a, b, and c" (`enumeration`) or "a; b; c"
    (`_semicolon_list`), whichever starts first (the enumeration at the same place). What
    `(?:[^,;:()]+,\s){2,}(?:and|or)\s[^,;:()]+|(?:[^;]+;\s){2,}[^;]+` finds, in one pass:
    the regex retries every start, quadratic in a long text."""
    commas, semicolons = enumeration(text), _semicolon_list(text)
    if commas and (not semicolons or commas[0] <= semicolons[0]):
        return commas[1]
    if semicolons:
        listed = text[semicolons[0] : semicolons[1]]
        return max(listed.count(",") + 1, listed.count(";") + 1)
    return None


def _semicolon_list(text: str) -> tuple[int, int] | None:
    r"""(start, end) of the first match of `(?:[^;]+;\s){2,}[^;]+` in `text`. The semicolons
    cut it into segments; an item is a segment (after the first, without the whitespace that
    follows the semicolon before it) that is not empty and is followed by a semicolon and a
    whitespace. A match starts at a segment, takes two items or more and ends with the next
    segment when that is not empty, or else gives its last item back as the end."""
    cuts = [m.start() for m in re.finditer(";", text)]
    bounds = list(zip([0, *(c + 1 for c in cuts)], [*cuts, len(text)], strict=True))  # each segment

    def item(k: int, first: bool) -> bool:
        start, end = bounds[k]
        return end - start > (0 if first else 1) and end < len(text) - 1 and text[end + 1].isspace()

    s = 0
    while s < len(bounds):
        if not item(s, first=True):
            s += 1
            continue
        j = s + 1  # the segment after the items
        while j < len(bounds) and item(j, first=False):
            j += 1
        if j - s >= 2 and j < len(bounds) and bounds[j][1] - bounds[j][0] > 1:
            return bounds[s][0], bounds[j][1]
        if j - s >= 3:
            return bounds[s][0], bounds[j - 1][1]
        s = j  # every start before j takes fewer of the same items: it fails too
    return None


@lru_cache(maxsize=1024)
def aliases(all_sources: str) -> tuple[tuple[str, str], ...]:
    """(short form, long form) of every abbreviation the question defines, as 'long form
    (SHORT)' or in a legend 'SHORT = long form'."""
    pairs = [(short, long) for long, short in abbreviation_pairs(all_sources)]
    pairs += [(m.group(1), m.group(2)) for m in re.finditer(r"\b([A-Za-z0-9-]{2,10}) = ([^;.\n]+)", all_sources)]
    return tuple(pairs)


_GIVEN = re.compile(r"\(([^()\s,;]{2,10})\)")  # an abbreviation given in brackets


class AliasIndex:
    """The abbreviations a question defines (`aliases`), indexed so that each statement finds
    the few it concerns without reading them all (a long question defines many): by short form,
    by the rarest word of the long form (a text with the whole long form has that word), and by
    where a long form can stand before a bracket. Every answer keeps the question's order."""

    def __init__(self, all_sources: str) -> None:
        self.pairs = aliases(all_sources)
        self.long_norms = [frozenset(_norms(long)) for _, long in self.pairs]
        self.by_short: dict[str, list[int]] = {}
        self.by_word: dict[str, list[int]] = {}
        self._wordless: list[int] = []  # long forms without a word: within any text
        counts = Counter(n for norms in self.long_norms for n in norms)
        for i, (short, _) in enumerate(self.pairs):
            self.by_short.setdefault(short, []).append(i)
            if norms := self.long_norms[i]:
                self.by_word.setdefault(min(norms, key=lambda n: (counts[n], n)), []).append(i)
            else:
                self._wordless.append(i)
        self._patterns: dict[int, re.Pattern[str]] = {}  # 'long form (ABBREVIATION)', compiled when first tried
        # by shape (length without the trailing whitespace, trailing whitespace): the ASCII long
        # forms by their lower case (ASCII text matches one, case blind, exactly when their lower
        # cases are equal), the others ('β-blocker', or a 'K' that is 'k'), and all of them
        self._shapes: dict[tuple[int, int], tuple[dict[str, list[int]], list[int], list[int]]] = {}
        self._blank: list[int] = []  # long forms of whitespace only: searched for everywhere
        for i, (_, long) in enumerate(self.pairs):
            if not (kept := long.rstrip()):
                self._blank.append(i)
                continue
            cased, other, every = self._shapes.setdefault((len(kept), len(long) - len(kept)), ({}, [], []))
            every.append(i)
            if kept.isascii():
                cased.setdefault(kept.lower(), []).append(i)
            else:
                other.append(i)

    def used(self, words: set[str]) -> list[int]:
        """The abbreviations whose short form is one of `words`."""
        return sorted(i for w in words for i in self.by_short.get(w, ()))

    def within(self, norms: set[str]) -> list[int]:
        """The abbreviations whose long form has only words among `norms` (normalised)."""
        found = {*self._wordless, *(i for n in norms for i in self.by_word.get(n, ()))}
        return sorted(i for i in found if self.long_norms[i] <= norms)

    def absorb(self, known: set[str], shorts: set[str]) -> None:
        """For each abbreviation in turn whose long form has only words in `known`: its short
        form joins `known` (normalised) and `shorts` (as written). In turn: a short form added
        counts for the abbreviations after it only."""
        todo = [*self._wordless, *(i for n in known for i in self.by_word.get(n, ()))]
        heapq.heapify(todo)
        done: set[int] = set()
        while todo:
            i = heapq.heappop(todo)
            if i in done or not self.long_norms[i] <= known:
                continue
            done.add(i)
            short = self.pairs[i][0]
            shorts.add(short)
            if (n := _norm(short)) not in known:
                known.add(n)
                for j in self.by_word.get(n, ()):
                    if j > i:
                        heapq.heappush(todo, j)

    def spelled_out(self, text: str) -> Iterator[tuple[int, re.Match[str]]]:
        """Each 'long form (ABBREVIATION)' in `text`: (the abbreviation's index, the match),
        abbreviation by abbreviation and in text order: what `re.finditer` finds for each in
        turn, tried only where a long form of the abbreviation's length ends before a bracket
        with the same letters (case blind)."""
        brackets = _brackets(text)
        if not brackets:
            return
        tried: dict[int, list[int]] = {}  # the starts to try, by abbreviation
        for opening, space in brackets:
            for (kept, trailing), (cased, other, every) in self._shapes.items():
                start = space - kept  # the long form's last letter is right before the space
                if start < 0 or opening - space < trailing:
                    continue
                seg = text[start:space]
                for i in [*cased.get(seg.lower(), ()), *other] if seg.isascii() else every:
                    tried.setdefault(i, []).append(start)
        for i in sorted({*tried, *self._blank}):
            if (pattern := self._patterns.get(i)) is None:
                long = re.escape(self.pairs[i][1])
                pattern = self._patterns[i] = re.compile(rf"(?<![\w-]){long}\s*\(([^()\s,;]{{2,10}})\)", re.I)
            if i not in tried:
                yield from ((i, m) for m in pattern.finditer(text))
                continue
            end = 0
            for start in tried[i]:  # as finditer goes on: from the end of the last match
                if start >= end and (m := pattern.match(text, start)):
                    end = m.end()
                    yield i, m


def _brackets(text: str) -> list[tuple[int, int]]:
    """(where, where the whitespace before it starts) of each abbreviation given in brackets."""
    found = []
    for g in _GIVEN.finditer(text):
        space = g.start()
        while space > 0 and text[space - 1].isspace():
            space -= 1
        found.append((g.start(), space))
    return found


@lru_cache(maxsize=64)
def alias_index(all_sources: str) -> AliasIndex:
    """The `AliasIndex` of a question (cached: asked once per statement)."""
    return AliasIndex(all_sources)


def _spelled_out(text: str, all_sources: str) -> str:
    """The long forms of the abbreviations `text` uses (so 'SGLT2' brings in its '2')."""
    if not all_sources:
        return ""
    index = alias_index(all_sources)
    return " \n ".join(index.pairs[i][1] for i in index.used(set(_words(text))))


# -- subject ----------------------------------------------------------------------------------


def _identified(rest: str) -> bool:
    """Whether what follows a generic opening says what it is: 'The preferred treatment is
    fidaxomicin', '... is clobetasol for bullous pemphigoid' name it; 'The typical lesion is a
    target', 'The treatment is preferred over warfarin' do not."""
    words = [w for w in _words(rest) if w.lower() not in ("a", "an", "the")]
    if len(words) < 2 or words[0].lower() not in ("is", "are", "was", "were", "remains", "remain"):
        return False
    noun = words[1].lower()
    if noun.endswith("ed") or noun.endswith("ly") or noun in _PREDICATE_ADJECTIVES or noun in GENERIC_HEADS:
        return False
    if term_category(words[1]) in (*_NAMING, "acronym"):
        return True
    return any(w.lower() in ("for", "in", "of") for w in words[2:4])  # "clobetasol for bullous pemphigoid"


def _opener(text: str) -> str:
    """The opening that leaves the subject out ('The typical lesion', 'Treatment', 'Usually
    erupts', 'Is caused by'), or ''."""
    if m := SUBJECTLESS_OPENING.match(text):
        return "" if _identified(text[m.end() :]) else m.group(0)
    words = [w.lower().strip(",") for w in text.split()[:2]]
    if not words:
        return ""
    first, second = words[0], words[1] if len(words) > 1 else ""
    if first in PREDICATE_VERBS and not text.rstrip().endswith("?"):
        return text.split()[0]
    if first in ADVERB_OPENERS and (
        second in PREDICATE_VERBS
        or (second.endswith("s") and second not in GENERIC_HEADS and not term_category(second))
    ):
        return " ".join(text.split()[:2])
    m = PARTICIPLE_OPENING.match(text)
    return m.group(0) if m else ""


def subject_findings(statement: Statement, unit: SourceUnit) -> list[Finding]:
    """A statement that opens without its subject, which the source names in the sentence
    before ('The typical lesion is a target ...' after a sentence naming the disease)."""
    opener = _opener(statement.statement)
    if not opener:
        return []
    if statement.source == "table" and not opener.lower().startswith(("this", "these", "that", "those", "such")):
        return []  # a table statement is read with its caption
    candidates = phrases(unit.previous)
    named = [p for p in candidates if any(term_category(w) in _NAMING for w in _words(p))]
    named = list(dict.fromkeys([*candidates[:1], *named]))[:3]  # its subject first, then what it names
    where = f"; the sentence before speaks of {', '.join(repr(p) for p in named)}" if named else ""
    return [finding("subject_less", f"opens with {opener!r} and never says what it is about{where}")]


# -- faithfulness -----------------------------------------------------------------------------


class _Numbers:
    """The quantities of a text, by value: each number of a statement is looked up in them,
    with the units and comparators the text gives it, not searched for."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.by_value: dict[str, list[Quantity]] = {}
        self._by_span: dict[tuple[int, int], list[Quantity]] = {}
        for q in quantities(text):
            self.by_value.setdefault(q.value, []).append(q)
            self._by_span.setdefault((q.start, q.end), []).append(q)
        self._units: dict[str, set[str | None]] = {}
        self._comparators: dict[str, set[str | None]] = {}

    def units(self, value: str) -> set[str | None]:
        if value not in self._units:
            self._units[value] = {canonical_unit(s.unit) for s in self.by_value.get(value, ())}
        return self._units[value]

    def comparators(self, value: str) -> set[str | None]:
        """The comparators the text gives a value: its own, the one a range's first value
        carries ('≥20–30' is '20–30 or more'), and one said in words ('limited to 8–10')."""
        if value not in self._comparators:
            same = self.by_value.get(value, [])
            found: set[str | None] = {s.comparator for s in same}
            for s in same:
                found |= {o.comparator for o in self._by_span[(s.start, s.end)]}
                before = self.text[max(0, s.start - 30) : s.start]
                found |= {sign for rx, sign in _SAID_COMPARATOR if rx.search(before)}
            self._comparators[value] = found
        return self._comparators[value]


@lru_cache(maxsize=64)
def _question_numbers(all_sources: str) -> _Numbers:
    return _Numbers(all_sources)


def faithfulness_findings(text: str, all_sources: str, unit: SourceUnit | None = None) -> list[Finding]:
    """Numbers must occur in the question; with a known source unit, in that unit (with the
    caption and labels of a table row, and the long forms of its abbreviations), together
    with their units and comparators."""
    everywhere = _question_numbers(all_sources)
    own: _Numbers | None = None
    own_text = ""
    named: set[str] = set()  # bare numbers of the unit's spelled-out names ("cotransporter 2")
    spelled: set[tuple[str, str]] = set()  # numbers the unit writes as words, with the word after
    if unit and unit.text:
        own_text = f"{unit.text} \n {unit.context}"
        own = _Numbers(own_text)
        named = {q.value for q in quantities(_spelled_out(own_text, all_sources)) if not q.unit and not q.comparator}
        words = [w.lower() for w in _words(own_text)]
        spelled = {
            (_NUMBER_WORDS[w], nxt) for w, nxt in zip(words, [*words[1:], ""], strict=True) if w in _NUMBER_WORDS
        }
    spelled_values = {v for v, _ in spelled}
    own_values = (own or everywhere).by_value
    headers: dict[str, bool] = {}  # units the unit's text gives in brackets, as a column label does
    found = []
    for q in quantities(text):
        said = (q.value, q.unit.lower()) in spelled if q.unit else q.value in spelled_values
        if q.value not in own_values and said and not q.comparator:
            continue  # "two of three criteria" said as "2 of 3", "two weeks" as "2 weeks"
        if q.value not in everywhere.by_value:
            found.append(finding("number_not_in_source", f"number {q.value} does not occur in the source"))
            continue
        if q.value not in own_values and not (q.value in named and not q.unit and not q.comparator):
            found.append(
                finding(
                    "number_not_in_unit",
                    f"number {q.value} is not in the statement's own source sentence, key point or row "
                    "(it occurs elsewhere in the question)",
                )
            )
            continue
        pool = own or everywhere
        if q.unit and own is not None and q.unit not in headers:
            headers[q.unit] = f"({q.unit})" in own_text  # "Systolic (mm Hg)": the column's unit
        header_unit = q.unit and own is not None and headers[q.unit]
        if q.unit and not header_unit and canonical_unit(q.unit) not in pool.units(q.value):
            found.append(finding("unit_not_in_source", f"'{q.value} {q.unit}' does not occur in the source"))
        elif q.comparator and q.comparator not in pool.comparators(q.value):
            found.append(finding("comparator_not_in_source", f"'{q.comparator}{q.value}' does not occur in the source"))
    return found


_SAID_COMPARATOR = (
    (
        re.compile(
            r"(?:limited to|no more than|not (?:to )?exceed(?:ing)?|a maximum of|at most|up to|within)\s*$", re.I
        ),
        "≤",
    ),
    (re.compile(r"(?:at least|a minimum of|no less than)\s*$", re.I), "≥"),
)


def _clauses(text: str) -> list[str]:
    """The clauses of `text`: split at punctuation, at subordinating conjunctions, and at an
    'and'/'or' that starts a clause of its own."""
    out = []
    for piece in _CLAUSE_BREAK.split(text):
        pos, end = len(piece) - len(piece.lstrip()), len(piece.rstrip())  # the clause left: piece[pos:end]
        while pos < end:
            head = piece[pos : new_clause_at(piece, pos, end)].rstrip()
            out.append(head or piece[pos:end])
            if not head:
                break
            pos += len(head)
            while pos < end and piece[pos].isspace():
                pos += 1
            if m := _AND_OR_OPENING.match(piece, pos, end):
                pos = m.end()
    return [c for c in out if c]


_AND_OR_OPENING = re.compile(r"(?:and|or)\s+", re.I)


def _content(norms: list[str]) -> list[str]:
    return [n for n in norms if n not in STOPWORDS]


def _negations(source: str) -> list[tuple[str, str, bool]]:
    """(cue, scope, whether the cue follows its scope) of `source`: the NegEx cues, plus
    'avoid X' and 'X should be avoided'; a pre-cue's scope ends where a new clause begins."""
    found = [(cue, scope, cue.lower() in NEGATION_POST) for cue, scope in negated_spans(source)]
    found += [(m.group(1), m.group(2), False) for m in re.finditer(r"\b(avoid|avoids)\s+([^,;.]+)", source, re.I)]
    for m in re.finditer(r"(?:^|[,;:]\s*)([^,;:]+?)\s+(should be avoided|are avoided|is avoided)\b", source, re.I):
        found.append((m.group(2), m.group(1), True))
    # a post-cue right after "and" has an elided subject ("X is not excreted and has no role"):
    # what precedes it is another clause, not its scope
    found = [(c, sc, p) for c, sc, p in found if not (p and re.search(r"\b(?:and|or)$", sc.strip(), re.I))]
    return [(cue, scope if post else cut_at_new_clause(scope), post) for cue, scope, post in found]


_CONDITION_NEGATION = re.compile(r"\b(?:unless|except|other than|apart from)\b", re.I)  # "unless X" = "without X"


class _Clauses:
    """A text's clauses (`_clauses`) as words, with where each (normalised) word occurs: what
    `_governed` reads, read once however many negations ask about it."""

    def __init__(self, text: str) -> None:
        self.words = [_words(clause) for clause in _clauses(text)]
        self.at: dict[str, list[tuple[int, int]]] = {}
        for c, words in enumerate(self.words):
            for i, w in enumerate(words):
                self.at.setdefault(_norm(w), []).append((c, i))
        self.answers: dict[tuple[str, bool, bool], bool | None] = {}

    def governed(self, head: str, post: bool, flipped: bool) -> bool | None:
        if (head, post, flipped) not in self.answers:
            self.answers[head, post, flipped] = self._governed(head, post, flipped)
        return self.answers[head, post, flipped]

    def _governed(self, head: str, post: bool, flipped: bool) -> bool | None:
        for c, i in self.at.get(head, ()):
            words = self.words[c]
            before, after = " ".join(words[max(0, i - _NEAR) : i]), " ".join(words[i + 1 : i + 1 + _NEAR])
            near, other = (after, before) if post else (before, after)
            if NEGATION_ANY.search(words[i]) or NEGATION_ANY.search(near) or _CONDITION_NEGATION.search(near):
                return True
            if flipped and NEGATION_ANY.search(other):
                return True
        return False if head in self.at else None


@lru_cache(maxsize=16)
def _clause_words(text: str) -> _Clauses:
    return _Clauses(text)


def _governed(text: str, head: str, post: bool, flipped: bool) -> bool | None:
    """Whether a negation governs an occurrence of `head` (a normalised word) in `text`: a cue
    among the few words before it in its clause (after it, for what a post-cue such as 'is
    unnecessary' follows), the word itself ('ineffective'), or, with `flipped`, a plain
    negation on the other side ('does not need X' for 'X is unnecessary'). None: no `head`."""
    return _clause_words(text).governed(head, post, flipped)


def negation_findings(text: str, source_text: str) -> list[Finding]:
    """What the source unit negates must stay negated where the statement says it: the word
    a negation governs (the first after a pre-cue, the last before a post-cue) must, when the
    statement says it in the same words, have a negation governing it there too."""
    if not source_text:
        return []
    have = content_tokens(text)
    for cue, scope, post in _negations(_clean(source_text)):
        governed = _content(_norms(scope))
        if not governed:
            continue
        head = governed[-1] if post else governed[0]
        negated = content_tokens(scope)
        if not negated or len(negated & have) / len(negated) < 0.6:
            continue
        if _governed(text, head, post, flipped=post) is False:
            return [finding("negation_lost", f"the source says '{cue} {scope}'; the statement has no negation there")]
    return []


_RESTRICTING = frozenset("only alone reserved limited unless except".split())
_COMPARING = frozenset("over rather instead place".split())


def _implied(after: list[str], subject_after: bool) -> bool:
    """Whether the source implies a negation of a word, from the three words `after` it:
    'appropriate only for healthy adults' (so 'not appropriate for the others'), or 'X is
    preferred over Y' when the statement is about Y ('Y is not preferred': `subject_after`,
    the statement's subject comes later in the source's segment)."""
    if _RESTRICTING & set(after):
        return True
    return bool(_COMPARING & set(after)) and subject_after


_SEGMENT = re.compile(r"[;\n]|\.\s")  # a table's cells and labels, a sentence


def _with_aliases(source: str, all_sources: str) -> str:
    """`source` with the long forms of the abbreviations it uses and the abbreviations of the
    long forms it spells out, each a segment of its own ('GFR' is 'glomerular filtration rate')."""
    if not all_sources:
        return source
    index = alias_index(all_sources)
    shorts = [index.pairs[i][0] for i in index.within(set(_norms(source)))]
    return " ; ".join(
        p for p in (source, _spelled_out(source, all_sources).replace("\n", ";"), " ; ".join(shorts)) if p.strip()
    )


#: Cues that negate a thing rather than say that a claim is false ("X rather than Y", "without Y").
_NOT_PLAIN = ("rather than", "instead of", "neither", "nor", "without", "no", "avoid", "avoids")
_NEGATED_COMPARATOR = re.compile(
    r"(?:to )?(?:exceed\w*|more than|less than|fewer than|greater than|above|below|over|under)\s*[≤≥<>]?\s*\d", re.I
)


def negation_added_findings(text: str, source_text: str, context: str = "", all_sources: str = "") -> list[Finding]:
    """A negation the statement puts on words its source unit says without one (and does not
    imply: see `_implied`). A table unit is read with its `context` (caption, column labels),
    which often has the word a row leaves out ('Preferred Agents', 'Criteria for ...'), and
    with the abbreviations the question defines in either form. The word the negation governs
    is the first of its scope the unit has, and the unit must have most of the scope."""
    mine = [(cue, scope) for cue, scope, post in _negations(text) if not post and cue.lower() not in _NOT_PLAIN]
    if not source_text or not mine:
        return []
    source = _with_aliases(
        _clean(" ; ".join(p for p in (source_text, context.replace("\n", ";")) if p.strip())), all_sources
    )
    have = set(_content(_norms(source)))
    segments = _Segments(source)
    subject = next(iter(_content(_norms(text))), None)
    plain = [scope for cue, scope, post in _negations(source) if not post and cue.lower() not in _NOT_PLAIN]
    negated_there = {n for scope in plain for n in _content(_norms(scope))}
    answers: dict[tuple[str, frozenset[str]], bool] = {}
    for cue, scope in mine:
        if _NEGATED_COMPARATOR.match(scope):
            continue  # "should not exceed 10 mEq/L" is a comparator ("limited to 10"), the number check's
        governed = _content(_norms(scope))
        if not governed or len(set(governed) & have) / len(set(governed)) < 0.6:
            continue
        if set(governed[1:]) & negated_there:
            continue  # the unit negates them with another verb: "reduces X, although it does not lower Y"
        # "is not defined by an eGFR ...": a verb the unit never says ("G2; 60-89") is no reason to skip
        head = next(n for n in governed if n in have)
        rest = frozenset(governed[governed.index(head) + 1 :])
        if (head, rest) not in answers:
            answers[head, rest] = _said_plainly(source, segments, head, rest, subject)
        if answers[head, rest]:
            return [
                finding("negation_added", f"the statement says '{cue} {scope}'; its source says it without a negation")
            ]
    return []


class _Segments:
    """A source's segments (`_SEGMENT`: cells, labels, sentences) as normalised words, with
    where each word occurs and where it last occurs in each segment."""

    def __init__(self, source: str) -> None:
        self.norms = [_norms(seg) for seg in _SEGMENT.split(source)]
        self.at: dict[str, list[tuple[int, int]]] = {}
        self.last: list[dict[str, int]] = []
        for k, seg in enumerate(self.norms):
            last: dict[str, int] = {}
            for j, n in enumerate(seg):
                self.at.setdefault(n, []).append((k, j))
                last[n] = j
            self.last.append(last)

    def later(self, k: int, j: int, words: Iterable[str]) -> bool:
        """Whether one of `words` occurs after word j of segment k."""
        return any(self.last[k].get(w, -1) > j for w in words)


def _said_plainly(source: str, segments: _Segments, head: str, rest: frozenset[str], subject: str | None) -> bool:
    """Whether the source says `head` (followed in its segment by a word of `rest`, if any)
    without a negation governing it there and without implying one (`_implied`)."""
    spots = [(k, j) for k, j in segments.at.get(head, ()) if not rest or segments.later(k, j, rest)]
    if not spots or _governed(source, head, post=False, flipped=True):
        return False
    return not any(
        _implied(segments.norms[k][j + 1 : j + 4], subject is not None and segments.later(k, j, [subject]))
        for k, j in spots
    )


def _direction_tokens(text: str) -> list[str]:
    joined = DIRECTION_PHRASES.sub(lambda m: f"{m.group(1)}_{m.group(2)}", text)
    joined = re.sub(r"\bor (more|less|fewer|greater|higher|lower|above|below)\b", r"or_\1", joined, flags=re.I)
    # a comparator before a number is the comparator check's business ("at least 2", "below 30")
    joined = re.sub(r"\b(?:at|no) (?:least|most)\b|\b(?:less|more|greater|fewer|higher|lower) than\b(?= ?\d)"
                    r"|\b(?:above|below|exceeding)\b(?= ?\d)", "cmp", joined, flags=re.I)  # fmt: skip
    return [w.lower() for w in _words(joined)]


class _Neighbours:
    """Words (`_direction_tokens`) with the content word (of their `stems`) just before and
    just after each one, and the (before, after) pairs around the words of each direction pole."""

    def __init__(self, words: list[str], stems: list[str]) -> None:
        self.before, self.after = _content_around(stems)
        self.poles: dict[tuple[str, int], set[tuple[str | None, str | None]]] = {}
        for j, w in enumerate(words):
            if w in DIRECTION:
                self.poles.setdefault(DIRECTION[w], set()).add((self.before[j], self.after[j]))
        self._befores = {pole: {b for b, _ in around} for pole, around in self.poles.items()}
        self._afters = {pole: {a for _, a in around} for pole, around in self.poles.items()}

    def best(self, pole: tuple[str, int], before: str | None, after: str | None) -> int | None:
        """How well the best-placed word of `pole` is placed: 2 for the same word before it
        as `before`, 1 for the same word after it as `after`, 3 for both (None: no such word)."""
        if pole not in self.poles:
            return None
        if before is not None and after is not None and (before, after) in self.poles[pole]:
            return 3
        if before is not None and before in self._befores[pole]:
            return 2
        return 1 if after is not None and after in self._afters[pole] else 0


def _closer_to_opposite(
    mine: _Neighbours, i: int, theirs: _Neighbours, family: str, pole: int, need_match: bool = False
) -> bool:
    """When the unit has both poles ('loop diuretics increase it, whereas thiazides decrease
    it'), the statement's word reads the opposite only if its neighbours match an occurrence of
    the other pole better than every occurrence of its own; `need_match`: and share one at all
    (a direction word the unit does not have anywhere near the same words says nothing)."""
    before, after = mine.before[i], mine.after[i]
    same = theirs.best((family, pole), before, after)
    other = theirs.best((family, 1 - pole), before, after)
    return other is not None and other > (-1 if same is None else same) and (not need_match or other > 0)


_COMPARATIVES = frozenset("more less fewer greater smaller larger higher lower better worse".split())


def _same_compared(mine: _Neighbours, i: int, theirs: _Neighbours, j: int) -> bool:
    """Whether two comparatives compare the same thing: the content word after each."""
    return mine.after[i] == theirs.after[j]


def direction_findings(text: str, source_text: str) -> list[Finding]:
    """higher/lower, increases/decreases, excludes/confirms ...: a direction word of one pole
    where the source unit, in that place, has the other pole of the same family (in that place:
    aligned with it, or, when the unit has only the other pole, anywhere)."""
    if not source_text:
        return []
    mine, theirs = _direction_tokens(text), _direction_tokens(_clean(source_text))
    poles_there = {DIRECTION[w] for w in theirs if w in DIRECTION}
    if not any((DIRECTION[w][0], 1 - DIRECTION[w][1]) in poles_there for w in mine if w in DIRECTION):
        return []  # no word of the statement has its opposite in the unit
    my_stems, their_stems = [_stem(w) for w in mine], [_stem(w) for w in theirs]
    near_mine, near_theirs = _Neighbours(mine, my_stems), _Neighbours(theirs, their_stems)
    matcher = SequenceMatcher(None, my_stems, their_stems, autojunk=False)
    aligned: set[int] = set()
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            aligned.update(range(i1, i2))
        if tag != "replace":
            continue
        there = {DIRECTION[w] for w in theirs[j1:j2] if w in DIRECTION}
        for i in range(i1, i2):
            family, pole = DIRECTION.get(mine[i], ("", -1))
            if (family, 1 - pole) not in there or (family, pole) in there:
                continue
            if (family, pole) in poles_there and not _closer_to_opposite(near_mine, i, near_theirs, family, pole):
                continue
            opposite = next(x for x in theirs[j1:j2] if DIRECTION.get(x) == (family, 1 - pole))
            if mine[i] in _COMPARATIVES and not _same_compared(
                near_mine, i, near_theirs, j1 + theirs[j1:j2].index(opposite)
            ):
                continue  # "more reliably" is no flip of "less toxic": a comparative flips what it compares
            return [finding("direction_flip", f"says {mine[i]!r} where the source says {opposite!r}")]
    for i, w in enumerate(mine):
        family, pole = DIRECTION.get(w, ("", -1))
        if i in aligned or (family, 1 - pole) not in poles_there or (family, pole) in poles_there:
            continue
        if NEGATION_ANY.search(" ".join(mine[max(0, i - 3) : i])):
            continue  # "did not lower mortality" says what "no mortality benefit" says
        if _closer_to_opposite(near_mine, i, near_theirs, family, pole, need_match=True):
            opposite = next(x for x in theirs if DIRECTION.get(x) == (family, 1 - pole))
            return [finding("direction_flip", f"says {w!r} where the source says {opposite!r}")]
    return []


def hedge_findings(text: str, source_text: str) -> list[Finding]:
    """A clause the source unit hedges ('is usually drug induced') that the statement states
    without any hedge ('is drug induced'). The hedged clause is found by the word the hedge
    governs (the first after it) and the words that follow it."""
    if not source_text:
        return []
    source = _clean(source_text)
    hedges = list(SOURCE_HEDGE.finditer(source))
    if not hedges:
        return []
    # an abbreviation the statement defines in parentheses does not end its clause
    unbracketed = re.sub(r"\s*\(([A-Z][A-Za-z0-9-]{1,9})\)", r" \1", text)
    clauses = _clauses(unbracketed)
    norms = [set(_norms(clause)) for clause in clauses]
    having: dict[str, list[int]] = {}  # the clauses each word is in
    for c, words in enumerate(norms):
        for n in words:
            having.setdefault(n, []).append(c)
    breaks = [b.start() for b in _CLAUSE_BREAK.finditer(source)]
    answers: dict[tuple[str, frozenset[str]], int | None] = {}
    for m in hedges:
        k = bisect_left(breaks, m.end())  # the hedged clause ends at the first break after it
        after = cut_at_new_clause(source[m.end() : breaks[k] if k < len(breaks) else len(source)])
        head = next((n for n in _norms(after) if n not in _FUNCTION_WORDS), None)
        hedged = frozenset(n for n in _norms(after) if n not in STOPWORDS or n == "patient")  # "most patients"
        if not head or not hedged:
            continue
        if (head, hedged) not in answers:  # the first clause of the statement saying the same
            answers[head, hedged] = next(
                (c for c in having.get(head, ()) if len(hedged & norms[c]) / len(hedged) >= 0.6), None
            )
        c = answers[head, hedged]
        if c is not None and not HEDGE.search(clauses[c]):
            return [finding("dropped_hedge", f"the source says {m.group(0)!r}; the statement states it as absolute")]
    return []


def swapped_findings(text: str, unit: SourceUnit, all_sources: str) -> list[Finding]:
    """A term of a kind (drug, disease, test, organism, route, sex ...) that the source unit
    does not contain, where the unit has another term of that kind in the same place; or a
    unit's drug, disease or organism replaced, word for word, by a word the unit lacks."""
    if wrong := _misabbreviated(text, all_sources):
        given, long, short = wrong
        return [finding("swapped_term", f"abbreviates {long!r} as {given!r}; the question writes it {short!r}")]
    source = _clean(f"{unit.text} \n {unit.context}")
    source = f"{source} \n {_spelled_out(source, all_sources)}"
    mine, theirs = _words(text), _words(source)
    my_norms, their_norms = [_norm(w) for w in mine], [_norm(w) for w in theirs]
    known = set(their_norms)
    known |= {b for a, b in _SYNONYMS if a in known} | {a for a, b in _SYNONYMS if b in known}
    shorts = {w for w in theirs if _ACRONYM.fullmatch(w)}
    if all_sources:
        alias_index(all_sources).absorb(known, shorts)
    known |= _partly_spelled(mine, shorts)
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, my_norms, their_norms, autojunk=False).get_opcodes():
        new_words = [i for i in range(i1, i2) if my_norms[i] not in known] if tag == "replace" else []
        if not new_words:
            continue
        forms = _Inflections(their_norms[j1:j2])
        first_of: dict[str | None, str] = {}  # the first word of each kind the unit has here
        for u in theirs[j1:j2]:
            first_of.setdefault(term_category(u), u)
        for i in new_words:
            if forms.of(my_norms[i]):
                continue
            kind = term_category(mine[i])
            if kind is not None and kind in first_of:
                return [finding("swapped_term", f"says {mine[i]!r} where its source says {first_of[kind]!r}")]
            replaced = theirs[j1] if j2 - j1 == 1 else ""
            if i2 - i1 == 1 and term_category(replaced) in _NAMING and len(mine[i]) >= 5:
                return [finding("swapped_term", f"says {mine[i]!r} where its source says {replaced!r}")]
    # a term of the statement the unit has in no form, beside the same word as one of the unit's
    new_terms = [i for i, w in enumerate(mine) if term_category(w) is not None and my_norms[i] not in known]
    known_forms = _Inflections(known) if new_terms else None
    new_terms = [i for i in new_terms if known_forms and not known_forms.of(my_norms[i])]
    if not new_terms:
        return []
    mine_set, beside = set(my_norms), _Adjacent(text, source)
    near_mine, near_theirs = _content_around(my_norms), _content_around(their_norms)
    placed: dict[tuple[str | None, int, str | None], list[int]] = {}  # the unit's terms by kind and neighbour
    for j, u in enumerate(theirs):
        if (kind := term_category(u)) is not None:
            for side in (0, 1):
                placed.setdefault((kind, side, near_theirs[side][j]), []).append(j)
    for i in new_terms:
        kind = term_category(mine[i])
        near = [(side, word) for side, word in enumerate((near_mine[0][i], near_mine[1][i])) if word is not None]
        same_place = {j for side, word in near for j in placed.get((kind, side, word), ())}
        for j in sorted(same_place):
            if their_norms[j] not in mine_set or beside(my_norms[i], their_norms[j]):
                return [finding("swapped_term", f"says {mine[i]!r} where its source says {theirs[j]!r}")]
    return []


_ACRONYM = re.compile(r"[A-Z][A-Za-z0-9]*[A-Z][A-Za-z0-9]*")


def _misabbreviated(text: str, all_sources: str) -> tuple[str, str, str] | None:
    """(abbreviation, long form, the question's abbreviation) when the statement spells out a
    long form the question defines and gives it another abbreviation: 'heart failure with
    reduced ejection fraction (HFpEF)' where the question writes it 'HFrEF'."""
    if not all_sources:
        return None
    index = alias_index(all_sources)
    for i, m in index.spelled_out(text):
        (short, long), given = index.pairs[i], m.group(1)
        if given in (short, f"{short}s") or not _ACRONYM.fullmatch(given):
            continue
        # the question's own definition of it ("... kidney disease (CKD)" when it also defines "(KD)")
        if any(
            re.search(rf"{re.escape(index.pairs[j][1])}\s*\({re.escape(given)}\)", text, re.I)
            for j in index.by_short.get(given, ())
        ):
            continue
        return given, long, short
    return None


def _partly_spelled(words: list[str], shorts: set[str]) -> set[str]:
    """The normalised abbreviations of `words` that are part of a phrase which spells out one of
    `shorts` with them kept: 'upper GI bleeding' is 'UGIB' (so 'GI' is no new term)."""
    wanted = {s.upper() for s in shorts}
    found: set[str] = set()
    for a in range(len(words)):
        for b in range(a + 2, min(a + 6, len(words)) + 1):
            span = words[a:b]
            kept = [w for w in span if _ACRONYM.fullmatch(w)]
            if kept and len(kept) < len(span):
                spelled = "".join(w.upper() if _ACRONYM.fullmatch(w) else w[0].upper() for w in span)
                if spelled in wanted:
                    found |= {_norm(w) for w in kept}
    return found


def _pairs(text: str) -> set[tuple[str, str]]:
    """Adjacent words (normalised) with no punctuation between them."""
    out = set()
    for piece in re.split(r"[,;:()\n.]", text):
        norms = _norms(piece)
        out |= set(zip(norms, norms[1:], strict=False))
    return out


class _Adjacent:
    """`_pairs` of a statement and of its unit, the statement's by word, read once."""

    def __init__(self, text: str, source: str) -> None:
        self.text, self.source = text, source
        self._theirs: set[tuple[str, str]] | None = None
        self._after: dict[str, list[str]] = {}  # the words right after each word of the statement
        self._before: dict[str, list[str]] = {}

    def __call__(self, mine: str, theirs: str) -> bool:
        """Whether the statement has `mine` right beside a content word the unit has right
        beside `theirs`, on the same side ('stable children' where the unit says 'stable
        adults'): the swap, even when the statement names the unit's term elsewhere ('... in
        hospitalized adults')."""
        if self._theirs is None:
            self._theirs = _pairs(self.source)
            for a, b in _pairs(self.text):
                self._after.setdefault(a, []).append(b)
                self._before.setdefault(b, []).append(a)
        pairs = self._theirs
        return any(
            b not in STOPWORDS and ((theirs, b) in pairs or (b == mine and (mine, theirs) in pairs))
            for b in self._after.get(mine, ())
        ) or any(a != mine and a not in STOPWORDS and (a, theirs) in pairs for a in self._before.get(mine, ()))


class _Inflections:
    """Words, so that whether a word is another form of one of them ('severe' and 'severely',
    'hypertension' and 'hypertensive') is looked up: by the word's prefixes, the words'
    prefixes and their first seven letters. A word of fewer than four letters, or with a
    hyphen ('methicillin-susceptible' / '-resistant' are two terms), has no other form."""

    def __init__(self, words: Iterable[str]) -> None:
        self.words = {w for w in words if len(w) >= 4 and "-" not in w}
        self.prefixes = {w[:k] for w in self.words for k in range(4, len(w) + 1)}
        self.sevens = {w[:7] for w in self.words if len(w) >= 7}

    def of(self, a: str) -> bool:
        """Whether `a` starts one of the words, one of them starts `a`, or they share seven letters."""
        if len(a) < 4 or "-" in a:
            return False
        return a in self.prefixes or any(a[:k] in self.words for k in range(4, len(a) + 1)) or a[:7] in self.sevens


def _content_around(norms: list[str]) -> tuple[list[str | None], list[str | None]]:
    """The content word before, and the one after, each word."""
    before: list[str | None] = []
    after: list[str | None] = [None] * len(norms)
    last: str | None = None
    for n in norms:
        before.append(last)
        last = n if n not in STOPWORDS else last
    last = None
    for k in range(len(norms) - 1, -1, -1):
        after[k] = last
        last = norms[k] if norms[k] not in STOPWORDS else last
    return before, after


def check(statement: Statement, unit: SourceUnit | str, all_sources: str) -> list[Finding]:
    """Findings for one statement. `unit` is the sentence/key point/row it came from (a
    SourceUnit, or just its text; '' if unknown), `all_sources` everything the question says."""
    unit = unit if isinstance(unit, SourceUnit) else SourceUnit(text=unit)
    text = statement.statement
    return [
        *cloze_findings(statement),
        *wording_findings(text),
        *subject_findings(statement, unit),
        *faithfulness_findings(text, all_sources, unit),
        *negation_findings(text, unit.text),
        *negation_added_findings(text, unit.text, unit.context, all_sources),
        *direction_findings(text, unit.text),
        *swapped_findings(text, unit, all_sources),
        *hedge_findings(text, unit.text),
    ]


class RestatementIndex:
    """The earlier statements a statement may restate, found without comparing it with every
    one of them (prefix filtering, as in Bayardo et al., "Scaling up all pairs similarity
    search"). With the content words of all statements in one order, rarest first, two word
    sets whose Jaccard similarity reaches t share a word among the first |A| - ceil(t·|A|) + 1
    words of each: the smallest word they share is among those of both. So each statement is
    posted under its first words only, and looks up the statements posted under its own; of
    those, the ones too short or too long to reach t (|B| < t·|A|) are dropped too. What it
    leaves out never reaches `threshold` in `similarity`, so `restates` finds nothing there."""

    _SLACK = 1e-9  # for the rounding in `similarity`'s division: a pair at the limit is kept

    def __init__(self, texts: Iterable[str], threshold: float = NEAR_DUPLICATE) -> None:
        self.threshold = threshold
        self._counts = Counter(t for text in texts for t in content_tokens(text))
        self._posted: dict[str, list[int]] = {}
        self._sizes: dict[int, int] = {}
        self._empty: list[int] = []  # statements without content words: similar (1.0) to each other only

    def _prefix(self, tokens: frozenset[str]) -> list[str]:
        need = max(1, math.ceil((self.threshold - self._SLACK) * len(tokens)))
        return sorted(tokens, key=lambda t: (self._counts[t], t))[: len(tokens) - need + 1]

    def add(self, key: int, text: str) -> None:
        """Post a statement under its `key` (its index: keys increase) for later ones to find."""
        tokens = content_tokens(text)
        self._sizes[key] = len(tokens)
        if not tokens:
            self._empty.append(key)
        elif 0 < self.threshold <= 1:
            for t in self._prefix(tokens):
                self._posted.setdefault(t, []).append(key)

    def candidates(self, text: str) -> list[int]:
        """The keys of the posted statements `text` may restate, in the order they were added."""
        tokens, limit = content_tokens(text), self.threshold - self._SLACK
        if not self.threshold <= 1:
            return []  # no similarity is above 1 (or reaches NaN)
        if self.threshold <= 0:
            return sorted(self._sizes)  # every pair reaches it
        if not tokens:
            return list(self._empty)
        keys = {k for t in self._prefix(tokens) for k in self._posted.get(t, ())}
        if limit > 0:  # the similarity is at most the smaller set's size over the larger's
            keys = {k for k in keys if limit * len(tokens) <= self._sizes[k] <= len(tokens) / limit}
        return sorted(keys)


def duplicates(statements: list[Statement], threshold: float = NEAR_DUPLICATE) -> dict[str, Finding]:
    """A finding for each statement that repeats (or nearly repeats) an earlier one: the first
    earlier statement, itself no repeat, that it restates. Only the earlier statements a
    `RestatementIndex` finds are compared: the others cannot reach `threshold`."""
    found: dict[str, Finding] = {}
    index = RestatementIndex([s.statement for s in statements], threshold)
    for i, s in enumerate(statements):
        for j in index.candidates(s.statement):
            earlier = statements[j]
            if earlier.id in found:
                continue
            score = restates(s.statement, earlier.statement, threshold)
            if score is not None:
                kind = "repeats" if score == 1.0 else f"nearly repeats ({score:.2f})"
                found[s.id] = finding("duplicate", f"{kind} statement {earlier.id}")
                break
        if s.id not in found:  # a repeat is never compared again
            index.add(i, s.statement)
    return found
