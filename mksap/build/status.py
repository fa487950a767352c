"""Per-question build state without running anything (`mksap status`)."""

from __future__ import annotations

from pydantic import BaseModel

from mksap.bank import Question
from mksap.build.plan import plan
from mksap.build.tasks import Build
from mksap.contracts.output import holds_output

STATES = ("up-to-date", "stale", "failed", "never built")


class QuestionFailure(BaseModel):
    qid: str
    stage: str
    reason: str


class StatusReport(BaseModel):
    systems: dict[str, dict[str, int]]
    failures: list[QuestionFailure]
    questions: dict[str, str]


def question_states(build: Build, questions: list[Question]) -> StatusReport:
    stale = {name.split(":", 1)[1] for name in (t.name for t in plan(build, questions))}
    systems: dict[str, dict[str, int]] = {}
    failures: list[QuestionFailure] = []
    states: dict[str, str] = {}
    for q in questions:
        failure = build.last_failure(q)
        if failure is not None and q.qid in stale:
            state = "failed"
            failures.append(QuestionFailure(qid=q.qid, stage=failure[0], reason=failure[1]))
        elif not holds_output(build.output_path(q)):  # no output file (or, in place, none written into it)
            state = "never built"
        elif q.qid in stale:
            state = "stale"
        else:
            state = "up-to-date"
        states[q.qid] = state
        systems.setdefault(q.system, dict.fromkeys(STATES, 0))[state] += 1
    return StatusReport(systems=systems, failures=failures, questions=states)
