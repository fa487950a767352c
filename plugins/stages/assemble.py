"""assemble: the output question file: every original field unchanged, plus statements in the
earlier tool's schema, rejected statements with their findings, and provenance."""

from __future__ import annotations

from collections import Counter

from mksap.contracts.output import (
    MksapRecord,
    OutputDocument,
    Provenance,
    TableStatements,
    TrueStatements,
    Validation,
)
from mksap.contracts.stage import Stage, StageJob
from mksap_plugins.stages.nlp import NlpAnalysis, NlpStage
from mksap_plugins.stages.parse import ParsedQuestion, ParseStage
from mksap_plugins.stages.validate import ValidatedStatements, ValidateStage


class AssembleStage(Stage):
    """Writes the output question JSON (or the input file itself with --in-place)."""

    name = "assemble"
    version = "3"
    needs = ("parse", "nlp", "validate")
    final = True

    def run(self, job: StageJob) -> OutputDocument:
        parsed = job.read(ParseStage, ParsedQuestion)
        nlp = job.read(NlpStage, NlpAnalysis)
        result = job.read(ValidateStage, ValidatedStatements)
        accepted = result.accepted
        codes = Counter(f.code for s in [*accepted, *result.rejected] for f in s.findings)
        return OutputDocument(
            source=parsed.document,
            true_statements=TrueStatements(
                from_critique=[s for s in accepted if s.source == "critique"],
                from_key_points=[s for s in accepted if s.source == "key_point"],
            ),
            table_statements=TableStatements(
                statements=[s for s in accepted if s.source == "table"],
                tables_processed=len(parsed.tables),
                tables_skipped=len(parsed.skipped_tables),
            ),
            rejected_statements=result.rejected,
            mksap=MksapRecord(
                provenance=Provenance(**job.provenance, nlp=nlp.tier),
                validation=Validation(
                    accepted=len(accepted),
                    rejected=len(result.rejected),
                    repair_attempted=len(result.repair_attempted),
                    repaired=len(result.repaired),
                    repaired_ids=result.repaired,
                    repair_failed_ids=result.repair_failed,
                    findings_by_code=dict(sorted(codes.items())),
                    lab_panels_skipped=parsed.skipped_tables,
                    clinical_tables=[t.file for t in parsed.tables],
                ),
            ),
        )
