"""One task outside the question graph (an export) run by doit on the build's dependency DB,
so "nothing changed" is doit's own up-to-date check and the result is recorded like any task."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from doit.cmd_base import TaskLoader2
from doit.doit_cmd import DoitMain
from doit.exceptions import TaskFailed
from doit.loader import load_tasks
from doit.task import Task

from mksap.build.progress import QuietProgress
from mksap.build.runner import Outcome, RunReport, doit_config, make_reporter
from mksap.build.tasks import Build
from mksap.contracts.errors import MksapError


class _OneTaskLoader(TaskLoader2):
    def __init__(self, basename: str, task: dict[str, Any], config: dict[str, Any]) -> None:
        super().__init__()
        self.basename, self.task, self.doit_cfg = basename, task, config

    def load_doit_config(self) -> dict[str, Any]:
        return self.doit_cfg

    def load_tasks(self, cmd: Any, pos_args: list[str]) -> list[Task]:
        def generate() -> Iterable[dict[str, Any]]:
            yield {"basename": self.basename, "name": None, "doc": f"{self.basename} files written from the outputs"}
            yield self.task

        namespace = {f"task_{self.basename}": generate}
        return load_tasks(namespace, self.cmd_names, allow_delayed=False, args=pos_args, config=self.config)


def run_single_task(
    build: Build,
    basename: str,
    name: str,
    action: Callable[[], str | None],
    *,
    file_dep: list[Path],
    target: Path,
    force: bool,
) -> Outcome:
    """Run `action` as the doit task `<basename>:<name>` unless it is up to date (or `force`).

    `action` returns None when it succeeded, else the one-line reason it failed. Dependencies
    are checked by whole-file md5: the build's checker digests only the source fields of
    question-shaped files, which would hide changed statements in the outputs read here.
    """

    def doit_action() -> TaskFailed | None:
        reason = action()
        return TaskFailed(reason) if reason is not None else None

    task = {
        "name": name,
        "actions": [(doit_action, [])],
        "file_dep": [str(p) for p in file_dep],
        "targets": [str(target)],
        "verbosity": 0,
    }
    report = RunReport()
    config = doit_config(build, jobs=1, reporter=make_reporter(report, QuietProgress(), build))
    config["check_file_uptodate"] = "md5"
    code = DoitMain(_OneTaskLoader(basename, task, config)).run(["run"] + (["--always-execute"] if force else []))
    full_name = f"{basename}:{name}"
    state = report.tasks.get(full_name, "failed")
    if state == "failed" and full_name not in report.reasons:
        detail = report.reasons.get("<doit>", "see the messages above")
        raise MksapError(f"doit could not run {full_name} (exit {code}): {detail}")
    return state
