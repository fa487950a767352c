"""doit's SQLite backend, read in one query.

doit's `sqlite3` backend runs one SELECT per task; over 17,600 tasks that is most of a no-op
rebuild. This subclass loads every record at open and otherwise writes exactly like it: same
file, same table, so plain doit can read it. It also commits finished tasks as the run goes
(`checkpoint`), where doit commits only at the end: a SIGKILLed run keeps its progress. Registered for doit through the
`doit.BACKEND` entry point as `mksap-sqlite`; SQLite is transactional, so a SIGKILL never
leaves a torn DB.
"""

from __future__ import annotations

import time
from typing import Any

from doit.dependency import SqliteDB

CHECKPOINT_EVERY = 2.0  # seconds


class PreloadedSqliteDB(SqliteDB):
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
