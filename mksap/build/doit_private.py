"""Every use of doit's private API, fenced in this one module.

doit's public API does not cover three things mksap needs, so they are reached here and only
here, and `tests/test_doit_private.py` fails with a clear message if a doit release changes
any of them (`check_private_api` lists what is relied on):

- the SQLite backend's connection and record cache (`SqliteDB._conn`, `_cache`, `_dirty`,
  `_get_task_data`), to read every record in one query and commit finished tasks as a run
  goes (doit commits only at the end, so a SIGKILL would lose them all);
- the record key `"checker:"` doit stores for every task it ran, to tell "never built" apart
  from "stale";
- the keys of `get_status(...).reasons`, to say why a task is stale;
- `Globals.dep_manager`, the dependency manager of the running build, to checkpoint it;
- doit's own command-line parser and the names of its `run` options, to tell whether plain
  `doit` was asked for the whole build (`run_arguments`).
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from doit.dependency import Dependency, SqliteDB
from doit.globals import Globals
from doit.task import Task

from mksap.build.checker import SourceChecker

CHECKPOINT_EVERY = 2.0  # seconds
#: Records read one SELECT each before the backend reads all the rest in one query.
READ_ONE_BY_ONE = 32
#: The `reasons` keys of doit's `get_status` this module reads.
REASON_KEYS = (
    "missing_file_dep",
    "missing_target",
    "changed_file_dep",
    "added_file_dep",
    "removed_file_dep",
    "uptodate_false",
    "has_no_dependencies",
    "checker_changed",
)
#: The record doit keeps for every task it has run (the checker's class name).
RUN_MARKER = "checker:"


class PreloadedSqliteDB(SqliteDB):
    """doit's SQLite backend, read in one query.

    doit's `sqlite3` backend runs one SELECT per task; over 17,600 tasks that is most of a
    no-op rebuild. This subclass reads the first few records it is asked for one by one, as
    doit does (a run the up-to-date manifest answered asks only for the 8 stage group tasks),
    then every record in one query; otherwise it writes exactly like it: same file, same table,
    so plain doit can read it. It also commits finished tasks as the run goes (`checkpoint`).
    Registered for doit through the `doit.BACKEND` entry point as `mksap-sqlite`; SQLite is
    transactional, so a SIGKILL never leaves a torn DB.

    A commit that fails (the DB deleted or moved mid-run, a full disk) is kept in `failure`
    instead of raised: doit would print a traceback from its final save. The reporter turns it
    into the run's one-line error (`save_failure`).
    """

    desc = "sqlite3, records read in one query (mksap)"

    def __init__(self, name: str, codec: Any, *, module_name: str | None = None) -> None:
        super().__init__(name, codec, module_name=module_name)
        self._loaded = False
        self._lookups = 0
        self._last_checkpoint = time.monotonic()
        self.failure: sqlite3.Error | None = None

    def _load(self) -> None:
        """Every stored record, in one query (those already read or changed here stay as they are)."""
        rows = self._conn.execute("select task_id, task_data from doit").fetchall()
        self._cache = {row["task_id"]: row["task_data"] for row in rows} | self._cache
        self._loaded = True

    def _get_task_data(self, task_id: str) -> dict[str, Any]:
        """The stored record of a task not read yet (doit caches it in `_cache`)."""
        if self._loaded:
            return {}  # everything stored was read: an unknown task has no record
        self._lookups += 1
        if self._lookups <= READ_ONE_BY_ONE:
            return super()._get_task_data(task_id)
        self._load()
        return self._cache.get(task_id, {})

    def set(self, task_id: str, dependency: str, value: Any) -> None:
        if task_id not in self._cache:  # add to the stored record, never start a new one over it
            self._cache[task_id] = self._get_task_data(task_id)
        super().set(task_id, dependency, value)

    def in_(self, task_id: str) -> bool:
        if task_id not in self._cache:
            self._cache[task_id] = self._get_task_data(task_id)
        return bool(self._cache[task_id])

    def checkpoint(self, force: bool = False) -> None:
        """Commit the records of finished tasks, at most every CHECKPOINT_EVERY seconds.

        Called between tasks (never in the middle of one task's record) from the thread that
        opened the connection. After a failed commit it does nothing (`failure`).
        """
        now = time.monotonic()
        due = force or now - self._last_checkpoint >= CHECKPOINT_EVERY
        if self.failure is not None or not self._dirty or not due:
            return
        rows = [(task_id, self.codec.encode(self._cache[task_id])) for task_id in self._dirty]
        try:
            self._conn.executemany("insert or replace into doit values (?,?)", rows)
            self._conn.commit()
        except sqlite3.Error as e:
            self.failure = e
            return
        self._dirty = set()
        self._last_checkpoint = now

    def dump(self) -> None:
        """doit's final save, and close; a failure is kept (`failure`), not raised."""
        try:
            super().dump()
        except sqlite3.Error as e:
            self.failure = self.failure or e
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()


def _running_backend() -> PreloadedSqliteDB | None:
    backend = getattr(Globals.dep_manager, "backend", None)
    return backend if isinstance(backend, PreloadedSqliteDB) else None


def checkpoint_running_build() -> None:
    """Commit the finished tasks of the build doit is running now (see `PreloadedSqliteDB`);
    raise what made a commit fail (now or earlier in the run)."""
    backend = _running_backend()
    if backend is not None:
        backend.checkpoint()
        if backend.failure is not None:
            raise backend.failure


def save_failure() -> sqlite3.Error | None:
    """What made a commit of the running build's DB fail, if one did (its final save too)."""
    backend = _running_backend()
    return backend.failure if backend is not None else None


def runs_on(dep_file: str, checker: type) -> bool:
    """Whether the running doit build uses the DB `dep_file` through our backend and `checker`
    (nothing on its command line or in a config file put another in their place)."""
    manager = Globals.dep_manager
    backend = _running_backend()
    return (
        backend is not None
        and backend.name == dep_file
        and type(getattr(manager, "checker", None)) is checker
        and backend.failure is None
    )


#: `doit run` options that leave the build as `mksap run` would make it: given on the command
#: line, plain `doit` may still leave what the up-to-date manifest vouches for out of the graph.
#: Any other (`-a`, another DB, backend, checker or reporter, `--single`, ...) makes doit see
#: every task, as it does without the manifest.
NEUTRAL_RUN_OPTIONS = frozenset(
    {"dodoFile", "cwdPath", "seek_file", "num_process", "par_type", "verbosity", "continue", "failure_verbosity"}
)


@dataclass(frozen=True)
class RunArguments:
    """What a plain `doit run` command line asks for, as doit itself parses it."""

    tasks: list[str]  # task names or targets given (none: every task)
    options: frozenset[str]  # the options given (doit's option names)
    variables: bool  # `name=value` command-line variables were given

    @property
    def whole_build(self) -> bool:
        """Every task, with nothing that changes what doit checks or how."""
        return not self.tasks and not self.variables and self.options <= NEUTRAL_RUN_OPTIONS


def run_arguments(argv: list[str]) -> RunArguments | None:
    """Parse a plain `doit [run] ...` command line (`sys.argv`) as `DoitMain.run` does; None
    when it is another command or doit's parser does not understand it."""
    from doit.cmd_base import DodoTaskLoader, DoitCmdBase
    from doit.cmd_run import Run
    from doit.cmdparse import CmdOption, CmdParse, CmdParseError

    args = list(argv[1:])
    given: set[str] = set()
    with contextlib.suppress(CmdParseError):  # as doit: fails when `run` is not explicit
        loader_params, args = CmdParse([CmdOption(o) for o in DodoTaskLoader.cmd_options]).parse_only(args)
        given |= set(loader_params)  # `parse_only` returns the options given, and only those
    variables = any("=" in a for a in args)
    args = [a for a in args if "=" not in a]
    if args and args[0] == "run":
        args.pop(0)
    options = [CmdOption(o) for o in (*DoitCmdBase.base_options, *DodoTaskLoader.cmd_options, *Run.cmd_options)]
    try:
        params, tasks = CmdParse(options).parse_only(args)
    except CmdParseError:
        return None
    given |= set(params)
    return RunArguments(tasks=list(tasks), options=frozenset(given), variables=variables)


def open_dependencies(dep_file: str) -> Dependency:
    """The build's dependency DB, read-only use (nothing is written unless a caller saves)."""
    return Dependency(PreloadedSqliteDB, dep_file, checker_cls=SourceChecker)


def was_ever_run(deps: Dependency, task_name: str) -> bool:
    """Whether doit holds a record of `task_name` (it was run and not `doit forget`-ten)."""
    return deps.backend.get(task_name, RUN_MARKER) is not None


def why_stale(deps: Dependency, task: Task, by_name: dict[str, Task], fingerprints: dict[str, str]) -> str | None:
    """Why doit would run `task` (None when it is up to date). `fingerprints` maps each stage
    fingerprint file to its stage name, so a config change is named as such."""
    status = deps.get_status(task, by_name, get_log=True)
    if status.status == "up-to-date":
        return None
    reasons = status.reasons
    if status.status == "error":
        return "input missing: " + ", ".join(reasons.get("missing_file_dep", [])) if reasons else "error"
    if reasons.get("missing_target") and not reasons.get("changed_file_dep"):
        return f"output missing: {reasons['missing_target'][0]}"
    changed = reasons.get("changed_file_dep", []) + reasons.get("added_file_dep", [])
    for dep in changed:
        if dep in fingerprints:
            return f"config of stage {fingerprints[dep]} changed"
    if changed:
        return f"changed input: {changed[0]}"
    if reasons.get("removed_file_dep"):
        return "an input was removed"
    if reasons.get("uptodate_false"):
        return "output missing (the in-place question file holds no statements)"
    if reasons.get("has_no_dependencies"):
        return "never built (no inputs)"
    if reasons.get("checker_changed"):
        return "checker changed"
    return "never built"


def check_private_api() -> list[str]:
    """What of doit's private API is missing in the installed doit (empty when all is there)."""
    import inspect

    import doit
    from doit import dependency

    missing = [f"SqliteDB.{name}" for name in ("_get_task_data",) if not hasattr(SqliteDB, name)]
    init = inspect.getsource(SqliteDB.__init__) + inspect.getsource(SqliteDB)
    missing += [f"SqliteDB.{name}" for name in ("_conn", "_cache", "_dirty") if f"self.{name}" not in init]
    if not hasattr(Globals, "dep_manager"):
        missing.append("doit.globals.Globals.dep_manager")
    from doit.cmd_base import DodoTaskLoader, DoitCmdBase
    from doit.cmd_run import Run

    run_options = {o["name"] for o in (*DoitCmdBase.base_options, *DodoTaskLoader.cmd_options, *Run.cmd_options)}
    missing += [f"doit run option '{name}'" for name in sorted((NEUTRAL_RUN_OPTIONS | {"always"}) - run_options)]
    source = inspect.getsource(dependency)
    missing += [f"reasons key '{key}'" for key in REASON_KEYS if f"'{key}'" not in source and f'"{key}"' not in source]
    if f"'{RUN_MARKER}'" not in source and f'"{RUN_MARKER}"' not in source and "'checker:'" not in source:
        missing.append(f"record key '{RUN_MARKER}'")
    return [f"{item} (doit {doit.__version__})" for item in missing]
