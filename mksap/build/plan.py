"""What a run would do and why, without running anything (`mksap run --dry-run`, `mksap status`).

Read-only: nothing is written, not even the stage fingerprint files. A stage whose fingerprint
on disk differs from the current configuration is reported as "config of stage X changed"
for every question, exactly what a run (which rewrites the fingerprint first) would find.
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mksap.contracts.errors import MksapError

if TYPE_CHECKING:
    from mksap.bank import Question
    from mksap.build.tasks import Build


@dataclass(frozen=True)
class PlannedTask:
    name: str
    reason: str


def plan(build: Build, questions: list[Question], *, force: bool = False) -> list[PlannedTask]:
    """Tasks a run would execute and why, without running anything (`--dry-run`, `status`)."""
    from doit.dependency import DatabaseException
    from doit.loader import load_tasks

    from mksap.build.doit_private import open_dependencies, was_ever_run, why_stale

    changed_config = {s.name for s in build.stages if build.fingerprint_changed(s)}
    tasks = load_tasks(build.task_namespace(questions), [], allow_delayed=False)
    by_name = {t.name: t for t in tasks}
    if not build.dep_file.exists():  # nothing was ever built (and opening would create the DB)
        return [PlannedTask(t.name, "forced" if force else "never built") for t in tasks if ":" in t.name]
    fingerprints = {str(build.fingerprint_file(s)): s.name for s in build.stages}
    try:
        deps = open_dependencies(str(build.dep_file))
    except (sqlite3.Error, DatabaseException) as e:
        raise MksapError(db_problem(build.dep_file, e)) from None
    planned: dict[str, str] = {}
    target_owner = {t: task.name for task in tasks for t in task.targets}
    try:
        for task in tasks:  # stage order: upstream tasks come first
            if ":" not in task.name:
                continue
            upstream = [target_owner[d] for d in task.file_dep if d in target_owner]
            rerun_upstream = [u for u in upstream if u in planned]
            if force:
                planned[task.name] = "forced"
            elif not was_ever_run(deps, task.name):
                planned[task.name] = "never built"  # no record: never run, or `doit forget`
            elif rerun_upstream:
                planned[task.name] = f"upstream {rerun_upstream[0].split(':')[0]} reruns"
            elif (why := why_stale(deps, task, by_name, fingerprints)) is not None:
                planned[task.name] = why
            elif task.name.split(":", 1)[0] in changed_config:
                planned[task.name] = f"config of stage {task.name.split(':', 1)[0]} changed"
    finally:
        deps.close()
    return [PlannedTask(name, reason) for name, reason in planned.items()]


def db_problem(path: Path, error: Exception) -> str:
    """One line for a dependency DB that cannot be read or written, and what to do."""
    cause = " ".join(str(error).rsplit("Original error:", 1)[-1].split()) or type(error).__name__
    if not path.exists():
        return (
            f"the dependency DB {path} was deleted during the run (sqlite3: {cause}); what this run built is not "
            "recorded: run again (answers already paid for come from the LLM cache)"
        )
    return (
        f"the dependency DB {path} is unusable (sqlite3: {cause}); delete it to start over: every task reruns "
        "once, and answers already paid for come from the LLM cache"
    )


def check_dependency_db(path: Path) -> None:
    """Refuse, in one line, a dependency DB that is not a readable SQLite DB (doit would print
    a traceback); a missing one is fine (doit creates it)."""
    if not path.exists():
        return
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as conn:
            tables = {row[0] for row in conn.execute("select name from sqlite_master where type = 'table'")}
            if "doit" in tables:
                conn.execute("select count(*) from doit").fetchone()
    except sqlite3.Error as e:
        raise MksapError(db_problem(path, e)) from None
