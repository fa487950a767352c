"""The up-to-date manifest: a stat-only proof that doit would find nothing to do for a question.

Without it a no-op rerun of 2,200 questions builds 17,600 doit task objects and has doit check
each one (~1.6 s). After a run, `<build>/uptodate.json` records, for each question whose tasks
doit found up to date or ran successfully (every one of them), a digest of the stat signatures
of the files those tasks read and write: its source files (question JSON, tables) and each
stage's artifact and output. With them it records the stage fingerprint files (every task
depends on its stage's), the shape of the task graph, and the dependency DB as the run left it.
On the next run a question whose files all still have the recorded signatures is not handed to
doit (`ManifestRun.choose`); when no question may be stale, doit is not run at all.

Why a matching signature proves doit would say "up to date":
- A signature is (device, inode, size, mtime_ns, ctime_ns). doit notices a change only
  through a file's mtime (and then its digest); every write also sets the ctime, which no one
  can set back, and an atomic replace makes a new inode. An unchanged signature means an
  unwritten file, so doit would see what it saw when the claim was made.
- doit's verdict also depends on its records. Any write to the DB file after the run (`doit
  forget`, `doit ignore`, an export task, another tool) changes the DB's signature and voids
  the whole manifest, as does a change of fingerprints or of the task graph (stages, output
  place, in-place mode, mksap or doit version): then every question goes to doit.
- Claims come only from a completed run, after doit saved its DB, and only for files as
  they were when doit looked at them: a source file, and the output of a task doit found up
  to date, must be unchanged since before doit started; the output of a task doit ran, since
  doit recorded that run (`task_done`, from the reporter). Anything else (a failure, a task
  not run, a file written meanwhile, the in-place output rewritten) leaves the question
  without a claim, so the next run asks doit. A killed or interrupted run writes nothing, and
  what it changed (its DB commits, the files it wrote) voids the claims it touched.
- The claims of questions doit was not asked about in a run (vouched for, or not among the
  targets) stand: doit changed none of their records.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

from mksap import __version__
from mksap.atomic import write_bytes

if TYPE_CHECKING:
    from doit.task import Task

    from mksap.bank import Question
    from mksap.build.runner import RunReport
    from mksap.build.tasks import Build

MANIFEST = "uptodate.json"
FORMAT = 1
#: (st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns); None for a file that is not there.
Signature = tuple[int, int, int, int, int]


def signature(path: str) -> Signature | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def digest(paths: list[str], signatures: list[Signature | None]) -> str:
    text = "\n".join(f"{p}\0{s}" for p, s in zip(paths, signatures, strict=True))
    return hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=16).hexdigest()


def db_signature(dep_file: Path) -> Signature | None:
    """The dependency DB file's signature; None when it is missing, or when SQLite has a journal
    or write-ahead log beside it (the file alone would not say what the DB holds)."""
    path = str(dep_file)
    if os.path.exists(path + "-journal") or os.path.exists(path + "-wal"):
        return None
    return signature(path)


#: The code that decides what a question's tasks are and when doit finds them up to date: an
#: edit of any of it (in a checkout, without a version bump) voids the manifest.
GRAPH_CODE = ("build/tasks.py", "build/checker.py", "build/manifest.py", "build/doit_private.py", "contracts/output.py")


def graph_key(build: Build) -> str:
    """What the task graph's shape depends on, besides each question's files."""
    root = Path(__file__).resolve().parent.parent
    code = hashlib.blake2b(digest_size=16)
    for name in GRAPH_CODE:
        try:
            code.update((root / name).read_bytes())
        except OSError:  # not installed as files: then not edited in place either
            code.update(name.encode())
    shape = {
        "format": FORMAT,
        "mksap": __version__,
        "code": code.hexdigest(),
        "doit": version("doit"),
        "stages": [[s.name, list(s.needs), s.reads_source, s.final] for s in build.stages],
        "build": str(build.build_dir),
        "out": "in-place" if build.settings.in_place else str(build.settings.out),
    }
    return hashlib.blake2b(json.dumps(shape, sort_keys=True).encode(), digest_size=16).hexdigest()


def fingerprints_digest(build: Build) -> str:
    paths = [str(build.fingerprint_file(s)) for s in build.stages]
    return digest(paths, [signature(p) for p in paths])


@dataclass
class Manifest:
    """What `<build>/uptodate.json` holds: per question id, the digest of its files' signatures."""

    key: str
    db: Signature
    fingerprints: str
    questions: dict[str, str]

    @classmethod
    def read(cls, path: Path) -> Manifest | None:
        """The manifest at `path`; None when there is none or it cannot be read (a void one)."""
        try:
            data = json.loads(path.read_bytes())
            if data.get("format") != FORMAT:
                return None
            return cls(data["key"], tuple(data["db"]), data["fingerprints"], dict(data["questions"]))  # type: ignore[arg-type]
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return None

    def write(self, path: Path) -> None:
        data = {"format": FORMAT, "key": self.key, "db": list(self.db), "fingerprints": self.fingerprints}
        text = json.dumps({**data, "questions": self.questions}, separators=(",", ":"))
        write_bytes(path, text.encode("utf-8"))


def manifest_path(build: Build) -> Path:
    return build.build_dir / MANIFEST


def discard(build: Build) -> None:
    with contextlib.suppress(OSError):
        manifest_path(build).unlink(missing_ok=True)


@dataclass
class ManifestRun:
    """One build's use of the manifest: the files' signatures before doit runs, the questions
    it vouches for, and the claims written once doit has saved its DB (`seal`).

    Start it after the fingerprint files are written and before doit checks any task."""

    build: Build
    questions: list[Question]
    key: str
    fingerprints: str
    previous: Manifest | None  # the manifest, if it holds for this run's start (else void)
    files: dict[str, list[str]]
    before: dict[str, list[Signature | None]]
    handed: list[Question] = field(default_factory=list)  # the questions doit is given
    vouched: list[Question] = field(default_factory=list)
    done: dict[str, Signature | None] = field(default_factory=dict)  # output -> when doit recorded its task
    ignored: set[str] = field(default_factory=set)
    trusted: bool = True  # doit runs on the build's DB and checker (see `distrust`)

    @classmethod
    def start(cls, build: Build, questions: list[Question]) -> ManifestRun:
        key, fingerprints = graph_key(build), fingerprints_digest(build)
        previous = Manifest.read(manifest_path(build))
        if previous is not None:
            db = db_signature(build.dep_file)
            if db is None or (previous.key, previous.db, previous.fingerprints) != (key, db, fingerprints):
                previous = None
        files = {q.qid: build.question_files(q) for q in questions}
        before = {qid: [signature(p) for p in paths] for qid, paths in files.items()}
        return cls(build, questions, key, fingerprints, previous, files, before)

    def choose(self, report: RunReport, *, skip: bool) -> list[Question]:
        """The questions to hand to doit: every one, unless `skip`; then those the manifest does
        not vouch for (their files changed, or it holds no claim for them). The tasks of those
        it vouches for go into `report` as up to date."""
        self.vouched = [q for q in self.questions if skip and self._vouches(q)]
        vouched = {q.qid for q in self.vouched}
        self.handed = [q for q in self.questions if q.qid not in vouched]
        stages = [s.name for s in self.build.stages]
        report.tasks.update({f"{stage}:{q.qid}": "up-to-date" for q in self.vouched for stage in stages})
        return self.handed

    def _vouches(self, q: Question) -> bool:
        claim = self.previous.questions.get(q.qid) if self.previous is not None else None
        if claim is None or q.problem is not None:
            return False
        before = self.before[q.qid]
        return None not in before and digest(self.files[q.qid], before) == claim

    def task_done(self, task: Task) -> None:
        """doit has run `task` and saved its record (reporter's add_success): its outputs as now."""
        for target in task.targets:
            self.done[target] = signature(target)

    def task_ignored(self, task: Task) -> None:
        self.ignored.add(task.name)

    def distrust(self) -> None:
        """doit runs on another DB or checker than the build's (which the command line or a
        config file can ask for): what it finds says nothing of the build's, so `seal` drops the
        manifest instead of writing claims."""
        self.trusted = False

    def seal(self, report: RunReport) -> None:
        """Write the manifest for the DB as doit saved it. Call only after a completed run, once
        doit has closed its DB, while still holding the build lock. A manifest that cannot be
        written is no manifest: the next run asks doit about every question."""
        db = db_signature(self.build.dep_file)
        if not self.trusted or db is None or fingerprints_digest(self.build) != self.fingerprints:
            discard(self.build)
            return
        try:
            self._write(report, db)
        except OSError:
            discard(self.build)

    def _write(self, report: RunReport, db: Signature) -> None:
        claims = dict(self.previous.questions) if self.previous is not None else {}
        stages = [s.name for s in self.build.stages]
        for q in self.handed:
            names = [f"{stage}:{q.qid}" for stage in stages]
            outcomes = [report.tasks.get(name) for name in names]
            if all(o is None for o in outcomes):
                continue  # doit was not asked about it (not among doit's targets): its records are as they were
            claims.pop(q.qid, None)
            if all(o in ("built", "up-to-date") for o in outcomes) and not self.ignored.intersection(names):
                claim = self._claim(q)
                if claim is not None:
                    claims[q.qid] = claim
        manifest = Manifest(self.key, db, self.fingerprints, claims)
        if manifest != self.previous:  # a run with nothing to do rewrites nothing
            manifest.write(manifest_path(self.build))

    def _claim(self, q: Question) -> str | None:
        paths = self.files[q.qid]
        expected = [self.done[p] if p in self.done else s for p, s in zip(paths, self.before[q.qid], strict=True)]
        now = [signature(p) for p in paths]
        return digest(paths, now) if None not in now and now == expected else None


def reseal_after_foreign_tasks(build: Build, db_before: Signature | None) -> None:
    """After doit ran only tasks that are no question's (an export, `build/single.py`): the
    claims stand, since their records are untouched, so the manifest follows the DB's new
    signature, if it held for the DB as it was before."""
    previous = Manifest.read(manifest_path(build))
    if previous is None or db_before is None or previous.db != db_before:
        return
    db = db_signature(build.dep_file)
    if db is None:
        discard(build)
        return
    previous.db = db
    with contextlib.suppress(OSError):
        previous.write(manifest_path(build))
