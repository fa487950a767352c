"""What a run would do and why, without running anything (`mksap run --dry-run`, `mksap status`).

Read-only: nothing is written, not even the stage fingerprint files. A stage whose fingerprint
on disk differs from the current configuration is reported as "config of stage X changed"
for every question, exactly what a run (which rewrites the fingerprint first) would find.
"""

from __future__ import annotations

from dataclasses import dataclass

from doit.loader import load_tasks

from mksap.bank import Question
from mksap.build.doit_private import open_dependencies, was_ever_run, why_stale
from mksap.build.tasks import Build


@dataclass(frozen=True)
class PlannedTask:
    name: str
    reason: str


def plan(build: Build, questions: list[Question], *, force: bool = False) -> list[PlannedTask]:
    """Tasks a run would execute and why, without running anything (`--dry-run`, `status`)."""
    changed_config = {s.name for s in build.stages if build.fingerprint_changed(s)}
    tasks = load_tasks(build.task_namespace(questions), [], allow_delayed=False)
    by_name = {t.name: t for t in tasks}
    if not build.dep_file.exists():  # nothing was ever built (and opening would create the DB)
        return [PlannedTask(t.name, "forced" if force else "never built") for t in tasks if ":" in t.name]
    fingerprints = {str(build.fingerprint_file(s)): s.name for s in build.stages}
    deps = open_dependencies(str(build.dep_file))
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
