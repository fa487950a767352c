"""assemble: the output question file: every original field unchanged, plus statements in the
earlier tool's schema, rejected statements with their findings, and provenance."""

from __future__ import annotations

from typing import Any

from mksap.contracts.stage import Stage, StageJob
from mksap.contracts.statements import Statement
from mksap_plugins.stages.nlp import NlpAnalysis, NlpStage
from mksap_plugins.stages.parse import ParsedQuestion, ParseStage
from mksap_plugins.stages.validate import ValidatedStatements, ValidateStage

LEGACY_FIELDS = ("statement", "extra_field", "cloze_candidates")


def _out(s: Statement, table: bool = False) -> dict[str, Any]:
    """Legacy fields first (downstream scripts read them), then what mksap adds."""
    data: dict[str, Any] = {k: getattr(s, k) for k in LEGACY_FIELDS}
    if table:
        data["table_source"] = s.table_source
    data["id"] = s.id
    data["findings"] = [f.model_dump() for f in s.findings]
    return data


class AssembleStage(Stage):
    """Writes the output question JSON (or the input file itself with --in-place)."""

    name = "assemble"
    version = "2"
    needs = ("parse", "nlp", "validate")
    final = True

    def run(self, job: StageJob) -> dict[str, Any]:
        parsed = job.read(ParseStage, ParsedQuestion)
        nlp = job.read(NlpStage, NlpAnalysis)
        result = job.read(ValidateStage, ValidatedStatements)
        by_source: dict[str, list[Statement]] = {"critique": [], "key_point": [], "table": []}
        for s in result.accepted:
            by_source[s.source].append(s)
        doc = dict(parsed.document)
        doc["true_statements"] = {
            "from_critique": [_out(s) for s in by_source["critique"]],
            "from_key_points": [_out(s) for s in by_source["key_point"]],
        }
        doc["table_statements"] = {
            "statements": [_out(s, table=True) for s in by_source["table"]],
            "tables_processed": len(parsed.tables),
            "tables_skipped": len(parsed.skipped_tables),
        }
        doc["rejected_statements"] = [_out(s, table=s.source == "table") for s in result.rejected]
        codes: dict[str, int] = {}
        for s in [*result.accepted, *result.rejected]:
            for f in s.findings:
                codes[f.code] = codes.get(f.code, 0) + 1
        doc["mksap"] = {
            "provenance": {**job.provenance, "nlp": nlp.tier},
            "validation": {
                "accepted": len(result.accepted),
                "rejected": len(result.rejected),
                "repair_attempted": len(result.repair_attempted),
                "repaired": len(result.repaired),
                "repaired_ids": result.repaired,
                "repair_failed_ids": result.repair_failed,
                "findings_by_code": dict(sorted(codes.items())),
                "lab_panels_skipped": parsed.skipped_tables,
                "clinical_tables": [t.file for t in parsed.tables],
            },
        }
        return doc
