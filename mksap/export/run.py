"""How an export runs: one doit task in the build's dependency DB (basename `export`, name
`<exporter>:<file name>`). Its `file_dep`s are every output question file of the targets plus
a small fingerprint of the exporter's version and options; its target is the export file. So
re-exporting when nothing changed is "up to date" and rewrites nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from doit.cmd_base import TaskLoader2
from doit.doit_cmd import DoitMain
from doit.exceptions import TaskFailed
from doit.loader import load_tasks
from doit.task import Task
from pydantic import BaseModel, ValidationError

from mksap import __version__
from mksap.atomic import write_if_changed, write_json
from mksap.bank import Question, parse_targets
from mksap.build.lock import BuildLock
from mksap.build.progress import QuietProgress
from mksap.build.runner import RunReport, doit_config, make_reporter
from mksap.build.tasks import Build
from mksap.contracts.errors import ConfigError, ExportError, MksapError
from mksap.contracts.exporter import Exporter, ExportOptions, ExportQuestion, ExportWritten
from mksap.contracts.output import NotBuiltError, OutputDocument, holds_output
from mksap.contracts.registry import Registry
from mksap.settings import Settings


class ExportReport(BaseModel):
    """The result of `mksap export ...` / `mksap review`."""

    exporter: str
    unit: str = "statements"
    path: str
    questions: int
    up_to_date: bool
    written: ExportWritten | None = None
    disappeared: list[str] = []
    guids_file: str | None = None


def check_writable(path: Path, default_name: str) -> None:
    """Fail early, with the reason, when `path` cannot become a file."""
    if path.is_dir():
        raise ExportError(f"cannot write {path}: it is a folder; name a file, e.g. -o {path / default_name}")
    existing = next(p for p in (path.parent, *path.parent.parents) if p.exists())
    if not existing.is_dir():
        raise ExportError(f"cannot write {path}: {existing} is a file, not a folder; choose another -o path")
    if not os.access(existing, os.W_OK):
        raise ExportError(f"cannot write {path}: no permission to write in {existing}; choose another -o path")


def never_built(build: Build, questions: list[Question], targets: list[str]) -> None:
    """Refuse when a target's output is missing or holds no statements, naming how to build it."""
    missing = [q.qid for q in questions if not holds_output(build.output_path(q))]
    if not missing:
        return
    shown = " ".join(missing[:10]) + (f" (and {len(missing) - 10} more)" if len(missing) > 10 else "")
    again = " ".join(missing) if len(missing) <= 10 else " ".join(targets)
    command = f"mksap run {again}".strip()
    raise ExportError(f"{len(missing)} question(s) never built: {shown}; run: {command} first")


@dataclass
class ExportJob:
    """One export: what it reads, where it writes, and, once run, what happened."""

    exporter: type[Exporter[Any]]
    options: ExportOptions
    path: Path
    outputs: list[tuple[Question, Path]]
    written: ExportWritten | None = None
    disappeared: list[str] = field(default_factory=list)
    error: Exception | None = None

    @property
    def task_name(self) -> str:
        return f"{self.exporter.name}:{self.path.name}"

    def fingerprint(self) -> str:
        """What besides the outputs decides the file: exporter version, options, path, targets."""
        payload = {
            "exporter": self.exporter.name,
            "version": self.exporter.version,
            "mksap": __version__,
            "options": self.options.model_dump(mode="json"),
            "output": str(self.path),
            "questions": sorted(q.qid for q, _ in self.outputs),
        }
        return json.dumps(payload, sort_keys=True) + "\n"

    def task(self, fingerprint: Path) -> dict[str, Any]:
        return {
            "name": self.task_name,
            "actions": [(self.action, [])],
            "file_dep": [str(p) for _, p in self.outputs] + [str(fingerprint)],
            "targets": [str(self.path)],
            "verbosity": 0,
        }

    def action(self) -> TaskFailed | None:
        """The doit action. Errors are kept and raised again once doit returns: expected ones
        become messages, anything else keeps its traceback."""
        try:
            docs = [ExportQuestion.from_document(read_built(p), q.system) for q, p in self.outputs]
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.written = self.exporter().export(docs, self.options, self.path)
            if self.written.notes is not None:
                self.disappeared = track_notes(self.path, self.written.notes)
        except OSError as e:
            reason = e.strerror or str(e)
            self.error = ExportError(f"cannot write {self.path}: {reason}; choose another -o path")
        except Exception as e:
            self.error = e
        return TaskFailed(str(self.error)) if self.error else None


class ExportLoader(TaskLoader2):
    """doit loader for the one export task."""

    def __init__(self, task: dict[str, Any], config: dict[str, Any]) -> None:
        super().__init__()
        self.task, self.doit_cfg = task, config

    def load_doit_config(self) -> dict[str, Any]:
        return self.doit_cfg

    def load_tasks(self, cmd: Any, pos_args: list[str]) -> list[Task]:
        def task_export() -> Iterable[dict[str, Any]]:
            yield {
                "basename": "export",
                "name": None,
                "doc": "export files written from the outputs",
            }
            yield self.task

        namespace = {"task_export": task_export}
        return load_tasks(namespace, self.cmd_names, allow_delayed=False, args=pos_args, config=self.config)


def read_built(path: Path) -> OutputDocument:
    """A built question for an export; an unusable one names how to rebuild it."""
    try:
        return OutputDocument.read(path)
    except NotBuiltError as e:
        raise ExportError(f"{e}; run: mksap run {path.stem} --force") from None


def guids_file(path: Path) -> Path:
    return path.with_name(path.name + ".guids.json")


def track_notes(path: Path, notes: dict[str, str]) -> list[str]:
    """Keep `<file>.guids.json` (GUID -> statement) beside the file; return the stable ids of
    notes the previous export of this file had and this one does not."""
    sidecar = guids_file(path)
    try:
        previous: dict[str, str] = json.loads(sidecar.read_text(encoding="utf-8")).get("notes", {})
    except (OSError, ValueError, AttributeError):
        previous = {}
    gone = {g: sid for g, sid in previous.items() if g not in notes}
    write_json(sidecar, {"mksap": 1, "file": path.name, "notes": notes, "disappeared": gone})
    return sorted(gone.values())


def run_export(
    settings: Settings,
    name: str,
    targets: list[str],
    options: dict[str, Any],
    output: Path | None,
    *,
    force: bool = False,
    notice: Callable[[str], None] = lambda message: None,
    registry: Registry | None = None,
) -> ExportReport:
    """Export the built targets with the exporter `name`, as a doit task (see the module doc).

    `options` are the ones given on the command line; the others come from `[plugins.<name>]`
    of the config, then the exporter's defaults."""
    registry = registry or Registry.load()
    exporter: type[Exporter[Any]] = registry.get("exporter", name)
    configured = settings.plugin_options(name, exporter.options_model)
    try:
        opts = exporter.options_model.model_validate({**configured.model_dump(), **options})
    except ValidationError as e:
        err = e.errors()[0]
        flag = "--" + "-".join(str(part) for part in err["loc"]).replace("_", "-")
        raise ConfigError(f"export {name}: {flag}: {err['msg']}") from None
    build = Build.open(settings, notice=notice, use_cache=False, registry=registry)
    questions = parse_targets(targets, settings.data).discover(settings.data)
    if not questions:
        wanted = " ".join(targets) or "anything"
        raise MksapError(f"no question under {settings.data} matches {wanted}")
    never_built(build, questions, targets)
    path = (output or exporter.default_path()).expanduser().absolute()
    check_writable(path, exporter.default_path().name)
    job = ExportJob(exporter, opts, path, [(q, build.output_path(q)) for q in questions])
    with BuildLock(settings.build_dir()).acquire():
        fingerprint = build.build_dir / "exports" / f"{name}-{path.name}.json"
        write_if_changed(fingerprint, job.fingerprint())
        state = run_task(build, job.task(fingerprint), force=force)
    if job.error is not None:
        raise job.error
    return ExportReport(
        exporter=name,
        unit=exporter.unit,
        path=str(path),
        questions=len(questions),
        up_to_date=state == "up-to-date",
        written=job.written,
        disappeared=job.disappeared,
        guids_file=str(guids_file(path)) if job.written and job.written.notes is not None else None,
    )


def run_task(build: Build, task: dict[str, Any], *, force: bool) -> str:
    """Run one `export` task through doit on the build's dependency DB; its outcome."""
    full_name = f"export:{task['name']}"  # before doit, which renames the dict it is given
    report = RunReport()
    config = doit_config(build, jobs=1, reporter=make_reporter(report, QuietProgress(), build))
    # Whole-file md5: the build's checker digests only the source fields of question-shaped
    # files, which would hide changed statements in the outputs this task reads.
    config["check_file_uptodate"] = "md5"
    code = DoitMain(ExportLoader(task, config)).run(["run"] + (["--always-execute"] if force else []))
    state = report.tasks.get(full_name, "failed")
    if state == "failed" and full_name not in report.reasons:
        detail = report.reasons.get("<doit>", "see the messages above")
        raise ExportError(f"doit could not run the export (exit {code}): {detail}")
    return state
