"""cloze: 2-5 verbatim cloze candidates per statement (LLM), after normalisation.

Normalisation runs first, on the statement text, so it can never break a candidate: the
candidates are chosen against the final text and filtered (`select_candidates`) to verbatim,
word-aligned substrings that take a quantity whole (never "<140" without "/90 mm Hg", never a
number without its comparator or unit), never nest in or repeat one another (case-insensitive),
never end in a function word ("bradycardia due"), are never only generic words ("diagnosis",
"management", "According"), and never hide a quantity's restatement in other units apart from
it ("≥200 mg/dL (11.1 mmol/L)" is one fact: the exporter hides both with one cloze number).
The answer is topped up from the nlp terms when it has too few.

Extra: the statement's `extra_field` is set where the statement is made (the provider knows
which sentence named its subject); a critique or key-point statement that reaches this stage
without one gets the question's educational objective, the source's own context for every
statement of the question (table statements carry their caption already).
"""

from __future__ import annotations

import json
import re
from functools import cached_property
from typing import Any

from pydantic import BaseModel

from mksap.contracts.provider import LLMRequest, Message, schema_of
from mksap.contracts.stage import Stage, StageJob
from mksap.contracts.statements import ClozeAnswer, Statement
from mksap_plugins.stages.critique import CritiqueStage
from mksap_plugins.stages.extraction import ExtractedStatements
from mksap_plugins.stages.keypoints import KeyPointsStage
from mksap_plugins.stages.nlp_rules import STOPWORDS, WEAK_WORDS, Term, abbreviation_pairs, terms_of
from mksap_plugins.stages.normalise import normalise
from mksap_plugins.stages.parse import ParsedQuestion, ParseStage
from mksap_plugins.stages.prompts import load_prompt
from mksap_plugins.stages.quantities import paired_quantities, quantity_ranges
from mksap_plugins.stages.tables import TablesStage
from mksap_plugins.stages.wording import GENERIC_HEADS, term_category

__all__ = [
    "ClozeStage",
    "ClozedStatements",
    "normalise",
    "select_candidates",
    "candidate_range",
    "ranked_terms",
    "FUNCTION_WORDS",
    "generic_candidate",
]

MAX_CANDIDATES = 5
_LIST = re.compile(r"(?:[^,;]+,\s){2,}(?:and|or)\s")
_KIND_RANK = {"number": 0, "abbreviation": 1, "entity": 2, "phrase": 3}


class ClozedStatements(BaseModel):
    """The cloze artifact: every statement of the question, with candidates."""

    statements: list[Statement]


def candidate_range(statement: str) -> tuple[int, int]:
    """(fewest wanted, most allowed) candidates for a statement of this length."""
    words = len(statement.split())
    if words < 6:
        return 1, 1
    if words < 10:
        return 1, 2
    if words < 20:
        return 2, 3
    return 2, 4 if words < 30 else MAX_CANDIDATES


#: Words a candidate never starts or ends with: the answer is the term, not its glue
#: ("symptomatic bradycardia due", "the risk of").
FUNCTION_WORDS = frozenset(
    """a an the and or nor but of in on at to for from by with without within into onto over under as than
    that which who whom whose what when where while whether if then so because although though due per via
    vs versus once above below despite after before during until unless against among between toward towards
    across around beyond up down out off is are was were be been being has have had do does did can could may
    might must should would
    will shall not no its their his her this these those such also only both either neither each any some
    e.g i.e eg ie including include includes""".split()
)
#: Words that are no answer on their own: what a card would ask is then unguessable or trivial.
GENERIC_WORDS = frozenset(
    """according however although therefore thus also diagnosis diagnoses management treatment treatments
    therapy therapies patient patients people person adults adult children women men use uses used risk risks
    level levels value values type types cause causes benefit benefits effect effects role rate rates time
    times day days week weeks month months year years hour hours first second third initial early late
    acceptable appropriate inappropriate effective ineffective preferred recommended common uncommon rare
    important reasonable option options choice choices alternative alternatives abnormal normal positive
    negative high higher low lower increased decreased elevated reduced significant substantial likely
    unlikely necessary unnecessary indicated contraindicated useful helpful standard usual typical classic
    presence absence evidence setting settings case cases number amount degree part form forms kind way
    baseline measurement testing assessment evaluation approach practice guideline guidelines study studies
    trial trials data result results outcome outcomes factor factors feature features sign signs symptom
    symptoms finding findings condition conditions disease diseases disorder disorders""".split()
)
_SMALL = STOPWORDS | FUNCTION_WORDS


def _word_aligned(statement: str, cand: str) -> int:
    """Start of the first occurrence of `cand`, or -1 when that occurrence cuts a word.
    Only the first occurrence counts: exporters and `mksap show` mark the first one."""
    start = statement.find(cand)
    if start < 0:
        return -1
    end = start + len(cand)
    before = statement[start - 1] if start else " "
    after = statement[end] if end < len(statement) else " "
    if (before.isalnum() and cand[0].isalnum()) or (after.isalnum() and cand[-1].isalnum()):
        return -1
    return start


def _balanced(cand: str) -> str:
    """`cand` without a bracket it does not close or open ("(SGLT2" -> "SGLT2")."""
    for opening, closing in ("()", "[]"):
        if cand.count(opening) != cand.count(closing):
            if cand.startswith(opening) and cand.count(opening) > cand.count(closing):
                cand = cand[1:]
            elif cand.endswith(closing) and cand.count(closing) > cand.count(opening):
                cand = cand[:-1]
    return cand.strip()


def _trimmed(cand: str) -> str:
    """`cand` without surrounding punctuation, unbalanced brackets and leading or trailing
    function words ("the risk of bleeding" -> "risk of bleeding"; "bradycardia due" -> "bradycardia")."""
    for _ in range(6):
        before = cand
        cand = _balanced(cand.strip().strip(".,;:"))
        words = cand.split()
        while words and words[-1].lower().strip(",;:") in FUNCTION_WORDS:
            words.pop()
        while words and words[0].lower().strip(",;:") in FUNCTION_WORDS:
            words.pop(0)
        cand = " ".join(words)
        if cand == before:
            break
    return cand


def generic_candidate(cand: str) -> bool:
    """Only common, generic or weak words ("diagnosis", "the management", "According"): no answer."""
    words = [w.lower() for w in re.findall(r"[\w'-]+", cand)]
    return not words or all(w in _SMALL or w in GENERIC_WORDS or w in GENERIC_HEADS or w in WEAK_WORDS for w in words)


def _pair_ranges(statement: str) -> list[tuple[int, int]]:
    """Where the 'long form (SHORT)' pairs of a statement are."""
    out = []
    for long, short in abbreviation_pairs(statement):
        start = statement.find(f"{long} ({short})")
        if start >= 0:
            out.append((start, start + len(long) + len(short) + 3))
    return out


class _Spans:
    """What placing candidates reads of a statement, read once for all of them (each reading
    is a pass over the statement): its quantity phrases and abbreviation pairs, and its
    quantities restated in other units."""

    def __init__(self, statement: str) -> None:
        self.statement = statement

    @cached_property
    def whole(self) -> list[tuple[int, int]]:
        return [*quantity_ranges(self.statement), *_pair_ranges(self.statement)]

    @cached_property
    def partners(self) -> dict[tuple[int, int], tuple[int, int]]:
        """Each restated quantity's restatement, and each restatement's quantity (the first pair wins)."""
        found: dict[tuple[int, int], tuple[int, int]] = {}
        for first, second in paired_quantities(self.statement):
            found.setdefault(first, second)
            found.setdefault(second, first)
        return found


def _whole_quantities(statement: str, start: int, end: int, spans: _Spans | None = None) -> tuple[int, int]:
    """The span grown to take every quantity phrase it cuts whole ("<140" of "<140/90 mm Hg",
    "30 mg/g" of "≥30 mg/g", "14 days" of "at least 14 days") and every abbreviation pair it
    cuts ("SGLT2" of "sodium-glucose cotransporter 2 (SGLT2)": the long form would give the
    short one away, and the short form the long one)."""
    ranges = (spans or _Spans(statement)).whole
    grown = True
    while grown:
        grown = False
        for qs, qe in ranges:
            if qs < end and start < qe and not (start <= qs and qe <= end):
                start, end, grown = min(start, qs), max(end, qe), True
    return start, end


def _words_in(small: str, big: str) -> bool:
    """Whether `small` occurs in `big` as whole words (both already case-folded)."""
    return re.search(rf"(?<!\w){re.escape(small)}(?!\w)", big) is not None


def _partner(statement: str, span: tuple[int, int], spans: _Spans | None = None) -> tuple[int, int] | None:
    """The restatement of the quantity at `span` in other units, or the quantity it restates."""
    return (spans or _Spans(statement)).partners.get(span)


def _locate(statement: str, raw: str, spans: _Spans | None = None) -> tuple[int, int] | None:
    """Where a proposed candidate goes: trimmed, at its first occurrence (which must not cut a
    word), grown to whole quantities. None when it cannot be placed."""
    cand = _trimmed(raw)
    if not cand:
        return None
    start = _word_aligned(statement, cand)
    if start < 0:
        return None
    start, end = _whole_quantities(statement, start, start + len(cand), spans)
    if _word_aligned(statement, statement[start:end]) != start:
        return None  # grown into an earlier occurrence of the same text: placed elsewhere
    return start, end


def select_candidates(statement: str, proposed: list[str], limit: int = MAX_CANDIDATES) -> list[str]:
    """Keep verbatim, word-aligned, meaningful candidates, in the order proposed: never the whole
    statement (nor most of it), never only common or generic words, never a list of three or
    more items, never a number cut from its comparator or unit, never one that overlaps, nests
    in or repeats (in any case) one already kept, never a quantity's restatement in other units
    beside the quantity itself."""
    chosen: list[tuple[int, int, str]] = []
    words = len(statement.split())
    whole = statement.rstrip(".").strip()
    spans = _Spans(statement)
    for raw in proposed:
        place = _locate(statement, raw, spans)
        if place is None:
            continue
        start, end = place
        cand = statement[start:end]
        if len(cand.split()) > max(3, int(words * 0.6)) or cand == whole:
            continue
        if generic_candidate(cand) or _LIST.search(cand + ","):
            continue
        if any(start < e and s < end for s, e, _ in chosen):
            continue
        folded = cand.casefold()
        if any(_words_in(folded, t.casefold()) or _words_in(t.casefold(), folded) for _, _, t in chosen):
            continue
        partner = _partner(statement, (start, end), spans)
        if partner is not None and any((s, e) == partner for s, e, _ in chosen):
            continue
        chosen.append((start, end, cand))
        if len(chosen) == limit:
            break
    return [c for _, _, c in chosen]


def _clinical(text: str) -> bool:
    return any(term_category(w) is not None for w in re.findall(r"[\w'-]+", text))


def ranked_terms(statement: str, extra: list[Term] | None = None) -> list[str]:
    """Cloze-worthy terms of a statement, best first: quantities (thresholds first, a
    restatement in other units never), abbreviation pairs, entities, then phrases naming a
    drug, disease, test or organism, then other multi-word phrases before single words."""
    terms = [*(extra or []), *terms_of(statement)]
    restated = {statement[s:e] for _, (s, e) in paired_quantities(statement)}

    def rank(t: Term) -> tuple[int, int, int]:
        n = len(t.text.split())
        kind = _KIND_RANK.get(t.kind, 3)
        if t.kind == "number":
            return kind, 0 if t.text[0] in "≥≤<>" or t.text[:1].isalpha() else 1, 0
        clinical = 0 if _clinical(t.text) else 1
        return kind + clinical, 0 if 2 <= n <= 4 else 1, -len(t.text) if n == 1 else len(t.text)

    ranked = sorted((t for t in terms if t.text in statement and t.text not in restated), key=rank)
    participle = re.compile(r"^[a-z]+(?:ed|ing)$")  # "excreted", "measuring": a verb, no answer
    return list(dict.fromkeys(t.text for t in ranked if not generic_candidate(t.text) and not participle.match(t.text)))


def finish(statement: Statement, proposed: list[str]) -> Statement:
    """The statement with its final candidates: the proposal filtered, topped up from the
    nlp terms when it falls short of the range for the statement's length."""
    low, high = candidate_range(statement.statement)
    chosen = select_candidates(statement.statement, proposed, high)
    if len(chosen) < low:
        chosen = select_candidates(statement.statement, [*chosen, *ranked_terms(statement.statement)], high)
    return statement.model_copy(update={"cloze_candidates": chosen})


def with_context(statement: Statement, objective: str) -> Statement:
    """A critique or key-point statement without Extra gets the educational objective: the
    context the source gives every statement of the question (never anything else)."""
    if statement.extra_field or statement.source == "table" or not objective.strip():
        return statement
    return statement.model_copy(update={"extra_field": objective.strip()})


class ClozeStage(Stage):
    """Cloze candidates for every statement of the question."""

    name = "cloze"
    version = "3"
    needs = ("parse", "critique", "keypoints", "tables")
    uses_llm = True

    def config(self) -> dict[str, Any]:
        return {**load_prompt("cloze").fingerprint(), "max_candidates": MAX_CANDIDATES}

    def run(self, job: StageJob) -> ClozedStatements:
        extracted = [job.read(stage, ExtractedStatements) for stage in (CritiqueStage, KeyPointsStage, TablesStage)]
        objective = job.read(ParseStage, ParsedQuestion).objective
        superseded = {sid for e in extracted for sid in e.superseded}
        statements = [
            with_context(s.model_copy(update={"statement": normalise(s.statement)}), objective)
            for e in extracted
            for s in e.statements
            if s.id not in superseded
        ]
        if not statements:
            return ClozedStatements(statements=[])
        payload = {
            "statements": [
                {"id": s.id, "text": s.statement, "terms": ranked_terms(s.statement)[:12]} for s in statements
            ]
        }
        prompt = load_prompt("cloze")
        request = LLMRequest(
            task="cloze",
            system=prompt.text,
            messages=[Message(role="user", content=json.dumps(payload, ensure_ascii=False, indent=1))],
            output_schema=schema_of(ClozeAnswer),
            schema_name="ClozeAnswer",
            context=payload,
        )
        answer, _ = job.ask(request, ClozeAnswer)
        proposed = {item.statement_id: item.cloze_candidates for item in answer.items}
        return ClozedStatements(statements=[finish(s, proposed.get(s.id, [])) for s in statements])
