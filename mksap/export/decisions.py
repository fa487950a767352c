"""Triage decisions: a reader's accept / reject / edit of a statement, made on the review page.

The page saves them to a file (`mksap-decisions.json`); `mksap decisions import FILE` merges it
into the build state (`<cache_dir>/decisions.json`, the same format). Every export and sync
applies them: a rejected statement is never exported, an edited text replaces the built one.
A decision is keyed by the statement's stable id and keeps the `source_digest` of the
statement it was made on; once a rebuild from a changed source gives that statement another
text, the decision "needs a new look": it is reported and not applied (the built statement is
used) until it is decided again.

A statement of a table copied into several questions is one statement to decide on
(`mksap.export.shared`): a decision on any copy applies to all of them, the newest one
when copies were decided differently.

Format (both files)::

    {"mksap": 1, "kind": "decisions",
     "decisions": {"<qid>/<statement id>": {"action": "accept" | "reject" | "edit",
                   "text": "<edited statement>" | null, "source_digest": "<16 hex>", "at": "<ISO time>"}}}
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from mksap.atomic import write_text
from mksap.bank import Question
from mksap.contracts.errors import InputError
from mksap.contracts.exporter import ExportQuestion, ExportStatement, StatementDecision
from mksap.export.shared import copy_groups, table_digests
from mksap.settings import Settings

if TYPE_CHECKING:
    from mksap.build.tasks import Build
    from mksap.contracts.registry import Registry

FORMAT = 1
KIND = "decisions"


class Decision(BaseModel):
    """One decision as the files keep it."""

    action: Literal["accept", "reject", "edit"]
    text: str | None = None
    source_digest: str = Field(min_length=1)
    at: str | None = None

    @model_validator(mode="after")
    def _edit_has_text(self) -> Decision:
        if self.action == "edit" and not (self.text or "").strip():
            raise ValueError("an edit needs a non-empty text")
        if self.action != "edit":
            self.text = None
        return self


class DecisionsFile(BaseModel):
    mksap: int = FORMAT
    kind: str = KIND
    decisions: dict[str, Decision] = Field(default_factory=dict)


class ImportReport(BaseModel):
    """The result of `mksap decisions import`."""

    file: str
    store: str
    imported: dict[str, int]  # action -> how many
    unknown: list[str]  # stable ids no built statement has: reported, not stored
    needs_new_look: list[str]  # imported, but the statement changed since it was decided on
    stored: int


class ReviewCounts(BaseModel):
    """Triage state of the built statements of some questions (`mksap status`)."""

    statements: int  # built statements the exports include (not flagged)
    decided: int
    undecided: int
    needs_new_look: list[str]
    awaiting_review: int  # undecided + needing a new look


class Applied(BaseModel):
    questions: list[ExportQuestion]
    rejected: int = 0
    edited: int = 0
    needs_new_look: int = 0


def store_path(settings: Settings) -> Path:
    return settings.cache_dir / "decisions.json"


def read_file(path: Path) -> dict[str, Decision]:
    """The decisions of a decisions file; anything else is an InputError of one line."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; save the decisions from the review page first") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read it: {getattr(e, 'strerror', None) or e}") from None
    try:
        data = json.loads(raw)
    except ValueError as e:
        raise InputError(f"{path}: not JSON ({e}); save the decisions from the review page again") from None
    if not isinstance(data, dict) or data.get("kind") != KIND:
        kind = data.get("kind") if isinstance(data, dict) else type(data).__name__
        raise InputError(f"{path}: not an mksap decisions file (kind {kind!r}, expected {KIND!r})")
    if data.get("mksap") != FORMAT:
        raise InputError(
            f"{path}: decisions format version {data.get('mksap')!r}; this mksap reads version {FORMAT} "
            "(save the decisions again from a page this mksap wrote)"
        )
    try:
        return DecisionsFile.model_validate(data).decisions
    except ValidationError as e:
        first = e.errors()[0]
        where = "/".join(str(p) for p in first["loc"][1:2]) or "decisions"
        raise InputError(f"{path}: decision {where!r}: {first['msg']}") from None


def load(settings: Settings) -> dict[str, Decision]:
    """The stored decisions (none before the first import)."""
    path = store_path(settings)
    return read_file(path) if path.exists() else {}


def save(settings: Settings, decisions: dict[str, Decision]) -> None:
    write_text(store_path(settings), serialise(decisions))


def serialise(decisions: dict[str, Decision]) -> str:
    record = DecisionsFile(decisions=dict(sorted(decisions.items())))
    return json.dumps(record.model_dump(mode="json"), ensure_ascii=False, indent=1, sort_keys=True) + "\n"


def relevant(decisions: dict[str, Decision], qids: Iterable[str]) -> dict[str, Decision]:
    """The decisions on statements of these questions."""
    wanted = set(qids)
    return {sid: d for sid, d in decisions.items() if sid.partition("/")[0] in wanted}


#: Which of two decisions made at the same time on copies of one statement wins.
_WEIGHT = {"accept": 0, "edit": 1, "reject": 2}


def annotate(questions: list[ExportQuestion], decisions: dict[str, Decision]) -> list[ExportQuestion]:
    """Each statement with its stored decision (`decision`), whether still current or not.
    The copies of a shared table's statement all get the same one: the newest current
    decision on any of them (else the newest that needs a new look)."""
    for q in questions:
        for s in q.statements:
            d = decisions.get(s.stable_id)
            if d is not None:
                current = d.source_digest == s.source_digest
                s.decision = StatementDecision(action=d.action, text=d.text, at=d.at, current=current)
    for group in copy_groups(questions):
        made = [s.decision for s in group if s.decision is not None]
        pool = [d for d in made if d.current] or made
        if pool:
            chosen = max(pool, key=lambda d: (d.at or "", _WEIGHT[d.action]))
            for s in group:
                s.decision = chosen.model_copy()
    return questions


def apply(questions: list[ExportQuestion], decisions: dict[str, Decision]) -> Applied:
    """The questions as exports write them: rejected statements removed, edited texts in
    place of the built ones (cloze candidates no longer in the text dropped); a decision that
    needs a new look is not applied. A statement a reader accepted or edited is no longer
    flagged: the reader has looked at it."""
    result = Applied(questions=[])
    counted: set[str] = set()  # a shared table's statement counts once, however many copies

    def once(s: ExportStatement) -> int:
        if s.share_key is None:
            return 1
        new = s.share_key not in counted
        counted.add(s.share_key)
        return int(new)

    for q in annotate(questions, decisions):
        keep = []
        for s in q.statements:
            d = s.decision
            if d is None:
                keep.append(s)
                continue
            if not d.current:
                result.needs_new_look += once(s)
                keep.append(s)
                continue
            if d.action == "reject":
                result.rejected += once(s)
                continue
            if d.action == "edit" and d.text is not None:
                text = d.text.strip()
                s = s.model_copy(
                    update={"statement": text, "cloze_candidates": [c for c in s.cloze_candidates if c in text]}
                )
                result.edited += once(s)
            keep.append(s.model_copy(update={"flagged": False}))
        result.questions.append(q.model_copy(update={"statements": keep}))
    return result


def review_counts(questions: list[ExportQuestion], decisions: dict[str, Decision]) -> ReviewCounts:
    """How many built statements await a reader: those with no decision, and those whose
    decision needs a new look."""
    statements = decided = 0
    stale: list[str] = []
    seen: set[str] = set()  # a shared table's statement is one to review, however many copies
    for q in annotate(questions, decisions):
        for s in q.statements:
            if s.share_key in seen or s.decision is None and s.flagged:
                continue
            if s.share_key is not None:
                seen.add(s.share_key)
            if s.decision is not None and not s.decision.current:
                stale.append(s.stable_id)
            elif s.decision is not None:
                decided += 1
            statements += 1
    undecided = statements - decided - len(stale)
    return ReviewCounts(
        statements=statements,
        decided=decided,
        undecided=undecided,
        needs_new_look=stale,
        awaiting_review=undecided + len(stale),
    )


def import_file(settings: Settings, path: Path, built: list[ExportQuestion]) -> ImportReport:
    """Merge the decisions of `path` into the store: each replaces the stored one on the same
    statement; those on a stable id no built statement has are reported and left out."""
    incoming = read_file(path)
    by_id = {s.stable_id: s for q in built for s in q.statements}
    known = {sid: d for sid, d in incoming.items() if sid in by_id}
    stored = {**load(settings), **known}
    save(settings, stored)
    imported: dict[str, int] = {"accept": 0, "reject": 0, "edit": 0}
    for d in known.values():
        imported[d.action] += 1
    return ImportReport(
        file=str(path),
        store=str(store_path(settings)),
        imported=imported,
        unknown=sorted(set(incoming) - set(known)),
        needs_new_look=sorted(sid for sid, d in known.items() if d.source_digest != by_id[sid].source_digest),
        stored=len(stored),
    )


def built_questions(output_paths: Iterable[tuple[Question, Path]]) -> list[ExportQuestion]:
    """The exporters' view of every question that has been built (the others are skipped)."""
    from mksap.contracts.output import NotBuiltError, OutputDocument, holds_output

    found = []
    for q, path in output_paths:
        if not holds_output(path):
            continue
        try:
            found.append(ExportQuestion.from_document(OutputDocument.read(path), q.system, table_digests(q)))
        except NotBuiltError:
            continue
    return found


def import_decisions(settings: Settings, path: Path, registry: Registry | None = None) -> ImportReport:
    """`mksap decisions import FILE`: merge a decisions file into the build state."""
    from mksap.bank import parse_targets
    from mksap.build.tasks import Build

    build = Build.open(settings, notice=lambda m: None, use_cache=False, registry=registry)
    questions = parse_targets([], settings.data).discover(settings.data)
    return import_file(settings, path, built_questions([(q, build.output_path(q)) for q in questions]))


def review_status(settings: Settings, build: Build, questions: list[Question]) -> ReviewCounts:
    """`mksap status`'s triage counts for these questions (read-only)."""
    built = built_questions([(q, build.output_path(q)) for q in questions])
    return review_counts(built, relevant(load(settings), (q.qid for q in questions)))
