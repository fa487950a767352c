"""The offline provider's sentence rules: from one critique sentence or key point to atomic,
general statements that name their subject.

In order: citations, figure/table pointers, "(shown)" and option letters are removed; "Option C
is incorrect because <fact>" gives the fact; a clause that frames the answer ("... is the most
appropriate next step") or is about the case is dropped; a sentence is split into its clauses
(";", ", and", "but", "whereas", "although"), each carrying the subject of the first ("X is A,
begins B, and involves C" -> "X is A." "X begins B." "X involves C.") and, after a contrast, its
leading frame ("In patients with X, ..."); a discourse marker is dropped; an opening that needs
another sentence ("The typical lesion", "Treatment", "It") is given its subject from the same
sentence, the sentences before it or the educational objective, or the statement is dropped;
an abbreviation the question defines is spelled out at its first use.

Every rewrite only moves or repeats words of the source: nothing is added that the question
does not say.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mksap_plugins.providers.offline_clauses import (
    MAX_WORDS,
    MIN_WORDS,
    Clause,
    about_case,
    about_exhibit,
    article,
    clauses,
    clean,
    lower_start,
    upper_start,
)
from mksap_plugins.providers.offline_subjects import resolve_inner, resolve_opening
from mksap_plugins.stages.nlp_rules import abbreviation_pairs
from mksap_plugins.stages.quantities import quantities
from mksap_plugins.stages.wording import (
    CASE_SPECIFIC,
    DISCOURSE_OPENING,
    OPTION_PARENTHESIS,
    PRONOUN_OPENING,
)

_INCORRECT_BECAUSE = re.compile(
    r"^.{0,120}?\b(?:is|are|would be)(?: also)? (?:incorrect|not correct|wrong|too short|too long|insufficient"
    r"|inadequate|not indicated|not necessary|unnecessary|inappropriate|not recommended)(?:,)? because (?P<fact>.+)$",
    re.I,
)
_CASE_CLAUSE = re.compile(
    r",\s*(?:as in this (?:patient|case)|which (?:does not|doesn't|do not) (?:apply|fit)[^,;.]*"
    r"|(?:none|both|all|neither) of which [^,;.]*|which (?:he|she|this patient|the patient) (?:does not|doesn't) have"
    r"|and neither applies here|which (?:he|she) has)(?=[,;.]|$)",
    re.I,
)
_AS_IN_CASE = re.compile(r",\s*as in this (?:patient|case),\s*", re.I)
_INNER_DISCOURSE = re.compile(
    r",\s*(?:however|therefore|thus|moreover|furthermore|in addition|additionally|in contrast|by contrast),\s*", re.I
)
_ALSO = re.compile(
    r"^((?:\S+ ){0,5}?\S+) also (?=(?:is|are|was|were|includes?|has|have|can|may|should|must|requires?|causes?"
    r"|carries|carry|lowers?|raises?|reduces?|increases?|provides?|offers?|helps?)\b)"
)


# -- abbreviations ------------------------------------------------------------------------------


def abbreviations(texts: list[str]) -> dict[str, str]:
    """SHORT -> long form of every abbreviation the texts define, as 'long form (SHORT)' or in a
    legend 'SHORT = long form'."""
    found: dict[str, str] = {}
    for text in texts:
        for long, short in abbreviation_pairs(text):
            opens = text.lstrip().startswith(long)
            found.setdefault(short, lower_start(long) if opens else long)
        for m in re.finditer(r"(?:^|;\s*|\.\s+)([A-Za-z0-9-]{2,10}) = ([^;.\n]+)", text):
            found.setdefault(m.group(1), m.group(2).strip())
    return found


def expand(text: str, defined: dict[str, str], limit: int = 2) -> str:
    """The statement with the first use of each abbreviation the question defines spelled out
    ("LTBI is ..." -> "Latent tuberculosis infection (LTBI) is ..."), unless it already gives
    the long form; at most `limit`, and none past MAX_WORDS."""
    done = 0
    for short, long in sorted(defined.items(), key=lambda kv: text.find(kv[0]) if kv[0] in text else 10**6):
        if done == limit or short not in text or long.lower() in text.lower():
            continue
        m = re.search(rf"(?<![\w(\[-]){re.escape(short)}(?![\w)\]-]|s\))", text)
        if m is None or re.search(r"\d\s?$", text[: m.start()]):
            continue  # "≤10 HU": a unit, not a term to spell out
        words = len(text.split()) + len(long.split())
        if words > MAX_WORDS:
            continue
        spelled = long if m.start() else upper_start(long)
        before = text[: m.start()]
        given = re.search(r"\b([Aa]n?) $", before)
        if given:
            fixed = article(spelled)
            fixed = fixed.capitalize() if given.group(1)[0] == "A" else fixed
            before = before[: given.start(1)] + fixed + " "
        text = f"{before}{spelled} ({short}){text[m.end() :]}"
        done += 1
    return text


# -- the sentence rules ---------------------------------------------------------------------------


def _sentence(text: str) -> str:
    text = DISCOURSE_OPENING.sub("", text.strip(" ,;")).strip(" ,;")
    text = _ALSO.sub(r"\1 ", text)
    if not text:
        return ""
    text = upper_start(text)
    return text if text.endswith((".", "!", "?")) else text + "."


def _general(piece: str) -> bool:
    return len(piece.split()) >= MIN_WORDS and not about_case(piece) and not PRONOUN_OPENING.match(piece)


@dataclass
class Draft:
    """One statement the rules made, and the source sentence that gave it its subject (if any)."""

    text: str
    named_by: str | None = None
    notes: list[str] = field(default_factory=list)


_APPOSITIVE = re.compile(
    r"^(?:this|the) (?:patient|woman|man|person)(?:'s \w+)? (?:most likely )?(?:has|had|is experiencing|shows)"
    r" (?P<x>[^,;]+?), (?P<y>(?:an?|the) [^;]+?)\.?$",
    re.I,
)


_CRITERIA = re.compile(
    r"^(?P<lead>.+?\b(?:is|are) (?:diagnosed|defined|confirmed|established|excluded|suggested) (?:by|with|when)) "
    r"(?P<items>.+)$"
)


def _criteria(clause: Clause) -> list[Clause]:
    """'X is diagnosed by A ≥1, B ≥2, or C ≥3' -> one clause per criterion: each one suffices
    ('or'), so each is a fact; a list joined by 'and' (all needed) stays whole."""
    m = _CRITERIA.match(clause.text)
    if not m or not re.search(r",\s+or\s+", m.group("items")):
        return [clause]
    items = [i.strip() for i in re.split(r",\s+(?:or\s+)?(?![^(]*\))", m.group("items"))]
    if len(items) < 3 or not all(quantities(i) for i in items):
        return [clause]
    return [Clause(f"{m.group('lead')} {i}", clause.connector, clause.subject, clause.frame) for i in items]


def appositive(text: str) -> str | None:
    """'This patient has X, a Y.' -> 'X is a Y.': the general fact in a sentence about the case."""
    m = _APPOSITIVE.match(text.strip())
    if not m or about_case(m.group("x")) or about_case(m.group("y")):
        return None
    return f"{upper_start(m.group('x').strip())} is {m.group('y').strip()}"


def _pieces(sentence: str) -> tuple[list[Clause], list[str], bool]:
    """The clauses of a cleaned sentence that may become statements, those dropped (about
    the case or the answer), which still name things a kept clause may need, and whether the
    sentence opens with a clause about the case (what follows it is often about the case too)."""
    if about_exhibit(sentence):
        return [], [clean(sentence)], True
    text = clean(sentence)
    if not text or text.endswith("?"):
        return [], [], False
    had_option = text != sentence and bool(OPTION_PARENTHESIS.search(sentence) or "Option" in sentence)
    m = _INCORRECT_BECAUSE.match(text)
    judged = m.group(0)[: m.start("fact")] if m else ""
    if m and (had_option or re.search(r"\b(?:incorrect|not correct|wrong)\b", judged, re.I)):
        dropped = [text[: m.start("fact")]]
        text = m.group("fact")
    else:
        dropped = []
    text = _INNER_DISCOURSE.sub(" ", _CASE_CLAUSE.sub("", _AS_IN_CASE.sub(" ", text)))
    if (general := appositive(text)) is not None:
        dropped.append(text)
        text = general
    kept: list[Clause] = []
    case_clause = False
    for n, clause in enumerate([c for whole in clauses(text) for c in _criteria(whole)]):
        body = clause.text.strip(" ,;.")
        if about_case(body):
            trimmed = _CASE_CLAUSE.sub("", re.sub(r",\s+(?:which|so|and)\s+[^,;]*$", "", body))
            if trimmed != body and not about_case(trimmed):
                body = trimmed
            else:
                dropped.append(body)
                case_clause = case_clause or (n == 0 and bool(CASE_SPECIFIC.search(body)))
                continue
        kept.append(Clause(body, clause.connector, clause.subject, clause.frame, clause.carried))
    return kept, dropped, case_clause


def statements_from(sentence: str, before: list[str], objective: str, defined: dict[str, str]) -> list[Draft]:
    """General statements from one source sentence; `before` are the sentences before it,
    nearest first (where an omitted subject is named), `defined` the question's abbreviations."""
    kept, dropped, case_clause = _pieces(sentence)
    out: list[Draft] = []
    for i, clause in enumerate(kept):
        text = _sentence(clause.text)
        if not text:
            continue
        same = [*(c.text for c in reversed(kept[:i])), *dropped]
        contexts = [*same, *before[:3], objective]
        resolved = resolve_opening(text, contexts, len(same))
        if resolved is None:
            continue
        named_by = _naming_sentence(resolved, text, contexts)
        inner = resolve_inner(resolved, [*same, *before, objective])
        if inner is None:
            continue
        text = _sentence(inner)
        text = expand(text, defined)
        if case_clause and len(clause.text.split()) < 10 and not clause.carried:
            continue  # "...; an IGF-1 level should also be measured": the rest of a sentence about the case
        if _general(text) and text not in (d.text for d in out):
            out.append(Draft(text, named_by))
    return out


def _naming_sentence(resolved: str, original: str, contexts: list[str]) -> str | None:
    """The context sentence that gave a resolved opening its subject (for Extra), if it is general."""
    if resolved == original:
        return None
    added = set(resolved.split()) - set(original.split())
    for ctx in contexts:
        if added & set(clean(ctx).split()):
            cleaned = _sentence(clean(ctx))
            if about_case(cleaned):
                general = appositive(clean(ctx))
                return _sentence(general) if general else None
            return cleaned
    return None
