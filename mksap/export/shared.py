"""Tables shared by several questions: their statements are exported once.

The same clinical table is often copied into several questions (`cv/<q1>/tables/x.html`,
`np/<q2>/tables/x.html`); built from one request, its statements come out the same in each.
An export (and a sync) writes each such statement once: one note, tagged with every question
and system that uses the table, its Source naming them all.

Copies are found by their `share_key` (`mksap.contracts.exporter.shared_table_key`): the
digest of the table file's content, the statement's row unit and index within it, and its
text; never the question or the file name. Two different tables that happen to share a file
name stay apart.

Of the copies of one statement, the one whose note the target already holds keeps it (the
first, in question order, with a GUID from the previous export of the file; for a sync, the
first with a note in Anki), else the first in question order. So re-importing keeps the
review history of the note a user already studies, and a deck exported before copies were
merged keeps the notes of its first question. The others are listed on it (`copies`): their
old notes are no longer written (the export report counts those the previous export wrote;
a sync tags them `mksap::gone`, as any note whose statement went away).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from mksap.bank import Question
from mksap.contracts.exporter import ExportQuestion, ExportStatement, StatementCopy


def table_digests(question: Question) -> dict[str, str]:
    """File name -> digest of the content (spacing aside) of each table file of `question`;
    a file that cannot be read has none (its statements are then never merged)."""
    digests: dict[str, str] = {}
    for path in question.tables:
        try:
            raw = path.read_bytes()
        except OSError:
            continue
        digests[path.name] = hashlib.sha256(b" ".join(raw.split())).hexdigest()[:16]
    return digests


def copy_groups(questions: Iterable[ExportQuestion]) -> list[list[ExportStatement]]:
    """The statements that are copies of one another (two or more with one `share_key`),
    each group in question order."""
    groups: dict[str, list[ExportStatement]] = defaultdict(list)
    for q in questions:
        for s in q.statements:
            if s.share_key is not None:
                groups[s.share_key].append(s)
    return [sorted(group, key=lambda s: (s.question_id, s.statement_id)) for group in groups.values() if len(group) > 1]


@dataclass
class Merged:
    """The questions with each shared statement once, and what became of the other copies."""

    questions: list[ExportQuestion]
    into: dict[str, str] = field(default_factory=dict)  # copy's stable id -> the one written
    retired: dict[str, str] = field(default_factory=dict)  # GUID a copy had -> its stable id


def held_in_file(s: ExportStatement) -> bool:
    """Whether the previous export of the file wrote or kept a note for `s` (the core set its GUID)."""
    return s.guid is not None


def merge(questions: list[ExportQuestion], held: Callable[[ExportStatement], bool] = held_in_file) -> Merged:
    """Each group of copies as one statement, in the place of the copy that keeps the note:
    the first (question order) for which `held` is true, else the first. It shows the first
    copy that validation did not flag (the copies normally agree), and lists the others in
    `copies`; they leave their questions."""
    merged = Merged(questions=[])
    keepers: dict[str, ExportStatement] = {}
    for group in copy_groups(questions):
        keeper = next((s for s in group if held(s)), group[0])
        shown = next((s for s in group if not s.flagged), group[0])
        others = [s for s in group if s is not keeper]
        identity = ("question_id", "system", "statement_id", "table_source", "guid", "share_key")
        keepers[keeper.stable_id] = shown.model_copy(
            update={
                **{name: getattr(keeper, name) for name in identity},
                "copies": [StatementCopy(**s.model_dump(include={*identity[:3], "guid"})) for s in others],
            }
        )
        for s in others:
            merged.into[s.stable_id] = keeper.stable_id
            if s.guid is not None:
                merged.retired[s.guid] = s.stable_id
    for q in questions:
        statements = [keepers.get(s.stable_id, s) for s in q.statements if s.stable_id not in merged.into]
        merged.questions.append(q.model_copy(update={"statements": statements}))
    return merged
