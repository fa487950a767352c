"""The offline provider's referents: the subject a generic opening leaves out ("The typical
lesion", "Treatment", "The dose", "It") or a generic noun inside a statement ("the drug", "after
initiation", "a score"), found in the same sentence, the sentences before it or the educational
objective, and never a phrase with a number (a number must come from the statement's own source
sentence).
"""

from __future__ import annotations

import re

from mksap_plugins.providers.offline_clauses import (
    VERBS,
    about_case,
    article,
    clean,
    clinical_kind,
    lower_start,
    singular,
    subject_of,
    upper_start,
)
from mksap_plugins.stages.nlp_rules import STOPWORDS
from mksap_plugins.stages.quantities import quantities
from mksap_plugins.stages.wording import PRONOUN_OPENING

_JOINERS = frozenset("of for with in at on to by and or as after before during from".split())

# -- referents: the subject a generic opening leaves out ----------------------------------------

#: Generic heads and the kind of referent they stand for.
HEADS: dict[str, str] = {
    **{
        h: "drug" for h in "dose doses dosage bolus boluses infusion drug drugs agent agents medication regimen".split()
    },
    **{
        h: "condition"
        for h in """lesion lesions rash eruption eruptions disorder disease condition syndrome illness infection
        symptoms findings recurrence recurrences episodes complications presentation manifestations features
        management diagnosis screening testing evaluation workup""".split()
    },
    **{h: "treatment" for h in "treatment therapy discontinuation initiation".split()},
    **{h: "measure" for h in "elevation elevations increase rise drop decline decrease intake level".split()},
    "score": "qualified",
    "threshold": "qualified",
}
_GENERIC_OPENING = re.compile(
    r"^(?P<det>the|this|these|that|those|such|an?)?\s?(?P<mods>(?:(?:typical|characteristic|classic|usual|common"
    r"|initial|preferred|recommended|primary|underlying|standard|definitive|daily|starting|maintenance|loading"
    r"|target|individual|total|small|large|early|late|acute|chronic|small,|reversible|overall|new|first|same"
    r"|subsequent|recurrent|resulting) )*)(?P<head>[a-z]+)\b",
    re.I,
)
_NP_END = (
    r"(?=\s+(?:"
    + "|".join(sorted(VERBS | {"and", "or", "to", "for", "in", "with", "at", "on", "by", "persists", "resolves"}))
    + r")\b|[,.;)])"
)
_MID_GENERIC = re.compile(rf"\b(?P<det>the|this) (?P<head>drug|agent|medication|score|elevation)\b{_NP_END}", re.I)
_AFTER_INITIATION = re.compile(rf"\bafter (?:its )?(?P<head>initiation|discontinuation)\b{_NP_END}", re.I)


_NP_STOP = re.compile(
    r"[,;:.]|\s(?:is|are|was|were|can|may|should|must|has|have|does|do|which|who|that|because|when|if|but|whereas"
    r"|while|although|so|to|than|vs\.?|versus|before|after|despite|until|unless|in|for|with|without|by|from|on"
    r"|at|as|over|rather)\s",
    re.I,
)
_EDGE_WORDS = STOPWORDS | frozenset("due such like".split())
_LEADING_VERBISH = re.compile(
    r"^(?:adding|starting|stopping|switching to|continuing|using|giving|measuring|obtaining|withholding|limiting"
    r"|combining|the|a|an)\s+",
    re.I,
)


def noun_phrases(text: str) -> list[str]:
    """Noun phrases of a text in order: runs between verbs, prepositions and punctuation, a
    bracketed abbreviation kept with its long form, a leading gerund ('Adding') dropped."""
    text = clean(text)
    out = []
    for chunk in _NP_STOP.split(f" {text} "):
        runs: list[list[str]] = [[]]
        for w in chunk.split():
            if w.lower() in VERBS:
                runs.append([])
            else:
                runs[-1].append(w)
        for words in runs:
            phrase = " ".join(words)
            while (m := _LEADING_VERBISH.match(phrase)) and len(phrase) > m.end():
                phrase = phrase[m.end() :]
            words = phrase.split()
            while words and (words[0].lower() in _EDGE_WORDS):
                words.pop(0)
            while words and (words[-1].lower() in _EDGE_WORDS):
                words.pop()
            phrase = " ".join(words)
            if phrase and phrase.count("(") == phrase.count(")") and len(words) <= 8:
                out.append(phrase)
    return out


_SYNONYMS = {
    "increase": "increase|rise|elevation",
    "rise": "increase|rise|elevation",
    "elevation": "increase|rise|elevation",
    "drop": "drop|decline|decrease|fall",
    "decline": "drop|decline|decrease|fall",
    "decrease": "drop|decline|decrease|fall",
}


def _head_pattern(text: str, kind: str, head: str) -> str | None:
    """A qualifier the context gives the same head: 'bolus of 3% saline', 'rise in serum
    creatinine', 'CHA2DS2-VASc score', 'elevated TSH'."""
    one = head[:-1] if head.endswith("s") and not head.endswith("ss") else head
    heads = _SYNONYMS.get(one, re.escape(one))
    ends = r"(?=[,;.()]|\s(?:is|are|was|were|given|to|for|over|by|after)\b|$)"
    m = re.search(
        rf"\b(?:{heads})s? (?:of|with|in) (?P<np>[^,;.()]+?){ends}",
        text,
        re.I,
    )
    if m and kind in ("drug", "measure", "qualified") and len(m.group("np").split()) <= 5:
        return m.group("np").strip()
    q = re.search(rf"(?P<q>\b[A-Z][\w₀-₉-]*[A-Z0-9][\w-]*)\s+(?:{heads})s?\b", text)
    if q and kind in ("qualified", "measure"):
        return q.group("q")
    if kind == "measure":
        e = re.search(r"\belevated (?P<np>[A-Z][\w-]*)\b", text)
        if e:
            return e.group("np")
    return None


def referent(kind: str, contexts: list[str], head: str = "", nearest: int = 0) -> str | None:
    """The thing a generic head stands for. First a qualifier some context gives the same
    head ('CHA2DS2-VASc score', 'bolus of 3% saline', 'rise in serum creatinine'); else the
    first phrase of its kind in the nearest context that has one: for a drug head a drug, for
    a condition head a disease, for a measure ('an intake') what is measured, for a treatment
    head a drug or else a disease, and only from the first `nearest` contexts when given (what
    treatment or management means is too far to guess from further away). Never a phrase with
    a number (a number must come from the statement's own source sentence). None when no
    context names one."""
    cleaned = [clean(t) for t in contexts if t]
    if head:
        for text in cleaned:
            found = _head_pattern(text, kind, head)
            if found and not quantities(found):
                return found
    if kind == "qualified":
        return None
    want = ("drug", "condition") if kind == "treatment" else (kind,)
    for text in cleaned[:nearest] if nearest else cleaned:
        phrase = next((p for p in noun_phrases(text) if clinical_kind(p) in want and not about_case(p)), None)
        if phrase is not None:
            return None if quantities(phrase) else phrase
    return None


#: Heads whose referent is taken only from the same sentence or the subject of the one before:
#: what "management" or "treatment" is of is too easy to misread from further away.
STRICT_HEADS = frozenset("treatment therapy management diagnosis discontinuation initiation".split())


def _strict_referent(kind: str, contexts: list[str], same: int, head: str) -> str | None:
    ref = referent(kind, contexts[:same], head) if same else None
    if ref is None and len(contexts) > same:
        _, subject, _ = subject_of(clean(contexts[same]))
        while (m := _LEADING_VERBISH.match(subject)) and len(subject) > m.end():
            subject = subject[m.end() :]
        if subject and clinical_kind(subject) in ("drug", "condition") and not about_case(subject):
            ref = None if quantities(subject) else subject
    return ref


def resolve_opening(text: str, contexts: list[str], same: int = 0) -> str | None:
    """The statement with the subject its opening leaves out put back ("The typical lesion is
    ..." -> "The typical lesion of erythema multiforme is ..."; "Lesions appear ..." -> "In
    erythema multiforme, lesions appear ..."; "It is ..." -> "<subject before> is ..."); the
    text unchanged when its opening names its subject; None when it needs a subject no
    context gives. The first `same` contexts are the other clauses of the same sentence."""
    words = text.split()
    first = words[0].lower() if words else ""
    if first in ("it", "they") and len(words) > 2 and words[1].lower() in VERBS:
        if len(contexts) > same:  # the subject of the sentence before, and no other
            _, subject, _ = subject_of(clean(contexts[same]))
            if subject and not about_case(subject) and clinical_kind(subject) and not quantities(subject):
                return f"{upper_start(subject)} {' '.join(words[1:])}"
        return None
    m = _GENERIC_OPENING.match(text)
    follows = text[m.end() :].split(" ", 2)[1:2] if m else []
    noun_after = bool(follows) and follows[0].lower() not in VERBS | _JOINERS and not follows[0].lower().endswith("ly")
    if not m or m.group("head").lower() not in HEADS or noun_after:
        return None if PRONOUN_OPENING.match(text) else text  # "Drug therapy is ...": the head is a modifier
    det, head = (m.group("det") or ""), m.group("head")
    rest = text[m.end() :]
    named = re.match(r"\s*(?:of|for|with|in)\s+(?P<what>\S+)", rest, re.I)
    if named and det.lower() not in ("this", "these") and not re.match(r"(?:about|up|\d|[<>≤≥])", named.group("what")):
        return text  # "Treatment of X", "The dose of X": named
    kind = HEADS[head.lower()]
    workup = head.lower() in ("screening", "testing", "evaluation", "workup", "management", "diagnosis")
    if not det and m.group("mods") and kind == "condition" and not workup:
        return text  # "Target lesions", "Acute lesions": named by their modifier
    if head.lower() in STRICT_HEADS:
        ref = _strict_referent(kind, contexts, same, head.lower())
    else:
        ref = referent(kind, contexts, head.lower())
    if ref is None:
        return None  # "The bolus is given ...", "Treatment is ...": about something no context names
    ref = ref if ref[:1].isupper() and not ref[1:2].islower() else lower_start(ref)
    mods = m.group("mods")
    if det.lower() in ("this", "these", "that", "those", "such"):
        return f"{upper_start(ref)}{rest}" if kind in ("drug", "condition") else None
    if kind == "condition" and not det and head.endswith("s"):
        return f"In {ref}, {lower_start(text)}"
    if kind == "qualified" or (kind == "measure" and len(ref.split()) <= 2):
        opening = f"{det} {mods}{ref} {head}".strip()
        if det.lower() in ("a", "an"):
            opening = f"{article(mods or ref)} {mods}{ref} {head}"
        return upper_start(opening) + rest
    joiner = "of"
    if kind == "treatment" and clinical_kind(ref) == "drug" and head.lower() in ("treatment", "therapy"):
        joiner = "with"
    elif kind == "measure":
        joiner = "in"
    elif head.lower() in ("screening", "testing", "evaluation", "workup"):
        joiner = "for"
    return upper_start(f"{det} {mods}{head} {joiner} {ref}".strip()) + rest


def resolve_inner(text: str, contexts: list[str]) -> str | None:
    """Generic nouns inside a statement given their referent: 'stopping the drug' -> 'stopping
    the ACE inhibitor', 'after initiation' -> 'after initiation of an ACE inhibitor', 'a score
    ≥3' -> 'a CHA2DS2-VASc score ≥3'. None when 'the drug' or 'after initiation' has no
    referent a context gives (the statement would not say what it is about)."""
    for m in list(_MID_GENERIC.finditer(text))[:1]:
        head = m.group("head").lower()
        ref = referent(HEADS.get(head, "drug"), contexts, head)
        if ref is None:
            if head in ("drug", "agent", "medication"):
                return None
            continue
        if ref.lower() in text.lower():
            continue
        ref = lower_start(ref)
        if head in ("score", "elevation"):
            text = f"{text[: m.start()]}{m.group('det')} {ref} {m.group('head')}{text[m.end() :]}"
        else:
            text = f"{text[: m.start()]}the {singular(ref)}{text[m.end() :]}"
    m = re.search(r"\b(?P<det>an?) (?P<head>score)\b", text)
    if m:
        ref = referent("qualified", contexts, "score")
        if ref and ref.lower() not in text.lower():
            text = f"{text[: m.start()]}{article(ref)} {ref} score{text[m.end() :]}"
    m = _AFTER_INITIATION.search(text)
    if m:
        ref = referent("drug", contexts)
        if ref is None:
            return None
        if ref.lower() not in text.lower():
            ref = singular(lower_start(ref))
            text = f"{text[: m.end()]} of {article(ref)} {ref}{text[m.end() :]}"
    return text
