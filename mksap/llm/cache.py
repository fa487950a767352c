"""The persistent LLM response cache: joblib.Memory keyed by the request hash.

- A hit costs no provider call; errors, refusals and invalid answers are never stored (the
  runtime stores only answers that passed validation).
- joblib's sharp edges are kept away from users' money: the memoised function is the stable
  shim in `mksap.cache_entry`; only the hash is a hashed argument; identical calls in flight
  are merged by the runtime, not here.
- joblib stores pickles and loading a planted pickle runs code, so the folder is created
  private (0700) and a folder that other users can write, or that another user owns, is refused.
- joblib turns a failed store (a full disk, a read-only folder) into a warning; here it is a
  `CacheError` naming the cause, so a run never goes on paying for answers it cannot keep.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import stat
import threading
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from mksap.atomic import write_json
from mksap.contracts.errors import CacheError, os_error_line
from mksap.contracts.provider import LLMResponse

STATS_FILE = "last_run.json"
_ERRNO = re.compile(r"\[Errno (\d+)\]")
_WARNINGS = threading.Lock()  # warnings.catch_warnings swaps process-wide state


class CacheStats(BaseModel):
    location: str
    entries: int
    size_bytes: int
    last_run: dict[str, int]


def check_private(path: Path) -> None:
    """Refuse a cache folder other users could plant pickles in."""
    st = path.stat()
    if st.st_uid != os.getuid():
        raise CacheError(
            f"cache folder {path} is owned by another user (uid {st.st_uid}); "
            "set MKSAP_LLM_CACHE_DIR (or llm_cache_dir in config) to a folder of your own"
        )
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise CacheError(f"cache folder {path} is writable by other users; run: chmod 700 {path}")


class ResponseCache:
    """Thread- and process-safe answers by request hash."""

    def __init__(self, location: Path, *, refresh: bool = False, warn: Any = None) -> None:
        self.location = location
        self.refresh = refresh
        self.warn = warn or (lambda message: None)
        self.hits = 0
        self.misses = 0
        self.corrupt = 0
        self._lock = threading.Lock()
        self._memory: Any = None
        self._cached: Any = None

    def _open(self) -> Any:
        if self._cached is None:
            with self._lock:
                if self._cached is None:
                    self.location.mkdir(parents=True, exist_ok=True, mode=0o700)
                    check_private(self.location)
                    from joblib import Memory

                    from mksap.cache_entry import stored_answer

                    self._memory = Memory(location=str(self.location), verbose=0)
                    cached = self._memory.cache(stored_answer, ignore=["answer"])
                    # joblib writes the function's code record on a lookup, not on a forced
                    # store; without it the first lookup of a fresh process misses. Look once.
                    cached.check_call_in_cache("", None)
                    self._cached = cached
        return self._cached

    def get(self, key: str) -> LLMResponse | None:
        if self.refresh:
            self._count(miss=True)
            return None
        cached = self._open()
        if not cached.check_call_in_cache(key, None):
            self._count(miss=True)
            return None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                value = cached(key, None)
            return self._count(response=LLMResponse.model_validate(value))
        except (LookupError, ValidationError, TypeError):
            with self._lock:
                self.corrupt += 1
            self.warn(f"cache entry {key[:12]} was unreadable; treated as a miss and replaced")
            self._count(miss=True)
            return None

    def _count(self, *, miss: bool = False, response: LLMResponse | None = None) -> LLMResponse | None:
        with self._lock:
            if miss:
                self.misses += 1
            else:
                self.hits += 1
        return response

    def put(self, key: str, response: LLMResponse) -> None:
        """Store `response` under `key`, or raise `CacheError` saying why it could not be."""
        from joblib.memory import CacheWarning

        cached = self._open()
        with _WARNINGS, warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always", CacheWarning)
            cached.call(key, response.model_dump(mode="json", exclude={"from_cache"}))
        problems = [str(w.message) for w in seen if issubclass(w.category, CacheWarning)]
        for w in seen:
            if not issubclass(w.category, CacheWarning):  # not ours to swallow
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if problems or not cached.check_call_in_cache(key, None):
            raise CacheError(f"LLM cache: cannot store answers in {self.location}: {_cause(problems)}")

    def save_run_stats(self) -> None:
        if self._cached is None and not self.location.is_dir():
            return
        self.location.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_json(self.location / STATS_FILE, {"hits": self.hits, "misses": self.misses, "corrupt": self.corrupt})

    # -- maintenance -----------------------------------------------------------------------
    def _entry_dirs(self) -> list[Path]:
        root = self.location / "joblib"
        if not root.is_dir():
            return []
        return [p.parent for p in root.rglob("output.pkl")]

    def stats(self) -> CacheStats:
        size = sum(f.stat().st_size for f in self.location.rglob("*") if f.is_file()) if self.location.is_dir() else 0
        try:
            last = json.loads((self.location / STATS_FILE).read_text())
        except (FileNotFoundError, ValueError):
            last = {}
        return CacheStats(location=str(self.location), entries=len(self._entry_dirs()), size_bytes=size, last_run=last)

    def clear(self) -> int:
        n = len(self._entry_dirs())
        if (self.location / "joblib").is_dir():
            shutil.rmtree(self.location / "joblib")
        return n

    def prune(self, older_than: timedelta) -> int:
        """Remove entries last used more than `older_than` ago."""
        before = len(self._entry_dirs())
        if before:
            self._open()
            self._memory.reduce_size(age_limit=older_than)
        return before - len(self._entry_dirs())


def _cause(problems: list[str]) -> str:
    """The OS error inside joblib's warning ('... Exception: [Errno 28] No space left on
    device: ...'), as `os_error_line` says it; else joblib's own words."""
    text = problems[0] if problems else "the entry was not written"
    found = _ERRNO.search(text)
    if found is None:
        return text.rpartition("Exception: ")[2]
    code = int(found.group(1))
    return os_error_line(OSError(code, os.strerror(code) if code in errno.errorcode else text))


def parse_age(text: str) -> timedelta:
    """'30d', '12h', '90m' -> timedelta."""
    units = {"d": "days", "h": "hours", "m": "minutes", "w": "weeks"}
    try:
        return timedelta(**{units[text[-1]]: float(text[:-1])})
    except (KeyError, ValueError, IndexError):
        raise CacheError(f"'{text}' is not an age like 30d, 12h, 90m or 2w") from None
