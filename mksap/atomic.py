"""Atomic file writes: a killed run never leaves a torn file, only the old one or the new one."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_bytes(path: Path, data: bytes, *, mode: int | None = None, durable: bool = True) -> None:
    """Write `data` to a temporary file beside `path`, then rename it over `path`.

    The rename alone is enough against a killed process (SIGKILL never tears a file).
    `durable` also fsyncs before the rename, against power loss; derived build artifacts skip
    it (it was the largest single cost of building them: ~2 ms a file).
    """
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except FileNotFoundError:  # create folders only when missing: mkdir is a syscall per write
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        elif path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        else:
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs are ordinary readable files
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, obj: Any, *, compact: bool = False) -> None:
    """JSON with non-ASCII kept readable: pretty (as the question bank itself is written) for
    files people read; `compact` for build artifacts (json's C encoder only runs without
    indent, and nothing is fsynced: they are derived and re-creatable)."""
    if compact:
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
        write_bytes(path, text.encode("utf-8"), durable=False)
    else:
        write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def write_if_changed(path: Path, text: str) -> bool:
    """Write only when the content differs, so the file's mtime means 'content changed'."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    write_text(path, text)
    return True
