"""The question bank on disk: `<data>/<system>/<qid>/<qid>.json`, tables beside it.

Discovery is cheap (directory listings only, no file reads) because it runs on every
invocation, including no-op rebuilds. Whether a question is *valid* is the parse stage's job,
so a broken question becomes a failed task with a reason instead of stopping discovery. What
discovery itself finds wrong (a folder it cannot list, a symlink loop, a symlink out of the
bank, the same id in two folders) travels with the question as its `problem`, which the parse
stage reports as that question's one-line failure: discovery never aborts the build.

`--data` may also name one system folder (`examples/cv`) or one question folder
(`examples/cv/cvmcq24101`): the build then covers that system or that question (`locate`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mksap.contracts.errors import ConfigError

SYSTEMS: tuple[str, ...] = tuple("cc cs cv dm en fc gi hm hp id in np nr on pm rm".split())
#: ASCII only: `\d` would also accept fullwidth and other Unicode digits.
QUESTION_ID = re.compile(r"^(?P<system>[a-z]{2})(?P<type>mcq|cor|qqq|vdx)(?P<yy>[0-9]{2})(?P<n>[0-9]{3})$", re.ASCII)


@dataclass(frozen=True)
class Question:
    """One question folder. `json_path` may not exist: parse reports that as the failure.

    `problem` is what discovery found wrong with the folder (the parse stage fails the question
    with it); `also` are more files the question depends on (the other folder of a duplicated
    id, so removing either one reruns it)."""

    system: str
    qid: str
    folder: Path
    tables: tuple[Path, ...]
    problem: str | None = None
    also: tuple[Path, ...] = ()

    @property
    def json_path(self) -> Path:
        return self.folder / f"{self.qid}.json"

    def source_files(self) -> list[Path]:
        """Files whose content the build depends on (existing ones only)."""
        files = [self.json_path] if self.json_path.is_file() else []
        return files + list(self.tables) + [p for p in self.also if p.is_file()]


def _why(e: OSError) -> str:
    return e.strerror or type(e).__name__


@dataclass
class _Listing:
    """One folder's entries as discovery sees them."""

    folders: list[os.DirEntry[str]]
    broken: list[tuple[str, str]]  # (name, reason): entries that cannot even be stat'ed
    question_files: list[os.DirEntry[str]]  # `<qid>.json` files lying right here


def _entries(path: Path) -> _Listing:
    """Sub-folders (hidden and `_` names skipped, plain files ignored), and what cannot be
    told apart (a looping or unreadable link): reported, never raised."""
    listing = _Listing([], [], [])
    with os.scandir(path) as it:
        for e in it:
            if e.name.startswith((".", "_")):
                continue
            try:
                if e.is_dir():
                    listing.folders.append(e)
                elif e.name.endswith(".json") and QUESTION_ID.match(e.name[:-5]):
                    listing.question_files.append(e)
            except OSError as err:  # ELOOP, EACCES: an entry we cannot even stat
                listing.broken.append((e.name, _why(err)))
    listing.folders.sort(key=lambda e: e.name)
    return listing


def _tables(folder: Path) -> tuple[tuple[Path, ...], str | None]:
    tables = folder / "tables"
    try:
        with os.scandir(tables) as it:
            return tuple(sorted(Path(e.path) for e in it if e.name.endswith(".html") and _is_file(e))), None
    except (FileNotFoundError, NotADirectoryError):
        return (), None
    except OSError as e:
        return (), f"{tables}: cannot be listed ({_why(e)})"


def _is_file(e: os.DirEntry[str]) -> bool:
    try:
        return e.is_file()
    except OSError:
        return False


def _escapes(entry: os.DirEntry[str], root: Path) -> str | None:
    """Why a symlinked folder is refused: it leads out of the bank (or nowhere)."""
    if not entry.is_symlink():
        return None
    try:
        target = Path(entry.path).resolve(strict=True)
    except (OSError, RuntimeError) as e:
        return f"{entry.path}: a symlink that cannot be followed ({e.strerror if isinstance(e, OSError) else e})"
    if target.is_relative_to(root):
        return None
    return f"{entry.path}: a symlink to {target}, outside the bank {root}; refused (copy the folder into the bank)"


@dataclass(frozen=True)
class BankRoot:
    """What `--data` names: the bank, one system folder of it, or one question folder."""

    kind: str  # "bank" | "system" | "question"
    path: Path


def locate(data: Path) -> BankRoot:
    """Tell a bank from a system folder (`examples/cv`) and a question folder
    (`examples/cv/cvmcq24101`), from names alone: a question folder holds `<its name>.json`, a
    system folder holds question-id folders and no system-code folder."""
    if not data.is_dir():
        raise ConfigError(f"question bank not found: {data} (set --data DIR or MKSAP_DATA)")
    if QUESTION_ID.match(data.name) and (data / f"{data.name}.json").is_file():
        return BankRoot("question", data)
    try:
        names = [e.name for e in os.scandir(data)]
    except OSError as e:
        raise ConfigError(f"question bank {data} cannot be listed ({_why(e)}); set --data DIR or MKSAP_DATA") from None
    if not any(n in SYSTEMS for n in names) and any(QUESTION_ID.match(n) for n in names):
        return BankRoot("system", data)
    return BankRoot("bank", data)


def discover(data: Path, systems: Iterable[str] | None = None) -> list[Question]:
    """Every question folder under `data`, optionally only under the given system folders."""
    where = locate(data)
    wanted = set(systems) if systems is not None else None
    root = data.resolve()
    if where.kind == "question":
        tables, problem = _tables(data)
        q = Question(data.name[:2], data.name, data, tables, problem)
        return [q] if wanted is None or q.system in wanted else []
    if where.kind == "system":
        if wanted is not None and data.name not in wanted:
            return []
        return _unique(_system(data.name, data, root, refused=None))
    questions: list[Question] = []
    listing = _entries(data)
    questions += [_broken(data, name, reason, system=name) for name, reason in listing.broken if _wanted(name, wanted)]
    for sys_entry in listing.folders:
        if wanted is not None and sys_entry.name not in wanted:
            continue
        questions += _system(sys_entry.name, Path(sys_entry.path), root, refused=_escapes(sys_entry, root))
    return _unique(questions)


def _wanted(name: str, wanted: set[str] | None) -> bool:
    return wanted is None or name in wanted or name[:2] in wanted


def _broken(parent: Path, name: str, reason: str, *, system: str) -> Question:
    path = parent / name
    return Question(system, name, path, (), f"{path}: cannot be read ({reason}); fix or remove it")


def _system(name: str, folder: Path, root: Path, *, refused: str | None) -> list[Question]:
    """The question folders of one system folder."""
    try:
        listing = _entries(folder)
    except OSError as e:
        return [Question(name, name, folder, (), f"{folder}: cannot be listed ({_why(e)}); fix or remove it")]
    questions = [_broken(folder, qname, reason, system=name) for qname, reason in listing.broken]
    questions += _misplaced(folder, listing, system=name)
    for q_entry in listing.folders:
        path = Path(q_entry.path)
        problem = refused or _escapes(q_entry, root)
        tables, unlisted = ((), None) if problem else _tables(path)
        questions.append(Question(name, q_entry.name, path, tables, problem or unlisted))
    return questions


def _misplaced(folder: Path, listing: _Listing, *, system: str) -> list[Question]:
    """`<system>/<qid>.json` with no `<qid>/` folder: a question file one level too high,
    reported instead of silently left out."""
    names = {e.name for e in listing.folders}
    return [
        Question(
            system,
            e.name[:-5],
            folder / e.name[:-5],
            (),
            f"{e.path}: not in a folder of its own; move it to {folder / e.name[:-5] / e.name}",
        )
        for e in sorted(listing.question_files, key=lambda e: e.name)
        if e.name[:-5] not in names
    ]


def _unique(questions: list[Question]) -> list[Question]:
    """One question per id: an id found in several folders fails, naming every folder (each
    would be a task of the same name; building one of them would be a guess)."""
    by_id: dict[str, list[Question]] = {}
    for q in questions:
        by_id.setdefault(q.qid, []).append(q)
    result: list[Question] = []
    for q in questions:
        same = by_id[q.qid]
        if len(same) == 1:
            result.append(q)
        elif same[0] is q:
            folders = " and ".join(str(d.folder) for d in same)
            problem = f"question id {q.qid} is in {len(same)} folders: {folders}; remove or rename all but one"
            others = tuple(d.json_path for d in same[1:])
            result.append(Question(q.system, q.qid, q.folder, q.tables, problem, others))
    return result


def find(data: Path, qid: str) -> Question | None:
    """The question `qid` of the bank at `data`, if it has one (a listing of one system)."""
    return next((q for q in discover(data, {qid[:2]}) if q.qid == qid), None)


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
