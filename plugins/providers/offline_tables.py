"""The offline provider's table rules: one natural sentence per meaningful row × column.

A row is read with its column label and the caption. What the sentence says depends on what
the column holds: a preferred or alternative treatment ("X is the preferred antihypertensive
agent for Y."), drugs to avoid ("X should be avoided in Y."), a test ("X is the dynamic test for
Y."), a threshold or value ("The hemoglobin threshold for red blood cell transfusion is <7 g/dL
in Y."), a criterion ("A fasting plasma glucose ≥126 mg/dL is a criterion for the diagnosis of
Y."), a category's definition ("GFR category G1 is defined by an eGFR ≥90 mL/min/1.73 m²."), a
description ("Kidney function in GFR category G2 is mildly decreased."), causes ("Causes of Y
include X."), or a comment that is already a sentence, given the row's subject as its frame
("In pregnancy, ACE inhibitors and ARBs are contraindicated."; an imperative "Avoid X" becomes
"X should be avoided in Y."). The row's subject is always named, a short code with its column
label ("GFR category G1"), an abbreviation the legend defines spelled out at its first use.

Skipped: citation, permission and source rows and footnotes, the abbreviation legend (it is
used to spell out), yes/no-only cells, headings ending in ':' (their items are read on their
own), a cell that repeats the row label. A marked footnote is a fact of its own.
"""

from __future__ import annotations

import re
from typing import Any

from mksap_plugins.providers.offline_clauses import about_case, clauses, clinical_kind, verb_index
from mksap_plugins.providers.offline_sentences import abbreviations, expand, statements_from
from mksap_plugins.stages.sentences import split_sentences
from mksap_plugins.stages.wording import CITATION, case_wording, term_category

_PERMISSION = re.compile(
    r"\b(?:reprinted|adapted|modified|reproduced|redrawn|data|information) (?:with permission )?(?:from|by)\b"
    r"|\bwith permission\b|©|\bcopyright\b|\bsource:|\bcourtesy of\b|\bpublished (?:by|in)\b|\ball rights reserved\b"
    r"|\bet al\b|\bdoi\b|\bPMID\b|\bIn: [A-Z]",
    re.I,
)
_YES_NO = re.compile(
    r"^(?:yes|no|y|n|\+{1,3}|[-−–—]|✓|✔|✗|✘|x|none|n/?a|not applicable|unknown|variable|see text|see below|"
    r"not available|not reported|absent|present|positive|negative|\?)$",
    re.I,
)
_IMPERATIVE = re.compile(
    r"^(?:Add|Avoid|Titrate|Check|Measure|Start|Stop|Use|Give|Consider|Do|Repeat|Monitor|Obtain|Perform|Treat"
    r"|Administer|Draw|Record|Reduce|Increase|Decrease|Hold|Discontinue|Continue|Switch|Begin|Assess|Evaluate"
    r"|Confirm|Exclude|Refer|Test|Screen|Limit|Restrict|Withhold|Apply|Inject|Infuse|Collect|Weigh)\b"
)
_QUALIFIER = re.compile(r"\b(?:only|where|if|when|unless|except|provided|followed by)\b", re.I)
_GENERIC_HEADERS = {"comments", "comment", "notes", "note", "remarks", "details", "description", "value", "values"}
_GENERIC_LABELS = frozenset(
    "confirmation comments comment notes note other general definition summary remarks details all any".split()
)
_GENERIC_TOPIC = re.compile(r"\b(?:selected|various|common|other|specific|some|several)\b", re.I)
_POPULATION = re.compile(r"\b(?:group|population|patients?|setting|clinical setting|category|indication)\b", re.I)
_KINDS: list[tuple[str, re.Pattern[str]]] = [
    ("avoid", re.compile(r"avoid|contraindicat|not recommended|to avoid", re.I)),
    ("alternative", re.compile(r"alternative|second[- ]line|other options?", re.I)),
    ("preferred", re.compile(r"preferred|first[- ]line|recommended|of choice|initial (?:therapy|treatment)", re.I)),
    ("treatment", re.compile(r"treatment|therap|regimen|management|agents?\b|drugs?\b|medications?", re.I)),
    ("technique", re.compile(r"technique|procedure|method|protocol|how to", re.I)),
    ("interpretation", re.compile(r"interpretation|results?|meaning|significance", re.I)),
    ("test", re.compile(r"\btests?\b|testing|diagnostic|investigation|imaging|studies|study\b", re.I)),
    ("cause", re.compile(r"causes?|etiolog|risk factors?|mechanism|precipitants?|triggers?", re.I)),
    ("description", re.compile(
        r"description|definition|features?|characteristics?|findings?|manifestations?|presentation|symptoms|signs"
        r"|clinical|function", re.I)),
    ("threshold", re.compile(
        r"threshold|cutoff|cut-off|criteri|target|goal|level|value|range|dose|dosage|duration|timing|frequency"
        r"|egfr|gfr|count|concentration|score|interval|\bage\b", re.I)),
    ("comment", re.compile(r"comments?|notes?|remarks?|details?|considerations?", re.I)),
]  # fmt: skip
_HEADER_UNIT = re.compile(r"\s*\(([^()]{1,20})\)\s*$")
_UNITISH = re.compile(r"(?:%|[a-zA-Zμ°²³/. ]{1,16})")
_BARE_NUMBER = re.compile(r"[<>≤≥]?\s?\d[\d.,]*(?:\s?[–-]\s?\d[\d.,]*)?")
_FEATURE_COLUMN = re.compile(
    r"^(?:features?|characteristics?|findings?|parameters?|variables?|properties|measures?)$", re.I
)
_ADJECTIVE = re.compile(
    r"(?:ed|al|ic|ive|ous|ent|ant|ible|able|ar|high|low|normal|absent|present|mild|moderate|severe|rare|common)$", re.I
)


def _sentence_case(title: str) -> str:
    """'Community-Acquired Pneumonia' -> 'community-acquired pneumonia'; acronyms stay."""
    words = []
    for w in title.split():
        parts = w.split("-")
        words.append(
            "-".join(p if sum(c.isupper() for c in p) >= 2 or not p[:1].isupper() else p.lower() for p in parts)
        )
    return " ".join(words)


def _lower_first(text: str) -> str:
    words = text.split(" ", 2)
    first = words[0]
    plain = first[:1].isupper() and (first[1:2].islower() or first == "A") and "-" not in first[:3]
    if plain and len(words) > 1 and words[1][:1].isupper() and words[1][1:2].islower():
        return text  # "New York Heart Association": a name
    return text[0].lower() + text[1:] if plain else text


def _upper_first(text: str) -> str:
    return text[0].upper() + text[1:] if text and "a" <= text[0] <= "z" else text


def caption_parts(caption: str) -> tuple[str, str, str]:
    """(head, link, topic) of a caption, in sentence case: 'Empiric Outpatient Treatment of
    Community-Acquired Pneumonia' -> ('empiric outpatient treatment', 'of', 'community-acquired
    pneumonia'); ('', '', '') when there is none."""
    caption = (caption or "").strip().rstrip(".")
    if not caption:
        return "", "", ""
    m = re.search(r"\s(in|of|for|among|after|during)\s", caption)
    if not m:
        return _sentence_case(caption), "", ""
    return _sentence_case(caption[: m.start()]), m.group(1), _sentence_case(caption[m.end() :])


def column_kind(header: str) -> str:
    """What a column holds, read from its own label first ('Kidney Function / eGFR' holds a
    value), then from its group's."""
    parts = [p.strip() for p in header.split(" / ") if p.strip()]
    for part in [*reversed(parts), header]:
        if part.lower() in _GENERIC_HEADERS and len(parts) > 1:
            continue
        for kind, rx in _KINDS:
            if rx.search(part):
                return kind
    if parts and parts[-1].lower() in _GENERIC_HEADERS:
        return "description" if parts[-1].lower() in ("description", "value", "values") else "comment"
    return "attribute" if header.strip() else "comment"


def column_noun(header: str) -> str:
    """What a column is about: 'Kidney Function / eGFR' -> 'eGFR', 'Kidney Function /
    Description' -> 'kidney function', 'Preferred Agents' -> 'preferred agents'."""
    parts = [p.strip() for p in header.split(" / ") if p.strip()]
    named = [p for p in parts if p.lower() not in _GENERIC_HEADERS]
    return _sentence_case(named[-1] if named else "")


def _singular(noun: str) -> str:
    words = noun.split()
    if words and re.fullmatch(r"[a-z]+[^s]s", words[-1]):
        words[-1] = words[-1][:-1]
    return " ".join(words)


def _plural_value(value: str) -> bool:
    return bool(re.search(r";|\band\b", value)) and not re.search(r"\bor\b", value.split(";")[0])


def _value_list(value: str) -> str:
    """'A; B; C' -> 'A; B; and C' (a list of items the cell stacks)."""
    items = [i.strip() for i in value.split("; ") if i.strip()]
    return value if len(items) < 3 else "; ".join(items[:-1]) + "; and " + items[-1]


def _is_sentence(value: str) -> bool:
    words = value.split()
    return (
        value.rstrip().endswith(".") or bool(_IMPERATIVE.match(value)) or (len(words) >= 12 and verb_index(words) > 0)
    )


def _adjective_phrase(value: str) -> bool:
    words = value.lower().replace(",", "").split()
    return 0 < len(words) <= 5 and all(
        _ADJECTIVE.search(w) or w.endswith("ly") or w in ("or", "to", "and", "very") for w in words
    )


class TableReader:
    """What one table request holds, read once: caption parts, columns, legend, topic."""

    def __init__(self, ctx: dict[str, Any]) -> None:
        self.caption: str = str(ctx.get("caption") or "").strip()
        self.columns: list[str] = [str(c) for c in ctx.get("columns") or []]
        self.head, self.link, self.topic = caption_parts(self.caption)
        notes = [str(n.get("text", "")) for n in ctx.get("footnotes", [])]
        self.legend = abbreviations([n for n in notes if " = " in n])
        self.population_rows = bool(self.columns) and bool(_POPULATION.search(self.columns[0]))
        self.feature_rows = bool(self.columns) and bool(_FEATURE_COLUMN.match(self.columns[0].strip()))
        kinds = [column_kind(c) for c in self.columns]
        self.treatment_col = next((j for j, k in enumerate(kinds) if j and k in ("preferred", "treatment")), None)
        self.test_col = next((j for j, k in enumerate(kinds) if j and k == "test"), None)

    # -- the row's subject ---------------------------------------------------------------

    def subject(self, label: str, group: str) -> str:
        label = label.rstrip(":").strip()
        topic = re.sub(r"\s+(?:in|among|for)\s+.*$", "", self.topic)
        topic_words = topic.lower().split()
        last = label.split()[-1].lower() if label.split() else ""
        if last in topic_words and not any(term_category(w) for w in label.split()):
            label = (
                f"{label} {' '.join(topic.split()[topic_words.index(last) + 1 :])}".strip()
            )  # "Early latent syphilis"
        first = column_noun(self.columns[0]) if self.columns else ""
        short = len(label.split()) == 1 and len(label) <= 4 and term_category(label) != "drug"
        if first and short and not self.feature_rows:
            label = f"{first} {label}"
        elif re.search(r"categor|classification|stages|grades|classes", self.head, re.I) and not self.feature_rows:
            named = " ".join(self.head.split()[:-1])
            if named and named.lower() not in label.lower():
                label = f"{label} {named}"  # "Normal" in "Blood Pressure Categories" -> "Normal blood pressure"
        if group:
            label = f"{label} ({_lower_first(group.rstrip(':'))})"
        return label

    def _topic_frame(self) -> str:
        if self.topic and self.link in ("in", "among") and not _GENERIC_TOPIC.search(self.topic):
            return f"In {self.topic}, "
        return ""

    def _noun_with_caption(self, noun: str) -> str:
        """The column's noun with the caption's own words for it: 'agents' + 'Preferred
        Antihypertensive Agents' -> 'antihypertensive agent'; 'regimen' + 'Empiric Outpatient
        Treatment' -> 'empiric outpatient regimen'."""
        base = _singular(re.sub(r"^(?:preferred|alternative|first-line|recommended)\s+", "", noun.lower()))
        head_words = self.head.split()
        if head_words and _singular(head_words[-1].lower()) == base.split()[-1:][0] if base else False:
            mods = [w for w in head_words[:-1] if w.lower() not in ("preferred", "alternative", "recommended")]
            return " ".join([*mods, base])
        if head_words and head_words[-1].lower() in ("treatment", "therapy", "management") and base:
            mods = [w for w in head_words[:-1] if w.lower() not in ("preferred", "alternative", "recommended")]
            return " ".join([*mods, base])
        return base or "treatment"

    def _target(self, subject: str) -> str:
        """Whom the row is about, with the caption's topic when the rows are patient groups."""
        low = _lower_first(subject)
        if self.population_rows and self.topic and self.link in ("of", "for") and not _GENERIC_TOPIC.search(self.topic):
            return f"{self.topic} in {low}"
        return low

    # -- one cell item ---------------------------------------------------------------------

    def sentences(self, subject: str, header: str, value: str, row_cells: list[str]) -> list[str]:
        unit = _HEADER_UNIT.search(header)
        if unit and _UNITISH.fullmatch(unit.group(1)):
            header = header[: unit.start()].strip()
            if _BARE_NUMBER.fullmatch(value.strip()):
                value = f"{value.strip()} {unit.group(1)}"
        if self.feature_rows and header:
            return [self._feature(subject, header, value)]
        kind = column_kind(header)
        if not header and re.match(r"^(?:[<>≤≥]|\d|at least|at most|more than|less than)", value):
            kind = "threshold"
        noun = column_noun(header)
        treatment = self._cell(row_cells, self.treatment_col)
        test = self._cell(row_cells, self.test_col)
        if _is_sentence(value) or kind in ("comment", "technique", "interpretation") and len(value.split()) > 3:
            sentences = [x for x in split_sentences(value) if verb_index(x.split()) >= 0 or _IMPERATIVE.match(x)]
            pieces = [
                p
                for v in sentences
                for c in clauses(v.rstrip(". "))
                for p in re.split(
                    r";\s+(?=[A-Z][a-z]+\s)|;\s+(?=(?:check|add|avoid|use|start|stop|monitor|measure|repeat|titrate)\b)",
                    c.text,
                )
            ]
            return [s for p in pieces if (s := self._framed(subject, p, kind, treatment, test))]
        value = value.rstrip(" .;")
        if kind in ("preferred", "treatment", "alternative"):
            return [self._treatment(subject, noun, value, kind)]
        if kind == "avoid":
            verb = "is contraindicated" if "contraindicat" in header.lower() else "should be avoided"
            verb = verb.replace("is ", "are ") if _plural_value(value) else verb
            return [f"{_upper_first(_lower_first(value))} {verb} in {_lower_first(subject)}."]
        if kind == "test":
            mods = " ".join(w for w in self.head.split() if w.lower() not in ("testing", "tests", "test"))
            what = f"the {mods} test" if mods else "the test"
            if _QUALIFIER.search(value) or "," in value:
                return [f"{_upper_first(what)} for {_lower_first(subject)} is the {_lower_first(value)}."]
            bare = not re.match(r"(?:the|a|an)\s", value, re.I)
            named = (
                f"The {_lower_first(value)}"
                if bare and re.search(r"(?:test|assay|challenge|study|scan)$", value, re.I)
                else value
            )
            return [f"{_upper_first(named)} is {what} for {_lower_first(subject)}."]
        if kind == "cause":
            noun = noun or "causes"
            link = "for" if "risk" in noun.lower() else "of"
            return [f"{_upper_first(noun)} {link} {_lower_first(subject)} include {_lower_first(value)}."]
        if kind == "description":
            return [self._description(subject, noun, value)]
        if kind == "threshold" or re.match(r"^[<>≤≥]|\d", value):
            return [self._threshold(subject, noun, value)]
        if noun:
            return [f"The {noun.lower()} for {_lower_first(subject)} is {_lower_first(value)}."]
        frame = self._topic_frame() or f"In {_lower_first(self.caption)}, "
        return [f"{frame}{_lower_first(subject)} is {_lower_first(value)}."]

    def _cell(self, cells: list[str], j: int | None) -> str:
        if j is None or j >= len(cells):
            return ""
        first = re.split(r";\s|,\s", cells[j])[0].strip()
        return first if 0 < len(first.split()) <= 8 and not _is_sentence(first) else ""

    def _treatment(self, subject: str, noun: str, value: str, kind: str) -> str:
        plural = _plural_value(value)
        what = self._noun_with_caption(noun or "treatment")
        if plural:
            what = what + "s" if not what.endswith("s") else what
        adjective = "an alternative" if kind == "alternative" else "the preferred"
        if plural:
            adjective = "alternative" if kind == "alternative" else "the preferred"
        target = self._target(subject)
        if _QUALIFIER.search(value) or len(value.split()) > 8 or plural:
            verb = "are" if plural else "is"
            opening = f"{adjective} {what} for {target}"
            return f"{_upper_first(opening)} {verb} {_lower_first(_value_list(value))}."
        verb = "are" if plural else "is"
        lead = value if "," not in value else f"{value},"
        return f"{_upper_first(lead)} {verb} {adjective} {what} for {target}."

    def _feature(self, attribute: str, column: str, value: str) -> str:
        """A feature table (rows are features, columns the things compared): 'The unenhanced
        attenuation of an adrenal adenoma is ≤10 HU.'"""
        thing = _lower_first(_sentence_case(column))
        modifiers = [w for w in self.topic.split()[:-1] if w.lower() not in thing.lower().split()]
        thing = " ".join([*modifiers, thing])
        article = "an" if thing[:1].lower() in "aeiou" else "a"
        return f"The {_lower_first(attribute)} of {article} {thing} is {_lower_first(value.rstrip(' .'))}."

    def _threshold(self, subject: str, noun: str, value: str) -> str:
        head = self.head
        if re.match(r"criteri", head, re.I) or (not noun and re.search(r"criteri", self.caption, re.I)):
            topic = self.topic or _lower_first(self.caption)
            lead = _lower_first(subject)
            article = "An" if lead[:1].lower() in "aeiou" else "A"
            if re.match(r"^\d", lead):
                article = "A"
            return f"{article} {lead} {value} is a criterion for {topic}."
        if re.search(r"categor|classification|stages?|grades?|class\b", head, re.I):
            frame = self._topic_frame()
            what = noun or "value"
            if len(what.split()) == 1 and re.search(r"(?:ic|al|ar)$", what) and len(self.head.split()) > 1:
                what = f"{what} {' '.join(self.head.split()[:-1])}"  # "systolic" -> "systolic blood pressure"
            article = "an" if what[:1].lower() in "aeiou" else "a"
            body = (
                f"{_lower_first(subject) if frame else _upper_first(subject)} is defined by {article} {what} {value}."
            )
            return f"{frame}{body}"
        what = noun.lower() if noun else "value"
        purpose = ""
        head_words = head.split()
        if head_words and re.match(r"thresholds?|targets?|goals?|levels?|cutoffs?", head_words[-1], re.I):
            purpose = " ".join(head_words[:-1])
        frame = self._topic_frame()
        opening = f"the {what} for {purpose}" if purpose else f"the {what}"
        body = f"{opening} is {value} in {_lower_first(subject)}."
        return f"{frame}{body}" if frame else _upper_first(body)

    def _description(self, subject: str, noun: str, value: str) -> str:
        if _adjective_phrase(value) and noun:
            return f"{_upper_first(noun)} in {_lower_first(subject)} is {_lower_first(value)}."
        if re.search(r"categor|classification|stages?|grades?", self.head, re.I):
            return f"{_upper_first(subject)} corresponds to {_lower_first(value)}."
        if noun and noun.lower() not in ("description", "features", "clinical features"):
            verb = "are" if noun.lower().endswith("s") and not noun.lower().endswith("ss") else "is"
            return f"The {noun.lower()} of {_lower_first(subject)} {verb} {_lower_first(value)}."
        return f"{_upper_first(subject)} is characterized by {_lower_first(value)}."

    def _framed(self, subject: str, text: str, kind: str, treatment: str, test: str) -> str:
        text = text.strip().rstrip(".")
        if not text or about_case(text):
            return ""
        low = _lower_first(subject)
        if re.match(r"^(?:Avoid|Do not)\b", text):
            return f"In {low}, {_lower_first(text)}."
        if _IMPERATIVE.match(text):
            action = _lower_first(text)
            if test and kind in ("technique", "comment"):
                return f"When performing the {_lower_first(test)} for {low}, {action}."
            if treatment:
                return f"When treating {low} with {_lower_first(treatment)}, {action}."
            return f"In {low}, {action}."
        if test and kind in ("interpretation", "technique"):
            return f"In the {_lower_first(test)} for {low}, {_lower_first(text)}."
        if low.lower() in _GENERIC_LABELS:
            frame = self.topic or _lower_first(self.caption)
            return f"In {frame}, {_lower_first(text)}." if frame else f"{_upper_first(text)}."
        named = {w.lower() for w in re.findall(r"[\w-]+", text)}
        if low.lower() in text.lower() or {w.lower() for w in re.findall(r"[\w-]+", subject)} <= named:
            return f"{_upper_first(text)}."
        treated = ""
        about_drug = re.search(r"initiat|\bdose|titrat|\bstart|\brise\b|increase|monitor|recheck", text, re.I)
        if treatment and about_drug and clinical_kind(text) != "drug":
            treated = f" treated with {_lower_first(treatment)}"
        return f"In {low}{treated}, {_lower_first(text)}."


def _skip(text: str) -> bool:
    return (
        not text
        or bool(_YES_NO.match(text.strip(" .*")))
        or bool(_PERMISSION.search(text))
        or bool(CITATION.search(text))
    )


def _items(paragraphs: list[str]) -> list[tuple[str, str]]:
    """(heading, item) for each paragraph that states something: a heading ending in ':' is no
    statement; the items under a heading that points at them ("one of the following:") are
    skipped, those under a naming heading keep it as context."""
    out, heading, deictic = [], "", False
    for p in paragraphs:
        p = p.strip()
        if p.endswith(":"):
            heading, deictic = p.rstrip(":"), bool(case_wording(p))
        elif p and not deictic:
            out.append((heading, p))
    return out


def _legend(note: str) -> bool:
    body = re.sub(r"^[a-z*†‡§¶#]: ", "", note)
    return body == note and " = " in note


def _caption_subject(text: str, reader: TableReader) -> str:
    """A footnote opening with the caption's head noun ('Thresholds do not apply ...') gets the
    caption's words for it ('Red blood cell transfusion thresholds do not apply ...')."""
    head = reader.head.split()
    first = text.split(" ", 1)
    if len(head) >= 2 and len(first) == 2 and first[0].lower() == head[-1].lower():
        return _upper_first(f"{reader.head} {first[1]}")
    return text


def table_statements(ctx: dict[str, Any]) -> list[dict[str, Any]]:
    """Statements from a table request (see the module docstring)."""
    reader = TableReader(ctx)
    extra = reader.caption or None
    drafts: list[dict[str, Any]] = []
    seen: set[str] = set()

    def add(text: str, index: int, heading: str = "") -> None:
        text = expand(re.sub(r"\s+", " ", text).strip(), reader.legend, limit=1)
        if text and text not in seen and len(text.split()) >= 5 and not about_case(text):
            seen.add(text)
            context = f"{extra} — {heading}" if extra and heading else extra
            drafts.append({"statement": text, "extra_field": context, "source_index": index})

    last_label = ""
    for row in ctx.get("rows", []):
        cells: list[str] = [str(c) for c in row.get("cells") or []]
        paragraphs: list[list[str]] = row.get("paragraphs") or [[c] for c in cells]
        if len(cells) < 2 or all(_skip(c) for c in cells if c):
            continue
        labels = [p for p in (paragraphs[0] if paragraphs else []) if p.strip()]
        label = labels[0] if labels else last_label
        if not label or _skip(label):
            continue
        last_label = label
        subject = expand(reader.subject(label, str(row.get("group") or "")), reader.legend, limit=1)
        if len(labels) > 1 and labels[0].endswith(":"):
            noun = re.sub(r"^.*\bwith\s+", "", labels[0].rstrip(":")).strip()
            listed = "; ".join(labels[1:])
            if noun and noun != labels[0].rstrip(":") and not _skip(listed):
                topic = reader.topic or _lower_first(reader.caption)
                frame = f"In {topic}, " if topic else ""
                what = _lower_first(noun) if frame else _upper_first(noun)
                add(f"{frame}{what} include {_lower_first(_value_list(listed))}.", row["index"])
        for j, parts in enumerate(paragraphs[1:], start=1):
            header = reader.columns[j] if j < len(reader.columns) else ""
            for heading, value in _items(parts):
                if value.rstrip(" .") == label.rstrip(": ") or _skip(value):
                    continue
                for text in reader.sentences(subject, header, value, cells):
                    add(text, row["index"], heading)
    for note in ctx.get("footnotes", []):
        text = str(note.get("text", ""))
        if _legend(text) or _skip(text):
            continue
        body = _caption_subject(re.sub(r"^[a-z*†‡§¶#]: ", "", text), reader)
        for draft in statements_from(body, [reader.caption], "", reader.legend):
            add(draft.text, note["index"])
    return drafts
