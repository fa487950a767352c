"""jsonl: one JSON object per statement, for scripts and other tools.

A statement of a table shared by several questions is one line: `question_id` is the question
that keeps it, `shared_with` lists the other questions' copies (question id, system, statement
id), empty for every other statement."""

from __future__ import annotations

import json
from pathlib import Path

from mksap.atomic import write_text
from mksap.contracts.exporter import Exporter, ExportOptions, ExportQuestion, ExportWritten, selected

FORMAT = 1


class JsonlExporter(Exporter[ExportOptions]):
    """One line per statement: question id, system, source, statement, candidates, findings,
    and the provider/model that produced it."""

    name = "jsonl"
    version = "2"  # 2: a shared table's statement is one line (`shared_with`)
    suffix = ".jsonl"
    unit = "lines"
    options_model = ExportOptions

    def export(
        self, questions: list[ExportQuestion], options: ExportOptions, path: Path
    ) -> ExportWritten:
        lines: list[str] = []
        flagged = 0
        for q in questions:
            keep, left_out = selected(q, options)
            flagged += left_out
            for s in keep:
                record = {
                    "format": FORMAT,
                    "question_id": s.question_id,
                    "system": s.system,
                    "source": s.source,
                    "table_source": s.table_source,
                    "statement_id": s.statement_id,
                    "shared_with": [c.model_dump(exclude={"guid"}) for c in s.copies],
                    "statement": s.statement,
                    "extra_field": s.extra_field,
                    "cloze_candidates": s.cloze_candidates,
                    "findings": [f.model_dump() for f in s.findings],
                    "flagged": s.flagged,
                    "provider": q.provider,
                    "model": q.model,
                }
                lines.append(json.dumps(record, ensure_ascii=False) + "\n")
        write_text(path, "".join(lines))
        return ExportWritten(items=len(lines), skipped={"flagged": flagged})
