"""The statement-quality report behind `mksap validate`, computed from the built outputs.

Per system and overall: statements per question, words per statement (median, p90), cloze
candidates per statement (and the share that occur verbatim), findings by code, the repair
round's success rate, the share of statements that pass with no error finding, and the tables
used (clinical) and skipped (lab panels).
"""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path

from pydantic import BaseModel, Field

from mksap.contracts.output import NotBuiltError, OutputDocument

#: Finding codes that mean the statement talks about the case or the source.
CASE_CODES = ("case_specific", "source_reference", "answer_framing", "citation_reference")


class QualityStats(BaseModel):
    """Statement quality over a set of built questions."""

    questions: int = 0
    statements: int = Field(0, description="statements in the output (accepted, flagged ones included)")
    rejected: int = Field(0, description="statements set aside in rejected_statements")
    statements_per_question: float = 0.0
    words_median: float = 0.0
    words_p90: float = 0.0
    candidates_per_statement: float = 0.0
    candidates_verbatim_pct: float = 100.0
    findings_by_code: dict[str, int] = Field(default_factory=dict)
    repair_attempted: int = 0
    repaired: int = 0
    repair_success_rate: float | None = Field(None, description="repaired / attempted; None if none attempted")
    passing_pct: float = Field(100.0, description="share of all statements (rejected too) with no error finding")
    case_wording_in_output: int = Field(0, description="output statements flagged case-specific or source-referring")
    clinical_tables: int = 0
    lab_panels_skipped: int = 0


class QualityReport(BaseModel):
    """`mksap validate` result: per system and overall."""

    systems: dict[str, QualityStats]
    overall: QualityStats
    not_built: list[str] = Field(default_factory=list, description="targets without an output file")


def _percentile(values: list[int], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return float(ordered[index])


def stats_of(docs: list[OutputDocument]) -> QualityStats:
    """Aggregate the quality numbers of some built question documents."""
    words: list[int] = []
    candidates = verbatim = shown_count = rejected_count = passing = case_wording = 0
    codes: Counter[str] = Counter()
    attempted = repaired = clinical = skipped = 0
    for doc in docs:
        for s, rejected in doc.statements():
            codes.update(f.code for f in s.findings)
            passing += not any(f.severity == "error" for f in s.findings)
            if rejected:
                rejected_count += 1
                continue
            shown_count += 1
            words.append(len(s.statement.split()))
            candidates += len(s.cloze_candidates)
            verbatim += sum(1 for c in s.cloze_candidates if c and c in s.statement)
            case_wording += any(f.code in CASE_CODES for f in s.findings)
        attempted += doc.mksap.validation.repair_attempted
        repaired += doc.mksap.validation.repaired
        clinical += doc.table_statements.tables_processed
        skipped += doc.table_statements.tables_skipped
    total = shown_count + rejected_count
    return QualityStats(
        questions=len(docs),
        statements=shown_count,
        rejected=rejected_count,
        statements_per_question=round(shown_count / len(docs), 2) if docs else 0.0,
        words_median=float(statistics.median(words)) if words else 0.0,
        words_p90=_percentile(words, 0.9),
        candidates_per_statement=round(candidates / shown_count, 2) if shown_count else 0.0,
        candidates_verbatim_pct=round(100 * verbatim / candidates, 1) if candidates else 100.0,
        findings_by_code=dict(sorted(codes.items())),
        repair_attempted=attempted,
        repaired=repaired,
        repair_success_rate=round(repaired / attempted, 3) if attempted else None,
        passing_pct=round(100 * passing / total, 1) if total else 100.0,
        case_wording_in_output=case_wording,
        clinical_tables=clinical,
        lab_panels_skipped=skipped,
    )


def quality_report(outputs: list[tuple[str, str, Path]]) -> QualityReport:
    """The report over (system, qid, output path) triples; missing outputs are listed."""
    by_system: dict[str, list[OutputDocument]] = {}
    not_built: list[str] = []
    for system, qid, path in outputs:
        try:
            by_system.setdefault(system, []).append(OutputDocument.read(path))
        except NotBuiltError:
            not_built.append(qid)
    every = [d for docs in by_system.values() for d in docs]
    return QualityReport(
        systems={s: stats_of(docs) for s, docs in sorted(by_system.items()) if docs},
        overall=stats_of(every),
        not_built=not_built,
    )


def render(report: QualityReport) -> str:
    """The report as a plain-text table, then findings by code."""
    head = f"{'system':<8}{'qs':>4}{'stmts':>7}{'/q':>6}{'words med/p90':>15}{'cands':>7}{'verb%':>7}"
    head += f"{'pass%':>7}{'repaired':>10}{'rej':>5}{'tables':>8}{'labs':>6}"
    lines = [head]
    rows = [*report.systems.items(), ("all", report.overall)]
    for name, s in rows:
        rep = f"{s.repaired}/{s.repair_attempted}"
        lines.append(
            f"{name:<8}{s.questions:>4}{s.statements:>7}{s.statements_per_question:>6.1f}"
            f"{f'{s.words_median:g}/{s.words_p90:g}':>15}{s.candidates_per_statement:>7.2f}"
            f"{s.candidates_verbatim_pct:>7.1f}{s.passing_pct:>7.1f}{rep:>10}{s.rejected:>5}"
            f"{s.clinical_tables:>8}{s.lab_panels_skipped:>6}"
        )
    lines.append("")
    lines.append("findings by code (all systems):")
    for code, n in report.overall.findings_by_code.items() or [("none", 0)]:
        lines.append(f"  {code:<26}{n:>6}")
    rate = report.overall.repair_success_rate
    lines.append(f"repair success rate: {'n/a (nothing to repair)' if rate is None else f'{100 * rate:.0f}%'}")
    lines.append(f"case-specific / source-referring statements in the output: {report.overall.case_wording_in_output}")
    if report.not_built:
        lines.append(f"not built ({len(report.not_built)}): {' '.join(report.not_built)}; run: mksap run")
    return "\n".join(lines)
