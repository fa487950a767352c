"""The doit internals mksap relies on (all in mksap/build/doit_private.py) still exist and
still behave as we use them. If a doit release changes them, these fail and say what moved."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from doit.dependency import JSONCodec, SqliteDB

from mksap.build import doit_private
from mksap.build.doit_private import PreloadedSqliteDB, check_private_api


def test_every_private_name_we_use_is_still_there() -> None:
    missing = check_private_api()
    assert missing == [], f"doit changed what mksap/build/doit_private.py relies on: {missing}"


def test_the_check_notices_a_missing_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(SqliteDB, "_get_task_data")
    monkeypatch.setattr(doit_private, "REASON_KEYS", (*doit_private.REASON_KEYS, "no_such_reason_key"))
    missing = check_private_api()
    assert any("SqliteDB._get_task_data" in m for m in missing)
    assert any("no_such_reason_key" in m for m in missing)


def test_preloaded_backend_reads_in_one_query_and_checkpoints_finished_tasks(tmp_path: Path) -> None:
    path = str(tmp_path / "doit.sqlite")
    db = PreloadedSqliteDB(path, codec=JSONCodec())
    db.set("parse:q1", "checker:", "SourceChecker")
    db.checkpoint(force=True)  # committed now, not only when doit closes the DB
    with sqlite3.connect(path) as other:
        rows = other.execute("select task_id from doit").fetchall()
    assert rows == [("parse:q1",)]
    db.dump()
    reopened = PreloadedSqliteDB(path, codec=JSONCodec())
    assert reopened.get("parse:q1", "checker:") == "SourceChecker" and not reopened.in_("parse:q2")
