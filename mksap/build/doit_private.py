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
- `Globals.dep_manager`, the dependency manager of the running build, to checkpoint it.
"""

from __future__ import annotations

import time
from typing import Any

from doit.dependency import Dependency, SqliteDB
from doit.globals import Globals
from doit.task import Task

from mksap.build.checker import SourceChecker

CHECKPOINT_EVERY = 2.0  # seconds
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
    no-op rebuild. This subclass loads every record at open and otherwise writes exactly like
    it: same file, same table, so plain doit can read it. It also commits finished tasks as
    the run goes (`checkpoint`). Registered for doit through the `doit.BACKEND` entry point
    as `mksap-sqlite`; SQLite is transactional, so a SIGKILL never leaves a torn DB.
    """

    desc = "sqlite3, all records read at open (mksap)"

    def __init__(self, name: str, codec: Any, *, module_name: str | None = None) -> None:
        super().__init__(name, codec, module_name=module_name)
        rows = self._conn.execute("select task_id, task_data from doit").fetchall()
        self._cache = {row["task_id"]: row["task_data"] for row in rows}
        self._last_checkpoint = time.monotonic()

    def _get_task_data(self, task_id: str) -> dict[str, Any]:
        return {}  # everything stored was loaded at open: an unknown task has no record

    def in_(self, task_id: str) -> bool:
        return task_id in self._cache and bool(self._cache[task_id])

    def checkpoint(self, force: bool = False) -> None:
        """Commit the records of finished tasks, at most every CHECKPOINT_EVERY seconds.

        Called between tasks (never in the middle of one task's record) from the thread that
        opened the connection.
        """
        now = time.monotonic()
        if not self._dirty or (not force and now - self._last_checkpoint < CHECKPOINT_EVERY):
            return
        rows = [(task_id, self.codec.encode(self._cache[task_id])) for task_id in self._dirty]
        self._conn.executemany("insert or replace into doit values (?,?)", rows)
        self._conn.commit()
        self._dirty = set()
        self._last_checkpoint = now


def checkpoint_running_build() -> None:
    """Commit the finished tasks of the build doit is running now (see `PreloadedSqliteDB`)."""
    backend = getattr(Globals.dep_manager, "backend", None)
    if isinstance(backend, PreloadedSqliteDB):
        backend.checkpoint()


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
    source = inspect.getsource(dependency)
    missing += [f"reasons key '{key}'" for key in REASON_KEYS if f"'{key}'" not in source and f'"{key}"' not in source]
    if f"'{RUN_MARKER}'" not in source and f'"{RUN_MARKER}"' not in source and "'checker:'" not in source:
        missing.append(f"record key '{RUN_MARKER}'")
    return [f"{item} (doit {doit.__version__})" for item in missing]
