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

import re
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache

from mksap.contracts.statements import Finding, Statement, aligned_starts
from mksap_plugins.stages.nlp_rules import STOPWORDS, abbreviation_pairs, phrases
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
_LIST = re.compile(r"(?:[^,;:()]+,\s){2,}(?:and|or)\s[^,;:()]+|(?:[^;]+;\s){2,}[^;]+")
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
    if m := _LIST.search(text):
        items = max(m.group(0).count(",") + 1, m.group(0).count(";") + 1)
        found.append(finding("list_tested", f"a list of {items} items in one statement"))
    return found


@lru_cache(maxsize=1024)
def aliases(all_sources: str) -> tuple[tuple[str, str], ...]:
    """(short form, long form) of every abbreviation the question defines, as 'long form
    (SHORT)' or in a legend 'SHORT = long form'."""
    pairs = [(short, long) for long, short in abbreviation_pairs(all_sources)]
    pairs += [(m.group(1), m.group(2)) for m in re.finditer(r"\b([A-Za-z0-9-]{2,10}) = ([^;.\n]+)", all_sources)]
    return tuple(pairs)


def _spelled_out(text: str, all_sources: str) -> str:
    """The long forms of the abbreviations `text` uses (so 'SGLT2' brings in its '2')."""
    words = set(_words(text))
    return " \n ".join(long for short, long in aliases(all_sources) if short in words) if all_sources else ""


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


def faithfulness_findings(text: str, all_sources: str, unit: SourceUnit | None = None) -> list[Finding]:
    """Numbers must occur in the question; with a known source unit, in that unit (with the
    caption and labels of a table row, and the long forms of its abbreviations), together
    with their units and comparators."""
    everywhere = quantities(all_sources)
    values = {q.value for q in everywhere}
    own: tuple[Quantity, ...] | None = None
    own_text = ""
    named: set[str] = set()  # bare numbers of the unit's spelled-out names ("cotransporter 2")
    spelled: set[tuple[str, str]] = set()  # numbers the unit writes as words, with the word after
    if unit and unit.text:
        own_text = f"{unit.text} \n {unit.context}"
        own = quantities(own_text)
        named = {q.value for q in quantities(_spelled_out(own_text, all_sources)) if not q.unit and not q.comparator}
        words = [w.lower() for w in _words(own_text)]
        spelled = {
            (_NUMBER_WORDS[w], nxt) for w, nxt in zip(words, [*words[1:], ""], strict=True) if w in _NUMBER_WORDS
        }
    own_values = {q.value for q in own} if own is not None else values
    found = []
    for q in quantities(text):
        said = any(v == q.value and (not q.unit or nxt == q.unit.lower()) for v, nxt in spelled)
        if q.value not in own_values and said and not q.comparator:
            continue  # "two of three criteria" said as "2 of 3", "two weeks" as "2 weeks"
        if q.value not in values:
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
        pool = own if own is not None else everywhere
        same = [s for s in pool if s.value == q.value]
        header_unit = q.unit and own is not None and f"({q.unit})" in own_text  # "Systolic (mm Hg)": the column's unit
        if q.unit and not header_unit and canonical_unit(q.unit) not in {canonical_unit(s.unit) for s in same}:
            found.append(finding("unit_not_in_source", f"'{q.value} {q.unit}' does not occur in the source"))
        elif q.comparator and q.comparator not in _comparators(
            same, pool, own_text if own is not None else all_sources
        ):
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


def _comparators(same: list[Quantity], pool: tuple[Quantity, ...], text: str) -> set[str | None]:
    """The comparators the source gives a value: its own, the one a range's first value
    carries ('≥20–30' is '20–30 or more'), and one said in words ('limited to 8–10')."""
    found: set[str | None] = {s.comparator for s in same}
    for s in same:
        found |= {o.comparator for o in pool if (o.start, o.end) == (s.start, s.end)}
        before = text[max(0, s.start - 30) : s.start]
        found |= {sign for rx, sign in _SAID_COMPARATOR if rx.search(before)}
    return found


def _clauses(text: str) -> list[str]:
    """The clauses of `text`: split at punctuation, at subordinating conjunctions, and at an
    'and'/'or' that starts a clause of its own."""
    out = []
    for piece in _CLAUSE_BREAK.split(text):
        rest = piece.strip()
        while rest:
            head = cut_at_new_clause(rest).strip()
            out.append(head or rest)
            rest = re.sub(r"^(?:and|or)\s+", "", rest[len(head) :].strip(), flags=re.I) if head else ""
    return [c for c in out if c]


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


def _governed(text: str, head: str, post: bool, flipped: bool) -> bool | None:
    """Whether a negation governs an occurrence of `head` (a normalised word) in `text`: a cue
    among the few words before it in its clause (after it, for what a post-cue such as 'is
    unnecessary' follows), the word itself ('ineffective'), or, with `flipped`, a plain
    negation on the other side ('does not need X' for 'X is unnecessary'). None: no `head`."""
    seen = None
    for clause in _clauses(text):
        words = _words(clause)
        for i, w in enumerate(words):
            if _norm(w) != head:
                continue
            seen = False
            before, after = " ".join(words[max(0, i - _NEAR) : i]), " ".join(words[i + 1 : i + 1 + _NEAR])
            near, other = (after, before) if post else (before, after)
            if NEGATION_ANY.search(w) or NEGATION_ANY.search(near) or _CONDITION_NEGATION.search(near):
                return True
            if flipped and NEGATION_ANY.search(other):
                return True
    return seen


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


def _implied(their: list[str], j: int, subject: str | None) -> bool:
    """Whether the source implies a negation of its word j: 'appropriate only for healthy
    adults' (so 'not appropriate for the others'), or 'X is preferred over Y' when the statement
    is about Y ('Y is not preferred')."""
    after = their[j + 1 : j + 4]
    if _RESTRICTING & set(after):
        return True
    return bool(_COMPARING & set(after)) and subject is not None and subject in their[j + 1 :]


_SEGMENT = re.compile(r"[;\n]|\.\s")  # a table's cells and labels, a sentence


def _with_aliases(source: str, all_sources: str) -> str:
    """`source` with the long forms of the abbreviations it uses and the abbreviations of the
    long forms it spells out, each a segment of its own ('GFR' is 'glomerular filtration rate')."""
    if not all_sources:
        return source
    norms = set(_norms(source))
    shorts = [short for short, long in aliases(all_sources) if set(_norms(long)) <= norms]
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
    if not source_text:
        return []
    source = _with_aliases(
        _clean(" ; ".join(p for p in (source_text, context.replace("\n", ";")) if p.strip())), all_sources
    )
    their_norms = _norms(source)
    have = set(_content(their_norms))
    segments = [_norms(seg) for seg in _SEGMENT.split(source)]
    subject = next(iter(_content(_norms(text))), None)
    plain = [scope for cue, scope, post in _negations(source) if not post and cue.lower() not in _NOT_PLAIN]
    for cue, scope, post in _negations(text):
        if post or cue.lower() in _NOT_PLAIN:
            continue
        if _NEGATED_COMPARATOR.match(scope):
            continue  # "should not exceed 10 mEq/L" is a comparator ("limited to 10"), the number check's
        governed = _content(_norms(scope))
        if not governed or len(set(governed) & have) / len(set(governed)) < 0.6:
            continue
        if any(set(governed[1:]) & set(_content(_norms(sc))) for sc in plain):
            continue  # the unit negates them with another verb: "reduces X, although it does not lower Y"
        # "is not defined by an eGFR ...": a verb the unit never says ("G2; 60-89") is no reason to skip
        head = next(n for n in governed if n in have)
        rest = set(governed[governed.index(head) + 1 :])
        spots = [
            (seg, j)
            for seg in segments
            for j, n in enumerate(seg)
            if n == head and (not rest or rest & set(seg[j + 1 :]))
        ]
        if spots and not _governed(source, head, post=False, flipped=True):
            if any(_implied(seg, j, subject) for seg, j in spots):
                continue
            return [
                finding("negation_added", f"the statement says '{cue} {scope}'; its source says it without a negation")
            ]
    return []


def _direction_tokens(text: str) -> list[str]:
    joined = DIRECTION_PHRASES.sub(lambda m: f"{m.group(1)}_{m.group(2)}", text)
    joined = re.sub(r"\bor (more|less|fewer|greater|higher|lower|above|below)\b", r"or_\1", joined, flags=re.I)
    # a comparator before a number is the comparator check's business ("at least 2", "below 30")
    joined = re.sub(r"\b(?:at|no) (?:least|most)\b|\b(?:less|more|greater|fewer|higher|lower) than\b(?= ?\d)"
                    r"|\b(?:above|below|exceeding)\b(?= ?\d)", "cmp", joined, flags=re.I)  # fmt: skip
    return [w.lower() for w in _words(joined)]


def _before_after(words: list[str], i: int) -> tuple[str | None, str | None]:
    """The content words just before and just after word i."""
    before = next((words[k] for k in range(i - 1, -1, -1) if words[k] not in STOPWORDS), None)
    after = next((words[k] for k in range(i + 1, len(words)) if words[k] not in STOPWORDS), None)
    return before, after


def _closer_to_opposite(
    mine: list[str], i: int, theirs: list[str], family: str, pole: int, need_match: bool = False
) -> bool:
    """When the unit has both poles ('loop diuretics increase it, whereas thiazides decrease
    it'), the statement's word reads the opposite only if its neighbours match an occurrence of
    the other pole better than every occurrence of its own; `need_match`: and share one at all
    (a direction word the unit does not have anywhere near the same words says nothing)."""
    mine_stems, their_stems = [_stem(w) for w in mine], [_stem(w) for w in theirs]
    before, after = _before_after(mine_stems, i)

    def score(j: int) -> int:
        b, a = _before_after(their_stems, j)
        return 2 * (b is not None and b == before) + (a is not None and a == after)

    same = [score(j) for j, w in enumerate(theirs) if DIRECTION.get(w) == (family, pole)]
    other = [score(j) for j, w in enumerate(theirs) if DIRECTION.get(w) == (family, 1 - pole)]
    return bool(other) and max(other) > max(same, default=-1) and (not need_match or max(other) > 0)


_COMPARATIVES = frozenset("more less fewer greater smaller larger higher lower better worse".split())


def _same_compared(mine: list[str], i: int, theirs: list[str], j: int) -> bool:
    """Whether two comparatives compare the same thing: the content word after each."""
    return _before_after([_stem(w) for w in mine], i)[1] == _before_after([_stem(w) for w in theirs], j)[1]


def direction_findings(text: str, source_text: str) -> list[Finding]:
    """higher/lower, increases/decreases, excludes/confirms ...: a direction word of one pole
    where the source unit, in that place, has the other pole of the same family (in that place:
    aligned with it, or, when the unit has only the other pole, anywhere)."""
    if not source_text:
        return []
    mine, theirs = _direction_tokens(text), _direction_tokens(_clean(source_text))
    poles_there = {DIRECTION[w] for w in theirs if w in DIRECTION}
    matcher = SequenceMatcher(None, [_stem(w) for w in mine], [_stem(w) for w in theirs], autojunk=False)
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
            if (family, pole) in poles_there and not _closer_to_opposite(mine, i, theirs, family, pole):
                continue
            opposite = next(x for x in theirs[j1:j2] if DIRECTION.get(x) == (family, 1 - pole))
            if mine[i] in _COMPARATIVES and not _same_compared(mine, i, theirs, j1 + theirs[j1:j2].index(opposite)):
                continue  # "more reliably" is no flip of "less toxic": a comparative flips what it compares
            return [finding("direction_flip", f"says {mine[i]!r} where the source says {opposite!r}")]
    for i, w in enumerate(mine):
        family, pole = DIRECTION.get(w, ("", -1))
        if i in aligned or (family, 1 - pole) not in poles_there or (family, pole) in poles_there:
            continue
        if NEGATION_ANY.search(" ".join(mine[max(0, i - 3) : i])):
            continue  # "did not lower mortality" says what "no mortality benefit" says
        if _closer_to_opposite(mine, i, theirs, family, pole, need_match=True):
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
    # an abbreviation the statement defines in parentheses does not end its clause
    unbracketed = re.sub(r"\s*\(([A-Z][A-Za-z0-9-]{1,9})\)", r" \1", text)
    mine = [(clause, _norms(clause)) for clause in _clauses(unbracketed)]
    for m in SOURCE_HEDGE.finditer(source):
        after = cut_at_new_clause(_CLAUSE_BREAK.split(source[m.end() :])[0])
        head = next((n for n in _norms(after) if n not in _FUNCTION_WORDS), None)
        hedged = {n for n in _norms(after) if n not in STOPWORDS or n == "patient"}  # "most patients"
        if not head or not hedged:
            continue
        for clause, norms in mine:
            if head in norms and len(hedged & set(norms)) / len(hedged) >= 0.6:
                if not HEDGE.search(clause):
                    hedge = m.group(0)
                    return [finding("dropped_hedge", f"the source says {hedge!r}; the statement states it as absolute")]
                break
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
    for short, long in aliases(all_sources) if all_sources else ():
        if set(_norms(long)) <= known:
            known.add(_norm(short))
            shorts.add(short)
    known |= _partly_spelled(mine, shorts)
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, my_norms, their_norms, autojunk=False).get_opcodes():
        if tag != "replace":
            continue
        for i in range(i1, i2):
            if my_norms[i] in known or any(_inflected(my_norms[i], u) for u in their_norms[j1:j2]):
                continue
            kind = term_category(mine[i])
            if kind is not None and (same := [u for u in theirs[j1:j2] if term_category(u) == kind]):
                return [finding("swapped_term", f"says {mine[i]!r} where its source says {same[0]!r}")]
            replaced = theirs[j1] if j2 - j1 == 1 else ""
            if i2 - i1 == 1 and term_category(replaced) in _NAMING and len(mine[i]) >= 5:
                return [finding("swapped_term", f"says {mine[i]!r} where its source says {replaced!r}")]
    mine_set = set(my_norms)
    for i, w in enumerate(mine):
        kind = term_category(w)
        if kind is None or my_norms[i] in known or any(_inflected(my_norms[i], u) for u in known):
            continue
        for j, u in enumerate(theirs):
            if (
                term_category(u) == kind
                and _same_neighbour(my_norms, i, their_norms, j)
                and (their_norms[j] not in mine_set or _beside(text, my_norms[i], source, their_norms[j]))
            ):
                return [finding("swapped_term", f"says {w!r} where its source says {u!r}")]
    return []


_ACRONYM = re.compile(r"[A-Z][A-Za-z0-9]*[A-Z][A-Za-z0-9]*")


def _misabbreviated(text: str, all_sources: str) -> tuple[str, str, str] | None:
    """(abbreviation, long form, the question's abbreviation) when the statement spells out a
    long form the question defines and gives it another abbreviation: 'heart failure with
    reduced ejection fraction (HFpEF)' where the question writes it 'HFrEF'."""
    pairs = aliases(all_sources) if all_sources else ()
    for short, long in pairs:
        for m in re.finditer(rf"(?<![\w-]){re.escape(long)}\s*\(([^()\s,;]{{2,10}})\)", text, re.I):
            given = m.group(1)
            if given in (short, f"{short}s") or not _ACRONYM.fullmatch(given):
                continue
            # the question's own definition of it ("... kidney disease (CKD)" when it also defines "(KD)")
            if any(s == given and re.search(rf"{re.escape(lf)}\s*\({re.escape(s)}\)", text, re.I) for s, lf in pairs):
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


def _beside(text: str, mine: str, source: str, theirs: str) -> bool:
    """Whether the statement has `mine` right beside a content word the unit has right beside
    `theirs`, on the same side ('stable children' where the unit says 'stable adults'): the
    swap, even when the statement names the unit's term elsewhere ('... in hospitalized adults')."""
    mine_pairs, their_pairs = _pairs(text), _pairs(source)
    return any(
        (a == mine and (theirs, b) in their_pairs) or (b == mine and (a, theirs) in their_pairs)
        for a, b in mine_pairs
        if (b if a == mine else a) not in STOPWORDS
    )


def _inflected(a: str, b: str) -> bool:
    """'severe' and 'severely', 'hypertension' and 'hypertensive': one word in two forms."""
    if min(len(a), len(b)) < 4 or "-" in a + b:  # "methicillin-susceptible" / "-resistant" are two terms
        return False
    return a.startswith(b) or b.startswith(a) or (len(a) >= 7 and a[:7] == b[:7])


def _same_neighbour(a: list[str], i: int, b: list[str], j: int) -> bool:
    """Whether word i of a and word j of b share the content word before or after them."""

    def near(words: list[str], k: int, step: int) -> str | None:
        k += step
        while 0 <= k < len(words):
            if words[k] not in STOPWORDS:
                return words[k]
            k += step
        return None

    return any(near(a, i, s) is not None and near(a, i, s) == near(b, j, s) for s in (-1, 1))


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


def duplicates(statements: list[Statement], threshold: float = NEAR_DUPLICATE) -> dict[str, Finding]:
    """A finding for each statement that repeats (or nearly repeats) an earlier one."""
    found: dict[str, Finding] = {}
    for i, s in enumerate(statements):
        for earlier in statements[:i]:
            if earlier.id in found:
                continue
            score = restates(s.statement, earlier.statement, threshold)
            if score is not None:
                kind = "repeats" if score == 1.0 else f"nearly repeats ({score:.2f})"
                found[s.id] = finding("duplicate", f"{kind} statement {earlier.id}")
                break
    return found
