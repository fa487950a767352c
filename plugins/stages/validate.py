"""validate: deterministic checks on every statement, one repair round through the provider
for statements with error findings, then accept or reject (never silently).

A repaired text is normalised and its candidates re-chosen against it, exactly as the cloze
stage does, so a repair can never leave a non-verbatim candidate behind.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field

from mksap.contracts.provider import LLMRequest, Message, schema_of
from mksap.contracts.stage import Stage, StageJob
from mksap.contracts.statements import Finding, Statement
from mksap.settings import PluginOptions
from mksap_plugins.stages.checks import SourceUnit, check, duplicates
from mksap_plugins.stages.cloze import ClozedStatements, ClozeStage, finish
from mksap_plugins.stages.extraction import unit_index
from mksap_plugins.stages.normalise import normalise
from mksap_plugins.stages.parse import ParsedQuestion, ParseStage
from mksap_plugins.stages.prompts import load_prompt


class RepairItem(BaseModel):
    statement_id: str
    statement: str
    cloze_candidates: list[str]


class RepairAnswer(BaseModel):
    """The answer of a repair request."""

    items: list[RepairItem]


class ValidatedStatements(BaseModel):
    """The validate artifact."""

    accepted: list[Statement]
    rejected: list[Statement]
    repaired: list[str] = Field(default_factory=list, description="ids fixed by the repair round")
    repair_attempted: list[str] = Field(default_factory=list, description="ids sent to the repair round")
    repair_failed: list[str] = Field(default_factory=list, description="ids still wrong after the repair round")


def source_unit(statement: Statement, parsed: ParsedQuestion) -> SourceUnit:
    """The unit a statement was drawn from, found by `unit_index` (a table's index past its
    rows is a footnote): its text, what it is read with (a table's caption, column labels, row
    group and the footnotes the row marks) and the sentence before it (the objective before the
    first one). The checks hold a statement's numbers to this unit, not to the whole question.
    An empty unit when the id does not resolve."""
    try:
        if statement.source == "table":
            table = next(t for t in parsed.tables if t.file == statement.table_source)
            index = unit_index(statement, parsed)
            labels = [table.caption, *table.columns()]
            if index >= len(table.rows):
                return SourceUnit(text=table.footnotes[index - len(table.rows)], context=" \n ".join(labels))
            group = table.sections[index] if index < len(table.sections) else ""
            marks = table.row_marks[index] if index < len(table.row_marks) else []
            notes = [n for n in table.footnotes if n.partition(":")[0] in marks]  # the row's own footnotes
            return SourceUnit(
                text="; ".join(table.rows[index]), context=" \n ".join([*labels, group, *notes]), previous=table.caption
            )
        index = unit_index(statement, parsed)
        units = parsed.critique if statement.source == "critique" else parsed.key_points
        return SourceUnit(text=units[index], previous=units[index - 1] if index else parsed.objective)
    except (ValueError, IndexError, StopIteration):
        return SourceUnit()


def neighbours(statement: Statement, parsed: ParsedQuestion) -> tuple[str, str]:
    """The source units before and after a statement's own (critique sentences, key points, or
    a table's rows; the objective before the first sentence), '' where there is none: what a
    repair needs to name a subject the statement's own sentence leaves out."""
    try:
        index = unit_index(statement, parsed)
        if statement.source == "table":
            rows = next(t for t in parsed.tables if t.file == statement.table_source).rows
            count, unit = len(rows), lambda i: "; ".join(rows[i])  # two rows joined, not the whole table
        else:
            units = parsed.critique if statement.source == "critique" else parsed.key_points
            count, unit = len(units), units.__getitem__
    except (ValueError, StopIteration):
        return "", ""
    first = parsed.objective if statement.source != "table" and index == 0 else ""
    before = unit(index - 1) if 0 < index <= count else first
    after = unit(index + 1) if 0 <= index < count - 1 else ""
    return before, after


def source_text(statement: Statement, parsed: ParsedQuestion) -> str:
    """The sentence, key point, table row or table footnote a statement was drawn from
    ('' if unknown)."""
    return source_unit(statement, parsed).text


def all_source_text(parsed: ParsedQuestion) -> str:
    """Everything the question says that a statement may draw on."""
    parts = [parsed.objective, *parsed.critique, *parsed.key_points]
    for t in parsed.tables:
        parts += [t.caption, *t.columns(), *(" ".join(r) for r in t.rows), *t.footnotes, *t.sections]
    return " \n ".join(parts)


def errors(s: Statement) -> list[Finding]:
    return [f for f in s.findings if f.severity == "error"]


def _repairable(s: Statement) -> bool:
    return any(f.code != "duplicate" for f in errors(s))


def _repair_item(s: Statement, parsed: ParsedQuestion) -> dict[str, Any]:
    """What the repair request says about one statement."""
    before, after = neighbours(s, parsed)
    return {
        "statement_id": s.id,
        "statement": s.statement,
        "cloze_candidates": s.cloze_candidates,
        "source_text": source_text(s, parsed),
        "sentence_before": before,
        "sentence_after": after,
        "problems": [f"{f.code}: {f.message}" for f in errors(s)],
    }


class ValidateOptions(PluginOptions):
    keep_rejected: bool = Field(
        False, description="keep statements failing validation in place, flagged, instead of setting them aside"
    )


class ValidateStage(Stage):
    """Checks every statement; one LLM repair round for errors; rejects what stays wrong."""

    name = "validate"
    version = "3"
    needs = ("parse", "cloze")
    uses_llm = True
    options_model = ValidateOptions

    def config(self) -> dict[str, Any]:
        return {**load_prompt("repair").fingerprint(), "keep_rejected": self.options.keep_rejected}

    def findings(self, statements: list[Statement], parsed: ParsedQuestion) -> list[Statement]:
        """Every statement with its findings (duplicates compared across the question)."""
        everything = all_source_text(parsed)
        checked = [s.model_copy(update={"findings": check(s, source_unit(s, parsed), everything)}) for s in statements]
        dups = duplicates(checked)
        return [s.model_copy(update={"findings": [*s.findings, dups[s.id]]}) if s.id in dups else s for s in checked]

    def run(self, job: StageJob) -> ValidatedStatements:
        parsed = job.read(ParseStage, ParsedQuestion)
        statements = self.findings(job.read(ClozeStage, ClozedStatements).statements, parsed)
        broken = [s for s in statements if _repairable(s)]
        if broken:
            fixes = self._repair(job, broken, parsed)
            updated = []
            for s in statements:
                fix = fixes.get(s.id)
                if fix is None or not fix.statement.strip():
                    updated.append(s)
                    continue
                repaired = s.model_copy(update={"statement": normalise(fix.statement), "findings": []})
                updated.append(finish(repaired, fix.cloze_candidates))
            statements = self.findings(updated, parsed)
        attempted = {s.id for s in broken}
        keep = self.options.keep_rejected
        return ValidatedStatements(
            accepted=[s for s in statements if not errors(s) or keep],
            rejected=[s for s in statements if errors(s) and not keep],
            repaired=[s.id for s in statements if s.id in attempted and not errors(s)],
            repair_attempted=[s.id for s in broken],
            repair_failed=[s.id for s in statements if s.id in attempted and errors(s)],
        )

    def _repair(self, job: StageJob, broken: list[Statement], parsed: ParsedQuestion) -> dict[str, RepairItem]:
        payload = {"items": [_repair_item(s, parsed) for s in broken]}
        prompt = load_prompt("repair")
        request = LLMRequest(
            task="repair",
            system=prompt.text,
            messages=[Message(role="user", content=json.dumps(payload, ensure_ascii=False, indent=1))],
            output_schema=schema_of(RepairAnswer),
            schema_name="RepairAnswer",
            context=payload,
        )
        answer, _ = job.ask(request, RepairAnswer)
        wanted = {s.id for s in broken}
        return {item.statement_id: item for item in answer.items if item.statement_id in wanted}
