"""Reading a built question back for `mksap show`."""

from __future__ import annotations

import json
from typing import Any

from mksap.bank import QUESTION_ID
from mksap.contracts.errors import ConfigError, InputError
from mksap.settings import Settings


def load_output(settings: Settings, qid: str) -> dict[str, Any]:
    qid = qid.strip().lower()
    if not QUESTION_ID.match(qid):
        raise ConfigError(f"'{qid}' is not a question id like cvmcq24001")
    base = settings.data if settings.in_place else settings.out
    path = base / qid[:2] / qid / f"{qid}.json"
    if not path.is_file():
        raise InputError(f"{qid} has not been built ({path} missing); run: mksap run {qid}")
    doc = json.loads(path.read_text(encoding="utf-8"))
    if "true_statements" not in doc:
        raise InputError(f"{path} holds no statements yet; run: mksap run {qid}")
    return doc


def mark(statement: str, candidates: list[str]) -> str:
    """The statement with each cloze candidate in [brackets] (first occurrence)."""
    for cand in sorted(candidates, key=len, reverse=True):
        i = statement.find(cand)
        if i >= 0 and "[" not in statement[i : i + len(cand)]:
            statement = f"{statement[:i]}[{cand}]{statement[i + len(cand) :]}"
    return statement


def render(doc: dict[str, Any]) -> str:
    lines = [f"{doc['question_id']}: {doc.get('educational_objective', '')}"]
    groups = [
        ("From the critique", doc["true_statements"].get("from_critique", [])),
        ("From the key points", doc["true_statements"].get("from_key_points", [])),
        ("From tables", doc.get("table_statements", {}).get("statements", [])),
        ("Rejected by validation", doc.get("rejected_statements", [])),
    ]
    for title, statements in groups:
        if not statements:
            continue
        lines.append(f"\n{title} ({len(statements)})")
        for s in statements:
            lines.append(f"  - {mark(s['statement'], s.get('cloze_candidates', []))}")
            if s.get("extra_field"):
                lines.append(f"      extra: {s['extra_field']}")
            for f in s.get("findings", []):
                lines.append(f"      {f['severity']}: {f['code']}: {f['message']}")
    prov = doc.get("mksap", {}).get("provenance", {})
    if prov:
        lines.append(f"\nbuilt by {prov.get('provider')}/{prov.get('model')} at {prov.get('built_at')}")
    return "\n".join(lines)
