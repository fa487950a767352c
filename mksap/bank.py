"""The question bank on disk: `<data>/<system>/<qid>/<qid>.json`, tables beside it.

Discovery is cheap (directory listings only, no file reads) because it runs on every
invocation, including no-op rebuilds. Whether a question is *valid* is the parse stage's job,
so a broken question becomes a failed task with a reason instead of stopping discovery.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mksap.contracts.errors import ConfigError

SYSTEMS: tuple[str, ...] = tuple("cc cs cv dm en fc gi hm hp id in np nr on pm rm".split())
QUESTION_ID = re.compile(r"^(?P<system>[a-z]{2})(?P<type>mcq|cor|qqq|vdx)(?P<yy>\d{2})(?P<n>\d{3})$")


@dataclass(frozen=True)
class Question:
    """One question folder. `json_path` may not exist: parse reports that as the failure."""

    system: str
    qid: str
    folder: Path
    tables: tuple[Path, ...]

    @property
    def json_path(self) -> Path:
        return self.folder / f"{self.qid}.json"

    def source_files(self) -> list[Path]:
        """Files whose content the build depends on (existing ones only)."""
        files = [self.json_path] if self.json_path.is_file() else []
        return files + list(self.tables)


def _subdirs(path: Path) -> list[os.DirEntry[str]]:
    with os.scandir(path) as it:
        return sorted((e for e in it if e.is_dir() and not e.name.startswith((".", "_"))), key=lambda e: e.name)


def _tables(folder: Path) -> tuple[Path, ...]:
    tables = folder / "tables"
    try:
        with os.scandir(tables) as it:
            return tuple(sorted(Path(e.path) for e in it if e.is_file() and e.name.endswith(".html")))
    except (FileNotFoundError, NotADirectoryError):
        return ()


def discover(data: Path, systems: Iterable[str] | None = None) -> list[Question]:
    """Every question folder under `data`, optionally only under the given system folders."""
    if not data.is_dir():
        raise ConfigError(f"question bank not found: {data} (set --data DIR or MKSAP_DATA)")
    wanted = set(systems) if systems is not None else None
    questions: list[Question] = []
    for sys_entry in _subdirs(data):
        if wanted is not None and sys_entry.name not in wanted:
            continue
        for q_entry in _subdirs(Path(sys_entry.path)):
            folder = Path(q_entry.path)
            questions.append(Question(sys_entry.name, q_entry.name, folder, _tables(folder)))
    return questions


@dataclass(frozen=True)
class Selection:
    """What the user named on the command line: systems and/or single questions."""

    systems: frozenset[str]
    qids: frozenset[str]

    @property
    def everything(self) -> bool:
        return not self.systems and not self.qids

    def discover(self, data: Path) -> list[Question]:
        if self.everything:
            return discover(data)
        wanted_systems = set(self.systems) | {q[:2] for q in self.qids}
        questions = discover(data, wanted_systems)
        return [q for q in questions if q.system in self.systems or q.qid in self.qids]


def parse_targets(targets: Iterable[str], data: Path | None = None) -> Selection:
    """Turn `cv en cvmcq24001` into a selection; an unknown name lists what is valid."""
    systems: set[str] = set()
    qids: set[str] = set()
    for raw in targets:
        t = raw.strip().lower()
        if t in ("all", ""):
            continue
        if t in SYSTEMS or (data is not None and (data / t).is_dir() and len(t) <= 3):
            systems.add(t)
        elif QUESTION_ID.match(t) or (data is not None and (data / t[:2] / t).is_dir()):
            qids.add(t)
        else:
            raise ConfigError(
                f"'{raw}' is neither a system code ({' '.join(SYSTEMS)}) nor a question id like cvmcq24001"
            )
    return Selection(frozenset(systems), frozenset(qids))
