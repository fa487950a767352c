"""Registered stages -> doit tasks. `dodo.py` and `mksap run` both call `Build.task_namespace`,
so `doit` and `mksap run` can never disagree about the task graph.

Layout of build state (all derived, safe to delete):
  <cache_dir>/build/fingerprints/<stage>.json   one per stage: its configuration digest
  <cache_dir>/build/<system>/<qid>/<stage>.json one artifact per question x stage
  <cache_dir>/build/<system>/<qid>/<stage>.failed  the one-line reason of the last failure
  <cache_dir>/build/doit.sqlite                 doit's dependency DB
  <cache_dir>/build/uptodate.json               questions proven up to date by stat alone (manifest.py)
  <cache_dir>/build/errors.log                  tracebacks of errors that are not mksap's own
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from mksap import __version__
from mksap.atomic import write_if_changed, write_json, write_text
from mksap.bank import Question
from mksap.contracts.errors import MksapError, PluginError, ProviderError, os_error_line
from mksap.contracts.output import holds_output
from mksap.contracts.registry import Registry
from mksap.contracts.stage import Stage, StageJob, describe
from mksap.llm.cache import ResponseCache
from mksap.llm.runtime import ProviderRuntime
from mksap.settings import Settings

if TYPE_CHECKING:
    from doit.exceptions import TaskError, TaskFailed

DEP_FILE = "doit.sqlite"
ERRORS_LOG = "errors.log"
LOG_KEEP = 4_000_000  # bytes: a longer errors.log becomes errors.log.1 at the next run's first error


@dataclass
class Build:
    """Everything one invocation needs to define and run tasks. Built once, passed in."""

    settings: Settings
    registry: Registry
    runtime: ProviderRuntime
    stages: list[Stage] = field(init=False)
    failures_this_run: dict[str, str] = field(default_factory=dict)
    interrupting: bool = False  # set by the main thread on Ctrl-C / SIGTERM, before calls are cancelled
    errors_logged: int = 0  # entries this run appended to `errors_log`
    _log_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _questions: dict[str, Question] = field(default_factory=dict, repr=False)

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        notice: Callable[[str], None],
        use_cache: bool = True,
        refresh: bool = False,
        registry: Registry | None = None,
    ) -> Build:
        """The registry, provider runtime, response cache and stages for one invocation."""
        registry = registry or Registry.load()
        cache = ResponseCache(settings.llm_cache_dir, refresh=refresh, warn=notice) if use_cache else None
        runtime = ProviderRuntime(settings, registry, cache=cache, notice=notice)
        return cls(settings, registry, runtime)

    def notices(self) -> list[str]:
        """One-time notices: plugins that failed to load (never skipped silently), and what
        stages want the user to see (e.g. a fallback in use)."""
        broken = [
            f"plugin {f.source} ({f.package}) failed to load and is not used: {f.error}" for f in self.registry.failures
        ]
        return broken + self.runtime.notices() + [n for s in self.stages for n in s.notices()]

    def __post_init__(self) -> None:
        self.stages = [cls(self.settings) for cls in self.registry.stages()]
        finals = [s.name for s in self.stages if s.final]
        if len(finals) != 1:
            broken = "; ".join(f"{f.source}: {f.error}" for f in self.registry.failures)
            cause = f" (a plugin failed to load: {broken}; see `mksap plugins`)" if broken else ""
            raise PluginError(f"exactly one stage must write the output question file; found {finals or 'none'}{cause}")

    # -- paths ------------------------------------------------------------------------------
    @property
    def build_dir(self) -> Path:
        return self.settings.build_dir()

    @property
    def dep_file(self) -> Path:
        return self.build_dir / DEP_FILE

    @property
    def final_stage(self) -> Stage:
        return next(s for s in self.stages if s.final)

    def fingerprint_file(self, stage: Stage) -> Path:
        return self.build_dir / "fingerprints" / f"{stage.name}.json"

    def question_dir(self, q: Question) -> Path:
        return self.build_dir / q.system / q.qid

    def artifact(self, stage: Stage | str, q: Question) -> Path:
        name = stage if isinstance(stage, str) else stage.name
        return self.question_dir(q) / f"{name}.json"

    def failure_file(self, stage: Stage, q: Question) -> Path:
        return self.question_dir(q) / f"{stage.name}.failed"

    def output_path(self, q: Question) -> Path:
        if self.settings.in_place:
            return q.json_path
        return self.settings.out / q.system / q.qid / f"{q.qid}.json"

    def target(self, stage: Stage, q: Question) -> Path:
        return self.output_path(q) if stage.final else self.artifact(stage, q)

    # -- fingerprints -----------------------------------------------------------------------
    def fingerprint_text(self, stage: Stage) -> str:
        """What the stage's fingerprint file holds for the current configuration."""
        provider, model = self.runtime.identity(stage.name)
        payload = {"stage": stage.name, "digest": stage.fingerprint(provider, model)}
        if stage.final:
            payload["output"] = "in-place" if self.settings.in_place else str(self.settings.out)
        return json.dumps(payload, sort_keys=True) + "\n"

    def fingerprint_changed(self, stage: Stage) -> bool:
        """Whether the stage's configuration differs from its fingerprint file (read only)."""
        try:
            return self.fingerprint_file(stage).read_text(encoding="utf-8") != self.fingerprint_text(stage)
        except OSError:
            return True

    def write_fingerprints(self) -> None:
        """One small file per stage; tasks depend on it, so a config change reruns that stage.

        Written only when the content changes, so doit's md5 check sees nothing otherwise.
        Only a build writes them: planning and status compare instead (`fingerprint_changed`).
        """
        for stage in self.stages:
            write_if_changed(self.fingerprint_file(stage), self.fingerprint_text(stage))

    # -- tasks ------------------------------------------------------------------------------
    @cached_property
    def _root(self) -> str:
        return str(self.build_dir)

    def _task_files(self, stage: Stage, q: Question, sources: list[str], output: str) -> tuple[list[str], str]:
        """(file_dep, the file the task writes) of the task `stage` x `q`, given the question's
        source files and output file.

        Plain strings, not Paths: this runs 8 times per question whenever tasks are defined,
        and pathlib joins were a third of a no-op rebuild."""
        qdir = f"{self._root}/{q.system}/{q.qid}"
        deps = [f"{self._root}/fingerprints/{stage.name}.json"]
        if stage.reads_source:
            deps += sources
        deps += [f"{qdir}/{need}.json" for need in stage.needs]
        return deps, output if stage.final else f"{qdir}/{stage.name}.json"

    @cached_property
    def _question_layout(self) -> tuple[bool, list[str]]:
        """What `_task_files` makes of every question: whether a task reads its source files,
        and the names of the artifacts its tasks read or write (in `<build>/<sys>/<qid>/`)."""
        names: dict[str, None] = {}
        for stage in self.stages:
            names.update(dict.fromkeys(f"{need}.json" for need in stage.needs))
            if not stage.final:
                names[f"{stage.name}.json"] = None
        return any(s.reads_source for s in self.stages), list(names)

    def question_files(self, q: Question) -> list[str]:
        """Every file a task of `q` depends on or writes, the stage fingerprint files aside (the
        same for every question): what the up-to-date manifest signs (`build/manifest.py`).
        The union of `_task_files` over the stages, built without them: it runs for every
        question of every run, and is the larger part of a no-op's own work."""
        reads_source, names = self._question_layout
        qdir = f"{self._root}/{q.system}/{q.qid}"
        files = dict.fromkeys([str(p) for p in q.source_files()] if reads_source else [])
        files.update(dict.fromkeys(f"{qdir}/{name}" for name in names))
        files[self._output(q)] = None
        return list(files)

    @cached_property
    def _out_root(self) -> str:
        return str(self.settings.out)

    def _output(self, q: Question) -> str:
        """`str(self.output_path(q))`, without pathlib's joins."""
        return str(q.json_path) if self.settings.in_place else f"{self._out_root}/{q.system}/{q.qid}/{q.qid}.json"

    def task_dict(self, stage: Stage, q: Question) -> dict[str, Any]:
        sources = [str(p) for p in q.source_files()] if stage.reads_source else []
        deps, target = self._task_files(stage, q, sources, self._output(q) if stage.final else "")
        task: dict[str, Any] = {
            "name": q.qid,
            "actions": [(self.execute, [stage, q])],
            "file_dep": deps,
            "targets": [target],
            "io": {"capture": False},
            "verbosity": 0,
        }
        if stage.final and self.settings.in_place:
            # The output is the question file itself, which the source-reading stage depends
            # on: as a doit target it would make that stage depend on this one (a cycle).
            # So no target; instead the task is up to date only while the file holds output.
            task["targets"] = []
            task["uptodate"] = [partial(holds_output, q.json_path)]
        return task

    def task_namespace(self, questions: list[Question]) -> dict[str, Callable[[], Iterator[dict[str, Any]]]]:
        """`task_<stage>` generators for doit's loader, one subtask per question.

        A stage given no question (the up-to-date manifest vouched for all of them) has
        nothing to group: its group task is up to date, so doit records nothing for it."""
        namespace: dict[str, Callable[[], Iterator[dict[str, Any]]]] = {}
        self._questions.update((q.qid, q) for q in questions)
        for stage in self.stages:

            def generate(stage: Stage = stage) -> Iterator[dict[str, Any]]:
                group: dict[str, Any] = {"basename": stage.name, "name": None, "doc": describe(type(stage))}
                if not questions:
                    group["uptodate"] = [True]
                yield group
                for q in questions:
                    yield self.task_dict(stage, q)

            namespace[f"task_{stage.name}"] = generate
        return namespace

    # -- execution --------------------------------------------------------------------------
    def execute(self, stage: Stage, q: Question) -> TaskFailed | TaskError | None:
        """The doit action of one (stage, question) task.

        Bad input and unusable answers fail the task (`TaskFailed`); a provider that could not
        be called is a task error (`TaskError`). Either way the reason is one line, kept in
        `<stage>.failed` for `mksap status`, and only this question stops.
        """
        from doit.exceptions import TaskError, TaskFailed  # not at import: a no-op never needs doit

        job = StageJob(
            question=q,
            settings=self.settings,
            artifacts={need: self.artifact(need, q) for need in stage.needs},
            llm=partial(self.runtime.complete, stage=stage.name, question=q.qid),
            provenance=self.provenance(),
        )
        try:
            result = stage.run(job)
            data = result.model_dump(mode="json") if isinstance(result, BaseModel) else result
            target = self.target(stage, q)
            sweep_temporaries(target)
            write_json(target, data, compact=not stage.final)
        except ProviderError as e:
            return TaskError(self._fail(stage, q, str(e)))
        except MksapError as e:
            return TaskFailed(self._fail(stage, q, str(e)))
        except Exception as e:  # not ours (a full disk, a bug): one line here, the traceback in the log
            if self.interrupting:  # e.g. its call was cancelled: not a failure, nothing to log
                return TaskError(f"interrupted ({type(e).__name__})")
            return TaskError(self._fail(stage, q, self.log_unexpected(f"{stage.name}:{q.qid}", e)))
        self.failure_file(stage, q).unlink(missing_ok=True)
        return None

    def _fail(self, stage: Stage, q: Question, reason: str) -> str:
        """Record why the task failed (for `mksap status`), unless the run is being interrupted:
        what an interrupt cut short (a cancelled call) is not a failure of the question."""
        line = " ".join(reason.split())
        if self.interrupting:
            return f"interrupted ({line})"
        with contextlib.suppress(OSError):  # a full disk must not hide the reason itself
            write_text(self.failure_file(stage, q), line + "\n")
        self.failures_this_run[f"{stage.name}:{q.qid}"] = line
        return line

    @property
    def errors_log(self) -> Path:
        """Where the traceback of every error that is not mksap's own goes."""
        return self.build_dir / ERRORS_LOG

    def log_unexpected(self, task: str, error: BaseException) -> str:
        """The one line of an exception that is not mksap's own (its type and message; an
        OSError's errno text, a full disk and a read-only file system named as such); its
        traceback is appended to `errors.log`."""
        line = os_error_line(error) if isinstance(error, OSError) else f"{type(error).__name__}: {error}"
        self._log(task, line, "".join(traceback.format_exception(error)))
        return line

    def record_failure(self, task: str, reason: str, detail: str) -> str:
        """A task doit itself failed (not through `execute`, e.g. an input file vanished
        mid-run): its one line recorded like ours, doit's full message in `errors.log`."""
        stage_name, _, qid = task.partition(":")
        stage = next((s for s in self.stages if s.name == stage_name), None)
        q = self._questions.get(qid)
        line = " ".join(reason.split())
        self._log(task, line, detail)
        return self._fail(stage, q, line) if stage is not None and q is not None else line

    def _log(self, task: str, line: str, detail: str) -> None:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        with self._log_lock:
            self.errors_logged += 1
            with contextlib.suppress(OSError):  # the disk may be what is full
                self.errors_log.parent.mkdir(parents=True, exist_ok=True)
                if self.errors_logged == 1 and self.errors_log.is_file() and self.errors_log.stat().st_size > LOG_KEEP:
                    self.errors_log.replace(self.errors_log.with_name(ERRORS_LOG + ".1"))  # one old log kept
                with self.errors_log.open("a", encoding="utf-8") as log:
                    log.write(f"--- {stamp} {task}: {line}\n{detail.rstrip()}\n")

    @cached_property
    def _provenance(self) -> dict[str, Any]:
        provider, model = self.runtime.identity()
        provenance = {
            "tool": f"mksap {__version__}",
            "provider": provider,
            "model": model,
            "stages": {s.name: s.version for s in self.stages},
            "prompts": {s.name: s.config().get("prompt_version") for s in self.stages if s.uses_llm},
        }
        per_stage = {s.name: "/".join(self.runtime.identity(s.name)) for s in self.stages if s.uses_llm}
        if len(set(per_stage.values())) > 1:  # `[stages.<name>]` gave a stage its own model
            provenance["models"] = per_stage
        return provenance

    def provenance(self) -> dict[str, Any]:
        """What produced an output: tool, provider, model, stage and prompt versions, time."""
        return {**self._provenance, "built_at": datetime.now(UTC).isoformat(timespec="seconds")}

    def last_failure(self, q: Question) -> tuple[str, str] | None:
        """(stage, reason) of the earliest stage whose last run failed, if any."""
        for stage in self.stages:
            path = self.failure_file(stage, q)
            if path.exists():
                try:
                    return stage.name, path.read_text(encoding="utf-8", errors="replace").strip()
                except OSError as e:
                    return stage.name, f"(its failure record {path} cannot be read: {e.strerror})"
        return None


def sweep_temporaries(path: Path) -> None:
    """Remove `.<name>.*.tmp` files a killed run left beside `path` (atomic writes that never
    got renamed). Only this task writes `path`, and the build lock keeps other runs out."""
    try:
        with os.scandir(path.parent) as it:
            stale = [e.path for e in it if e.name.startswith(f".{path.name}.") and e.name.endswith(".tmp")]
    except FileNotFoundError:
        return
    for tmp in stale:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
