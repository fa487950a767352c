"""The rule-based NLP tier, and the artifact shapes both tiers fill.

Sentences come from the parse stage; for each one this finds abbreviation pairs
("left bundle branch block (LBBB)", a simplified Schwartz-Hearst match), quantities, candidate
terms, negated spans (NegEx-style cues and scopes), case-specific wording and hints that the
sentence joins several facts. The spaCy tier adds the model's entities and sentence splits.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

from mksap_plugins.stages.quantities import quantities, quantity_spans
from mksap_plugins.stages.sentences import MAX_SENTENCE_CHARS, chop
from mksap_plugins.stages.wording import case_wording, negated_spans

STOPWORDS = frozenset(
    """a an the and or but nor of in on at to for from by with without within into onto over under
    as than then that this these those there their they them it its is are was were be been being
    has have had having do does did done can could may might must should would will shall not no
    if when while which who whom whose what where why how also only more most less least very
    such both either neither each every all any some other another same so because although though
    after before during until since between among per via whether often usually generally
    patient patients including include includes included cannot vs e.g i.e""".split()
)
#: Common verbs and adjectives that make poor cloze answers on their own; they end a term.
WEAK_WORDS = frozenset(
    """preferred recommended reduce reduces reduced lower lowers lowered increase increases increased
    cause causes caused use used uses given give considered consider required require requires needed
    need needs associated indicated indicate indicates suggest suggests appropriate effective common
    typical typically usual usually first next best likely unlikely important useful helpful
    treated treat treats managed manage measured measure performed perform obtained obtain started
    start stopped stop added add remains remain reserved defined define found show shows showed
    offers offer provides provide allows allow helps help make makes made occur occurs adds raises carries
    slow slows lack lacks come comes target targets act acts induces lengthens persists protects reflects
    produces warrants combine combined combines rises rise fall falls improve improves worsen worsens
    confirm confirms prevent prevents predict predicts suggestive consistent compatible expected needed
    still already now later again alone rather rests raise appear appears presents present involves involve
    undergo undergoes spread spreads treating lasts last recur recurs begins begin erupt erupts fade fades
    lengthen lengthens remove removes fit fits apply applies change changes offered""".split()
)
_ABBREV = re.compile(r"\(([A-Za-z][A-Za-z0-9\-]{1,9}s?)\)")
_WORD = re.compile(r"[A-Za-z0-9][\w\-–'/]*")
_LIST = re.compile(r"(?:[^,;:()]+,\s){2,}(?:and|or)\s[^,;:()]+")  # what `list_items` finds, linearly
_DELIMITER = re.compile(r"[,;:()]")
_LAST_ITEM = re.compile(r"(?:and|or)\s[^,;:()]")


class Term(BaseModel):
    """A span of the sentence worth knowing about."""

    text: str
    kind: str = Field(description="abbreviation | number | phrase | entity")
    label: str | None = Field(None, description="the model's entity label (spaCy tier)")


class Abbreviation(BaseModel):
    long: str
    short: str


class Negation(BaseModel):
    cue: str
    scope: str = Field(description="the words the cue negates")


class SentenceInfo(BaseModel):
    """What the nlp stage knows about one source sentence (or key point)."""

    text: str
    terms: list[Term] = Field(default_factory=list, description="cloze-worthy terms, best first")
    entities: list[Term] = Field(default_factory=list, description="biomedical entities")
    abbreviations: list[Abbreviation] = Field(default_factory=list)
    negations: list[Negation] = Field(default_factory=list)
    atomicity: list[str] = Field(default_factory=list, description="hints that several facts are joined")
    case_specific: list[str] = Field(default_factory=list, description="wording about the case or the source")


def _last_words(text: str, end: int, n: int) -> list[str]:
    """The last `n` words of `text[:end]`, reading back only as far as they reach (reading the
    whole text before every abbreviation made this quadratic). Only the first word a window
    finds may be cut by it, so more than `n` words (or the whole text) settle it."""
    width = 256
    while True:
        start = max(0, end - width)
        words = [m.group(0) for m in _WORD.finditer(text, start, end)]
        if start == 0 or len(words) > n:
            return words[-n:]
        width *= 4


def _long_form(text: str, end: int, first: str) -> str:
    """The long form: from the last `first` word before `end` to the end, trailing space off."""
    stop = end
    while stop > 0 and text[stop - 1].isspace():
        stop -= 1
    found = text.rfind(first, 0, stop)
    return text[found if found >= 0 else max(stop - 1, 0) : stop]


def abbreviation_pairs(text: str) -> list[tuple[str, str]]:
    """(long form, short form) pairs written as 'long form (SHORT)'."""
    pairs = []
    for m in _ABBREV.finditer(text):
        short = m.group(1)
        letters = [c.lower() for c in short if c.isalpha()]
        if len(letters) < 2 or not any(c.isupper() for c in short):
            continue
        words = _last_words(text, m.start(), len(letters) + 3)
        # the shortest tail of words whose first word starts with the first letter and whose
        # characters contain the letters in order
        exact = words[-len(letters) :]
        if len(exact) == len(letters) and [w[0].lower() for w in exact] == letters:
            pairs.append((_long_form(text, m.start(), exact[0]), short))
            continue
        for n in range(1, len(words) + 1):
            tail = words[-n:]
            if tail[0][0].lower() != letters[0]:
                continue
            if _in_order(letters, " ".join(tail).lower()) and n >= max(1, len(letters) - 3):
                pairs.append((_long_form(text, m.start(), tail[0]), short))
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
    """Runs of content words between stop words, weak words and punctuation: candidate terms."""
    out = []
    for chunk in re.split(r"[,;:()\[\]]|\s[–-]\s|(?<!\bvs)(?<!\b[A-Z])(?<!\be\.g)(?<!\bi\.e)\.(?=\s|$)", text):
        run: list[str] = []
        for word in chunk.split():
            bare = word.strip("\"'")
            bare = bare if re.fullmatch(r"[A-Z]\.", bare) else bare.strip(".")
            low = bare.lower()
            if not bare or low in STOPWORDS or low in WEAK_WORDS or (low.endswith("ly") and len(low) > 4):
                if run:
                    out.append(" ".join(run))
                run = []
            else:
                run.append(bare)
        if run:
            out.append(" ".join(run))
    return [p for p in out if _term_like(p)]


def _term_like(phrase: str) -> bool:
    """Long enough to be worth recalling: a single word needs 6+ letters or to be an acronym."""
    if not any(c.isalpha() for c in phrase) or phrase[0].isdigit() or len(phrase.split()) > 6:
        return False
    if " " in phrase:
        return len(phrase) >= 4
    return len(phrase) >= 6 or (len(phrase) >= 2 and any(c.isupper() for c in phrase[1:]))


def list_items(text: str) -> int | None:
    """How many items the first enumeration "a, b, and c" (or "..., or c") of `text` has:
    what `_LIST.search` finds, in one pass (the regex retries every start: quadratic)."""
    found = enumeration(text)
    return found[1] if found else None


def enumeration(text: str) -> tuple[int, int] | None:
    """(where it starts, how many items) of the first enumeration `_LIST.search` finds.

    The delimiters `,;:()` cut the text into segments. A match starts with a segment ended by
    a comma and a whitespace (an item), goes on with at least one more item right after it,
    and ends in the segment after the last item it takes, which starts with "and " / "or "
    (the regex is greedy: the last such segment within reach)."""
    full: list[str] = []  # each segment, with the whitespace after its comma
    item: list[bool] = []  # ended by a comma and a whitespace
    starts: list[int] = []
    pos, n = 0, len(text)
    for m in _DELIMITER.finditer(text):
        full.append(text[pos : m.start()])
        item.append(m.group(0) == "," and m.end() < n and text[m.end()].isspace())
        starts.append(pos)
        pos = m.end()
    full.append(text[pos:])
    item.append(False)
    starts.append(pos)

    def chained(k: int) -> bool:  # an item right after an item (whose whitespace it lost)
        return item[k] and len(full[k]) > 1

    s = 0
    while s < len(full):
        if not (item[s] and full[s]) or s + 1 >= len(full) or not chained(s + 1):
            s += 1
            continue
        j = s + 1
        while j < len(full) and chained(j):
            j += 1
        last = next((k for k in range(min(j, len(full) - 1), s + 1, -1) if _LAST_ITEM.match(full[k], 1)), None)
        if last is not None:
            return starts[s], last - s + 1
        s = j  # every start before j reaches the same segments: it fails too
    return None


def atomicity_hints(text: str) -> list[str]:
    """Why a sentence may hold more than one fact."""
    hints = []
    if "; " in text:
        hints.append("semicolon joins clauses")
    if items := list_items(text):
        hints.append(f"list of {items} items")
    if re.search(r",\s(?:but|whereas|although|while)\s", text):
        hints.append("contrast joins two facts")
    if re.search(r"\bbecause\b|\bso that\b", text):
        hints.append("claim and reason in one sentence")
    if len(quantities(text)) >= 4:
        hints.append("several thresholds in one sentence")
    return hints


def terms_of(text: str, pairs: list[tuple[str, str]] | None = None) -> list[Term]:
    """Candidate terms only (abbreviation pairs, quantities, phrases): what cloze selection
    needs, without the rest of the analysis."""
    if len(text) > MAX_SENTENCE_CHARS and pairs is None:
        return _unique([t for piece in chop(text) for t in terms_of(piece)])
    pairs = abbreviation_pairs(text) if pairs is None else pairs
    terms = [Term(text=f"{long} ({short})", kind="abbreviation") for long, short in pairs]
    terms += [Term(text=q, kind="number") for q in quantity_spans(text)]
    terms += [Term(text=p, kind="phrase") for p in phrases(text)]
    return _unique(terms)


def analyse(text: str) -> SentenceInfo:
    """The rule-based analysis of one sentence. A text longer than a sentence can be (a key
    point with no sentence breaks) is analysed in `chop`ped pieces, so the work stays linear
    in its length whatever the rules do within a piece."""
    if len(text) > MAX_SENTENCE_CHARS:
        parts = [analyse(piece) for piece in chop(text)]
        return SentenceInfo(
            text=text,
            terms=_unique([t for p in parts for t in p.terms]),
            entities=[e for p in parts for e in p.entities],
            abbreviations=[a for p in parts for a in p.abbreviations],
            negations=[g for p in parts for g in p.negations],
            atomicity=list(dict.fromkeys(h for p in parts for h in p.atomicity)),
            case_specific=list(dict.fromkeys(c for p in parts for c in p.case_specific)),
        )
    pairs = abbreviation_pairs(text)
    return SentenceInfo(
        text=text,
        terms=terms_of(text, pairs),
        entities=[Term(text=long, kind="entity", label="ABBREVIATED") for long, _ in pairs],
        abbreviations=[Abbreviation(long=long, short=short) for long, short in pairs],
        negations=[Negation(cue=cue, scope=scope) for cue, scope in negated_spans(text)],
        atomicity=atomicity_hints(text),
        case_specific=case_wording(text),
    )


def _unique(terms: list[Term]) -> list[Term]:
    seen: set[str] = set()
    out = []
    for t in terms:
        if t.text not in seen:
            seen.add(t.text)
            out.append(t)
    return out
