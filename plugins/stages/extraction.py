"""What the three extraction stages (critique, key points, tables) share: the request payload
built from the nlp artifacts, the request itself, and turning drafts into statements with
content-anchored ids.

A statement's id is its source unit's key plus its place among that unit's statements:
`c:1a2b3c4d.2` is the second statement of the critique sentence whose normalised text digests
to `1a2b3c4d` (`k:` a key point, `t:<table stem>:` a table row or footnote). Inserting,
deleting or moving *other* units never changes it. An edited unit keeps the key it had in the
previous build when the two still read alike (`SAME_UNIT`), so fixing a typo keeps the ids;
a rephrased statement of the same unit keeps its id too (the id is unit + index, not text).
"""

from __future__ import annotations

import difflib
import hashlib
import html
import json
import re
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from mksap.contracts.provider import LLMRequest, Message, schema_of
from mksap.contracts.stage import StageJob
from mksap.contracts.statements import SourceKind, Statement, StatementDrafts
from mksap_plugins.stages.html_tables import ParsedTable
from mksap_plugins.stages.nlp_rules import SentenceInfo
from mksap_plugins.stages.parse import ParsedQuestion
from mksap_plugins.stages.prompts import Prompt

#: How alike (0-1, characters of the normalised texts) an edited unit must stay to its
#: previous version to keep its key.
SAME_UNIT = 0.85
PREFIXES: dict[SourceKind, str] = {"critique": "c:", "key_point": "k:", "table": "t:"}
_TAG = re.compile(r"<[^>]*>")
_LEGACY_ID = re.compile(r"[ck](\d{1,4})\.\d+|t:[^:]+:(\d{1,4})\.\d+")


class UnitKey(BaseModel):
    """A source unit as ids know it: its key and its normalised text. The artifact keeps them
    so the next build can match its units, edited ones included, against these."""

    key: str
    text: str


class ExtractedStatements(BaseModel):
    """The artifact of an extraction stage."""

    statements: list[Statement]
    superseded: list[str] = Field(
        default_factory=list, description="ids of earlier statements a better restatement replaces"
    )
    units: list[UnitKey] = Field(
        default_factory=list, description="every source unit's key, in source order (what the next build matches)"
    )


def normalised(text: str) -> str:
    """A unit's text as its identity sees it: no HTML, case, punctuation or spacing."""
    text = unicodedata.normalize("NFKC", html.unescape(_TAG.sub(" ", text))).casefold()
    return " ".join("".join(" " if unicodedata.category(c).startswith("P") else c for c in text).split())


def unit_digest(text: str, salt: int = 1) -> str:
    """8 hex digits of a normalised text; `salt` > 1 tells apart units with the same text."""
    data = text if salt == 1 else f"{text}\x00{salt}"
    return hashlib.sha256(data.encode()).hexdigest()[:8]


def _alike(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def _best(scores: dict[int, float]) -> int | None:
    """The key of the single highest score (None when empty or tied)."""
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    if not ranked or len(ranked) > 1 and ranked[1][1] == ranked[0][1]:
        return None
    return ranked[0][0]


def unit_keys(prefix: str, texts: Sequence[str], previous: Sequence[UnitKey] = ()) -> list[UnitKey]:
    """The key of each unit, in order. A unit whose normalised text the previous build had
    keeps that key; an edited one takes the key of its best unique partner among the previous
    units left over (mutual best, similarity >= SAME_UNIT); any other gets `<prefix><digest>`.
    Keys are unique, and never one a left-over (removed) previous unit had."""
    norms = [normalised(t) for t in texts]
    keys: list[str | None] = [None] * len(norms)
    pool: dict[str, list[str]] = defaultdict(list)
    for unit in previous:
        if unit.key.startswith(prefix):
            pool[unit.text].append(unit.key)
    for i, norm in enumerate(norms):
        if pool.get(norm):
            keys[i] = pool[norm].pop(0)
    left = [(key, text) for text, ks in pool.items() for key in ks]
    edited = [i for i, k in enumerate(keys) if k is None]
    if edited and left:
        alike = {(i, j): _alike(norms[i], text) for i in edited for j, (_, text) in enumerate(left)}
        for i in edited:
            j = _best({j: alike[i, j] for j in range(len(left))})
            if j is not None and alike[i, j] >= SAME_UNIT and _best({n: alike[n, j] for n in edited}) == i:
                keys[i] = left[j][0]
    taken = {k for k in keys if k} | {key for key, _ in left}
    for i, norm in enumerate(norms):
        if keys[i] is None:
            salt = 1
            while (key := f"{prefix}{unit_digest(norm, salt)}") in taken:
                salt += 1
            keys[i] = key
            taken.add(key)
    return [UnitKey(key=k or "", text=n) for k, n in zip(keys, norms, strict=True)]


def previous_units(job: StageJob, stage: str) -> list[UnitKey]:
    """The unit keys the last build of `stage` gave this question ([] if none). Its artifact
    is still in place while the stage reruns: beside the artifacts it reads."""
    path = job.artifacts["parse"].with_name(f"{stage}.json")
    try:
        return ExtractedStatements.model_validate_json(path.read_bytes()).units
    except (OSError, ValidationError):
        return []


def table_units(table: ParsedTable) -> list[str]:
    """A table's units in source-index order: its rows (cells joined), then its footnotes."""
    return ["; ".join(row) for row in table.rows] + list(table.footnotes)


def unit_index(statement: Statement, parsed: ParsedQuestion) -> int:
    """Where a statement's source unit sits in `parsed` (a table: rows, then footnotes). From
    its `source_index` when the build set one; for a statement read back from an output file,
    found by its id's unit key (a key an edit inherited is not found) or read off a positional
    id of an earlier mksap (`c03.1`). ValueError when it cannot be found."""
    if statement.source_index is not None:
        return statement.source_index
    unit = statement.id.rpartition(".")[0]
    if statement.source == "table":
        table = next((t for t in parsed.tables if t.file == statement.table_source), None)
        stem = (statement.table_source or "").removesuffix(".html")
        texts = table_units(table) if table else []
        prefix = f"t:{stem}:"
    else:
        texts = parsed.critique if statement.source == "critique" else parsed.key_points
        prefix = PREFIXES[statement.source]
    for i, key in enumerate(unit_keys(prefix, texts)):
        if key.key == unit:
            return i
    legacy = _LEGACY_ID.fullmatch(statement.id)
    if legacy:
        return int(legacy.group(1) or legacy.group(2))
    raise ValueError(f"no source unit {unit} in {parsed.qid}")


def sentence_payload(objective: str, infos: list[SentenceInfo]) -> dict[str, Any]:
    """The sentences with the nlp stage's hints, as the prompt describes them."""
    return {
        "educational_objective": objective,
        "sentences": [
            {
                "index": i,
                "text": info.text,
                "entities": list(dict.fromkeys(t.text for t in info.entities)),
                "abbreviations": [f"{a.long} ({a.short})" for a in info.abbreviations],
                "negations": [f"{n.cue}: {n.scope}" for n in info.negations],
                "atomicity_hints": info.atomicity,
                "case_specific": info.case_specific,
            }
            for i, info in enumerate(infos)
        ],
    }


def statements_request(prompt: Prompt, payload: dict[str, Any], *, max_tokens: int = 4096) -> LLMRequest:
    """One extraction request. The payload is both the user message and the offline context."""
    return LLMRequest(
        task="statements",
        system=prompt.text,
        messages=[Message(role="user", content=json.dumps(payload, ensure_ascii=False, indent=1))],
        output_schema=schema_of(StatementDrafts),
        schema_name="StatementDrafts",
        context=payload,
        max_tokens=max_tokens,
    )


def extract(
    job: StageJob,
    prompt: Prompt,
    payload: dict[str, Any],
    source: SourceKind,
    id_prefix: str,
    units: list[UnitKey],
    table: str | None = None,
    context: str | None = None,
) -> list[Statement]:
    """Ask for statements; the n-th statement of source unit i gets the id `<key of i>.<n>`
    (`units` are the keys from `unit_keys(id_prefix, ...)`; a draft naming no unit gets
    `<id_prefix>x<digest of its own text>.<n>`). `context` is the default
    extra field (a table's caption)."""
    drafts, _ = job.ask(statements_request(prompt, payload), StatementDrafts)
    counts: dict[str, int] = {}
    statements = []
    for d in drafts.statements:
        text = " ".join(d.statement.split())
        if not text:
            continue
        known = 0 <= d.source_index < len(units)
        unit = units[d.source_index].key if known else f"{id_prefix}x{unit_digest(normalised(text))}"
        k = counts[unit] = counts.get(unit, 0) + 1
        extra = " ".join((d.extra_field or "").split()) or context
        statements.append(
            Statement(
                statement=text,
                extra_field=extra or None,
                id=f"{unit}.{k}",
                source=source,
                table_source=table,
                source_index=d.source_index if known else None,
            )
        )
    return statements
