"""Reading a built question back for `mksap show`."""

from __future__ import annotations

from mksap.advice import advised
from mksap.bank import QUESTION_ID, find
from mksap.contracts.errors import ConfigError
from mksap.contracts.output import NotBuiltError, OutputDocument
from mksap.contracts.statements import candidate_spans
from mksap.settings import Settings


def load_output(settings: Settings, qid: str) -> OutputDocument:
    """The built question `qid`; a `NotBuiltError` that says how to build it (the command to
    run, with this invocation's locations), or that the bank has no such question."""
    qid = qid.strip().lower()
    if not QUESTION_ID.match(qid):
        raise ConfigError(f"'{qid}' is not a question id like cvmcq24001")
    bank = settings.data.is_dir()
    question = find(settings.data, qid) if bank else None
    if question is not None:
        path = question.json_path if settings.in_place else settings.out / question.system / qid / f"{qid}.json"
    else:  # not (or no longer) in the bank: an output built earlier can still be shown
        path = (settings.data if settings.in_place else settings.out) / qid[:2] / qid / f"{qid}.json"
    try:
        return OutputDocument.read(path)
    except NotBuiltError as e:
        if question is None and bank:
            raise NotBuiltError(
                f"{qid} is not a question of the bank {settings.data} (no folder {settings.data / qid[:2] / qid}); "
                f"`{advised(settings, 'status')}` lists its questions"
            ) from None
        if question is None:
            raise NotBuiltError(f"{qid} has not been built ({e}), and the bank {settings.data} is not there") from None
        raise NotBuiltError(f"{qid} has not been built ({e}); run: {advised(settings, 'run', qid)}") from None


def mark(statement: str, candidates: list[str]) -> str:
    """The statement with each placed cloze candidate in [brackets] (as the exporters place them)."""
    parts: list[str] = []
    pos = 0
    for start, end, _ in candidate_spans(statement, candidates):
        parts += [statement[pos:start], f"[{statement[start:end]}]"]
        pos = end
    return "".join(parts) + statement[pos:]


def render(doc: OutputDocument) -> str:
    lines = [f"{doc.question_id}: {doc.source.get('educational_objective', '')}"]
    groups = [
        ("From the critique", doc.true_statements.from_critique),
        ("From the key points", doc.true_statements.from_key_points),
        ("From tables", doc.table_statements.statements),
        ("Rejected by validation", doc.rejected_statements),
    ]
    for title, statements in groups:
        if not statements:
            continue
        lines.append(f"\n{title} ({len(statements)})")
        for s in statements:
            lines.append(f"  - {mark(s.statement, s.cloze_candidates)}")
            if s.extra_field:
                lines.append(f"      extra: {s.extra_field}")
            for f in s.findings:
                lines.append(f"      {f.severity}: {f.code}: {f.message}")
    prov = doc.mksap.provenance
    if prov.provider:
        lines.append(f"\nbuilt by {prov.provider}/{prov.model} at {prov.built_at}")
    return "\n".join(lines)
