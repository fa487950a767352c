"""The offline provider's reading of a sentence: cleaning (option letters, citations, figure
and table pointers, "(shown)"), what is about the case, the verbs and subjects of clauses, and the
split of a sentence into clauses that each carry their subject ("X is A, begins B, and involves
C" -> "X is A", "X begins B", "X involves C"), a pronoun replaced by the subject it stands for,
and the leading frame kept after a contrast ("In patients with X, A, whereas B").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mksap_plugins.stages.wording import (
    ANSWER_FRAMING,
    CASE_SPECIFIC,
    CITATION,
    DEICTIC,
    OPTION_PARENTHESIS,
    SOURCE_REFERENCE,
    TABLE_PARENTHESIS,
    term_category,
)

MIN_WORDS = 4
MAX_WORDS = 30

# -- cleaning ---------------------------------------------------------------------------------

_PAREN_CITATION = re.compile(
    r"\s*\((?:see )?(?:e?tables?|e?figures?|figs?\.|images?|videos?)\b[^)]*\)"
    r"|\s*\((?:not )?(?:shown|pictured|arrows?|arrowheads?|circled|asterisks?|inset)\)"
    r"|\s*\[\d+(?:[,–-] ?\d+)*\]"
    r"|\s*\([A-Z][a-z]+(?: et al\.?| and [A-Z][a-z]+)?,? (?:19|20)\d{2}[a-z]?\)"
    r"|\s*\([^()]*\b(?:19|20)\d{2} ?; ?\d+[^()]*\)",
    re.I,
)
_AS_SHOWN = re.compile(
    r",?\s*\b(?:as )?(?:shown|seen|illustrated|depicted|pictured)"
    r" (?:in|on) (?:the )?(?:accompanying )?(?:figure|table|image|photograph|picture|radiograph|ECG"
    r"|electrocardiogram|panel|video)s?(?: \d+[a-z]?)?(?=[\s,.;)]|$)",
    re.I,
)
_LETTER_OPTION = re.compile(r"\s*\((?:Options?|Answers?|Choices?) [A-E](?:(?:,| and| or|, and) [A-E])*\)")


def clean(sentence: str) -> str:
    """A sentence without option letters, table/figure pointers, citations and "(shown)"."""
    text = _LETTER_OPTION.sub("", OPTION_PARENTHESIS.sub("", sentence))
    text = TABLE_PARENTHESIS.sub("", text)
    text = _PAREN_CITATION.sub("", text)
    text = _AS_SHOWN.sub("", text)
    return re.sub(r"\s+([,.;:])", r"\1", re.sub(r"\s{2,}", " ", text)).strip()


_CASE_JUDGEMENT = re.compile(
    r"\bwould (?:not )?(?:change|alter|affect|guide) (?:management|treatment|therapy|the diagnosis)\b"
    r"|\b(?:is|are) not (?:yet )?in place in\b|\b(?:has|have) already been\b|\bdiagnosis is (?:most )?likely\b"
    r"|\bwould (?:likely|probably)\b"
    r"|\b(?:this|these|that|those) (?:shortcoming|limitation|problem|issue|finding|findings|approach|strategy|effect"
    r"|pattern|feature|features|abnormality|abnormalities|situation|setting|scenario|option|one|ones|result|results"
    r"|category|group|class|stage)\b|\bthe same (?:\w+ )?(?:mechanism|effect|reason|way|problem)\b"
    r"|\b(?:is|are) (?:more|less) (?:effective|useful|common|likely|appropriate|sensitive|specific)$"
    r"|^[^,]{1,60} (?:is|are) not (?:indicated|needed|necessary|required)\.?$",
    re.I,
)


_EXHIBIT = re.compile(r"^(?:the|this|his|her) [\w\s-]{1,40}?\((?:not )?(?:shown|pictured)\)", re.I)


def about_exhibit(sentence: str) -> bool:
    """'The ECG (shown) demonstrates ...': a sentence about the case's own image or tracing."""
    return _EXHIBIT.match(sentence.strip()) is not None


def about_case(text: str) -> bool:
    """Wording about the case, the question or a figure: such a piece is no statement."""
    return any(
        rx.search(text) for rx in (CASE_SPECIFIC, DEICTIC, SOURCE_REFERENCE, ANSWER_FRAMING, CITATION, _CASE_JUDGEMENT)
    )


# -- clauses, subjects and verbs --------------------------------------------------------------

AUXILIARIES = frozenset("is are was were has have had can could may might must should will would does do did".split())
#: Finite verbs that start a predicate in critique prose (third person and past forms).
VERBS = AUXILIARIES | frozenset(
    """include includes cause causes occur occurs require requires suggest suggests indicate indicates remain
    remains appear appears lower lowers lowered raise raises raised increase increases increased reduce reduces
    reduced develop develops present presents affect affects involve involves produce produces respond responds
    begin begins began lead leads led carry carries confirm confirms exclude excludes improve improves worsen
    worsens prevent prevents predict predicts offer offers provide provides show shows showed need needs
    relieve relieves target targets act acts lack lacks last lasts slow slows protect protects reflect reflects
    induce induces lengthen lengthens recur recurs erupt erupts fade fades spread spreads allow allows help helps
    rest rests combine combines add adds decrease decreases decreased block blocks inhibit inhibits bind binds
    stimulate stimulates mimic mimics resemble resembles precede precedes follow follows accompany accompanies
    resolve resolves persist persists progress progresses depend depends differ differs carry
    favor favors favour favours outweigh outweighs reverse reverses treat treats cure cures cover covers
    distinguish distinguishes establish establishes identify identifies detect detects measure measures
    rises rise falls fall becomes become arises arise manifests manifest tends tend seems seem risks offered
    found demonstrated failed remained became takes take gets get receives receive undergoes reports report denies
    deny describes notes continues continue returns return starts stops contains contain permits permit
    precludes preclude supports support suggested indicated""".split()
) - frozenset("lowered raised increased reduced decreased improved caused".split())  # participles read as adjectives
#: A word before which a noun-verb word ("causes", "tests") is a noun: "common causes include".
_NOUN_BEFORE = frozenset(
    "a an the common other two three several many most some all such these those its their no any each".split()
)
_FRAME_WORDS = frozenset(
    """in for after before during among without with when if once unlike like compared because although while
    since until given despite following at on by through within whereas""".split()
)
_PRONOUNS = frozenset("it they this these that those such".split())
_ADVERBS = frozenset("also still often rarely seldom then now not never only".split())


def depth_zero(text: str, index: int) -> bool:
    before = text[:index]
    return before.count("(") == before.count(")") and before.count("[") == before.count("]")


def split_frame(clause: str) -> tuple[str, str]:
    """('In patients with X,', 'rest') when the clause opens with a leading phrase ended by a
    comma; ('', clause) otherwise."""
    first = clause.split(" ", 1)[0].lower()
    if first not in _FRAME_WORDS:
        return "", clause
    for m in re.finditer(r",\s", clause):
        if m.start() > 160:
            break
        if depth_zero(clause, m.start()):
            rest = clause[m.end() :]
            if len(rest.split()) >= 3:
                return clause[: m.start() + 1], rest
            break
    return "", clause


def verb_index(words: list[str]) -> int:
    """Index of the first finite verb of a clause's words, or -1."""
    for i, raw in enumerate(words):
        w = raw.lower().strip(",;:()")
        if w in VERBS and not (i and words[i - 1].lower() in _NOUN_BEFORE and w not in AUXILIARIES):
            if i and words[i - 1].lower() in ("to", "that", "which", "who"):
                continue
            return i
    return -1


def subject_of(clause: str) -> tuple[str, str, str]:
    """(frame, subject, predicate) of a clause; subject '' when none is found (no verb within
    a dozen words, or a pronoun for subject)."""
    frame, rest = split_frame(clause)
    words = rest.split()
    i = verb_index(words[:20])
    if i <= 0:
        return frame, "", rest
    while i > 1 and (words[i - 1].lower().endswith("ly") or words[i - 1].lower() in _ADVERBS):
        i -= 1  # "Pseudogout usually affects": the subject is "Pseudogout"
    subject = " ".join(words[:i])
    if subject.lower().split()[0] in (*_PRONOUNS, "there", "here") or subject.count("(") != subject.count(")"):
        return frame, "", rest
    return frame, subject, " ".join(words[i:])


def _starts_predicate(piece: str) -> bool:
    words = piece.split()
    first = words[0].lower() if words else ""
    if first in VERBS:
        return True
    adverb = first.endswith("ly") or first in ("also", "still", "then", "often", "usually", "not", "never")
    return adverb and len(words) > 1 and words[1].lower() in VERBS


def _own_clause(piece: str) -> bool:
    """Whether a piece after a conjunction has its own subject and verb."""
    words = split_frame(piece)[1].split()
    i = verb_index(words[:14])
    return i >= 1 and words[0].lower() not in ("which", "who", "that", "whose")


_SEPARATORS = re.compile(
    r";\s+(?!and\b|or\b)|,\s+(?P<conj>and|but|whereas|while|although|though|yet|so)\s+|\s+(?P<bare>but|whereas)\s+"
    r"|,\s+(?P<verb>(?=(?:is|are|has|have|can|may|begins|involves|presents|causes|requires|lacks|occurs|affects"
    r"|develops|appears|spreads|resolves|recurs|lasts|carries|lowers|raises|reduces|increases)\s))"
    r"|\s+and\s+(?P<andverb>(?=(?:is|are|was|were|has|have|can|may|should|must|does|increases|reduces|raises|lowers"
    r"|causes|provides|reflects|requires|carries|offers|lacks|remains|becomes|improves|worsens)\s))",
    re.I,
)


@dataclass
class Clause:
    text: str
    connector: str = ""
    subject: str = ""
    frame: str = ""
    carried: bool = False  # its subject was carried from the clause before


def clauses(sentence: str) -> list[Clause]:
    """The clauses of a sentence, each standing on its own: a predicate gets the subject of
    the first clause, a pronoun subject is replaced by it, a contrast keeps the first clause's
    frame. A piece that is no clause (a list item after ', and') stays where it was."""
    pieces: list[tuple[str, str, str]] = []
    start, connector, raw = 0, "", ""
    for m in _SEPARATORS.finditer(sentence):
        if not depth_zero(sentence, m.start()):
            continue
        pieces.append((connector, raw, sentence[start : m.start()].strip()))
        raw = m.group(0) if m.group(0).strip() else " "
        connector = m.group("conj") or m.group("bare") or ""
        if m.group("andverb") is not None:
            connector = "and"
        elif m.group("verb") is not None:
            connector = ","
        connector = (connector or ";").lower()
        start = m.end()
    pieces.append((connector, raw, sentence[start:].strip()))
    out: list[Clause] = []
    for connector, raw, piece in pieces:
        if not out:
            frame, subject, _ = subject_of(piece)
            out.append(Clause(piece, "", subject, frame))
            continue
        head = out[0]
        words = piece.split()
        first = words[0].lower() if words else ""
        head_is_clause = bool(head.subject) or verb_index(split_frame(out[-1].text)[1].split()[:14]) >= 0
        listed = connector in ("and", "or") and re.search(r",\s[^,;()]{1,40}$", out[-1].text) is not None
        if listed and not (first in ("they", "it") or _starts_predicate(piece)):
            out[-1].text = f"{out[-1].text}{raw}{piece}"
            continue
        carrier = _nearest_subject(out[-1])
        if first in ("they", "it") and carrier and len(words) > 2 and _starts_predicate(" ".join(words[1:])):
            text = f"{_frame(head, connector)}{carrier} {' '.join(words[1:])}"
            out.append(Clause(text, connector, carrier, carried=True))
        elif _starts_predicate(piece) and carrier and connector != ";":
            out.append(Clause(f"{_frame(head, connector)}{carrier} {piece}", connector, carrier, carried=True))
        elif connector == "so" and not re.search(r"\b(?:them|it)\b", piece):
            out[-1].text = f"{out[-1].text}, so {piece}"  # a consequence that needs its premise
        elif (head_is_clause or connector == ";") and _own_clause(piece) and connector != ",":
            frame, subject, _ = subject_of(piece)
            lead = _frame(head, connector) if not frame else ""
            text = _with_head_subject(f"{lead}{piece}" if lead else piece, head.subject)
            out.append(Clause(text, connector, subject, frame))
        else:
            out[-1].text = f"{out[-1].text}{raw}{piece}"
    return out


_SUBORDINATE = re.compile(r"(?:,\s+|\s)(?:because|since|when|if|which|that|while|whereas|although|so|as|who)\s+", re.I)


def _nearest_subject(clause: Clause) -> str:
    """The subject a predicate after 'and' (or a pronoun) continues: that of the last
    subordinate clause of the clause before, if it has one ('X should be avoided, because
    dual blockade offers no benefit and increases Y': dual blockade increases Y); '' when that
    clause's subject cannot be told ('..., which produces a rise and ...')."""
    tail = [m for m in _SUBORDINATE.finditer(clause.text) if depth_zero(clause.text, m.start())]
    if tail:
        _, subject, _ = subject_of(clause.text[tail[-1].end() :])
        return subject
    return clause.subject


def _with_head_subject(text: str, subject: str) -> str:
    """A later clause's pronouns for the first clause's subject: 'starting them' -> 'starting
    thiazide diuretics', 'its likelihood' -> 'the likelihood of primary aldosteronism'."""
    if not subject or not clinical_kind(subject):
        return text
    named = lower_start(subject)
    if clinical_kind(subject) == "drug":
        text = re.sub(r"\b(starting|stopping|taking|using) (?:them|it)\b", rf"\1 {named}", text)
    return re.sub(r"\b(?:its|their) ([\w-]+)", rf"the \1 of {named}", text, count=1)


def _frame(head: Clause, connector: str) -> str:
    """The first clause's frame, carried after a contrast or into a predicate of its own."""
    return f"{head.frame} " if head.frame and connector in ("whereas", "while", "but", "and", "although") else ""


# -- what a phrase names, and text helpers --------------------------------------------------

_DRUG_WORDS = re.compile(
    r"^(?:[\w-]+-)?(?:inhibitors?|blockers?|antagonists?|agonists?|saline|bicarbonate|antibiotics?|anticoagulants?"
    r"|antiplatelets?|diuretics?|vaccines?|steroids?|glucocorticoids?|insulin|β-lactams?|β-blockers?|beta-blockers?)$",
    re.I,
)
_MEASURE_WORDS = frozenset(
    """creatinine potassium sodium glucose hemoglobin a1c tsh t4 t3 egfr gfr bicarbonate calcium albumin
    pressure cortisol aldosterone renin osmolality ferritin troponin bnp inr platelet leukocyte protein fluid
    water alcohol calorie calories""".split()
)


def clinical_kind(phrase: str) -> str | None:
    """'drug', 'condition' or 'measure' when a phrase names one (by lexicon and suffix), else None."""
    words = re.findall(r"[\w'-]+", phrase)
    if any(term_category(w) == "drug" or _DRUG_WORDS.search(w) for w in words):
        return "drug"
    if any(term_category(w) in ("disease", "organism") for w in words):
        return "condition"
    if any(term_category(w) == "test" for w in words):
        return "test"
    if any(w.lower() in _MEASURE_WORDS for w in words):
        return "measure"
    return None


def article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def lower_start(text: str) -> str:
    first = text.split(" ", 1)[0]
    return text[0].lower() + text[1:] if first[:1].isupper() and (first[1:].islower() or first == "A") else text


def upper_start(text: str) -> str:
    return text[0].upper() + text[1:] if text and "a" <= text[0] <= "z" else text


def singular(np: str) -> str:
    """'SGLT2 inhibitors' -> 'SGLT2 inhibitor' (the last word only, regular plurals only)."""
    words = np.split()
    last = words[-1]
    if re.fullmatch(r"[a-z-]+(?:ors|ers|ists|ines|ides|ants|ics|ams)", last):
        words[-1] = last[:-1]
    return " ".join(words)
