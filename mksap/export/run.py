"""How an export runs: one doit task in the build's dependency DB (basename `export`, name
`<exporter>:<file name>`). Its `file_dep`s are every output question file of the targets and
their table files (which tell the copies of a shared table apart, `mksap.export.shared`), plus
a small fingerprint of the exporter's version and options and a copy of the targets' triage
decisions (`mksap.export.decisions`, applied before the exporter runs); its target is the export
file. So re-exporting when nothing changed is "up to date" and rewrites nothing, and a new
decision rewrites it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from mksap import __version__
from mksap.advice import advised
from mksap.atomic import write_if_changed, write_json
from mksap.bank import Question, parse_targets
from mksap.build.lock import BuildLock
from mksap.build.single import run_single_task
from mksap.build.tasks import Build
from mksap.contracts.errors import ConfigError, ExportError, MksapError
from mksap.contracts.exporter import Exporter, ExportOptions, ExportQuestion, ExportStatement, ExportWritten, selected
from mksap.contracts.output import NotBuiltError, OutputDocument, holds_output
from mksap.contracts.registry import Registry
from mksap.export import decisions as triage
from mksap.export import shared
from mksap.settings import Settings


class ExportReport(BaseModel):
    """The result of `mksap export ...` / `mksap review`."""

    exporter: str
    unit: str = "statements"
    path: str
    questions: int
    up_to_date: bool
    written: ExportWritten | None = None
    disappeared: list[str] = []
    carried: dict[str, str] = {}  # old stable id -> the new one that kept its note's GUID
    shared: int = 0  # copies of shared tables' statements written as one (see mksap.export.shared)
    merged: dict[str, str] = {}  # a copy the previous export wrote as its own note -> the one written now
    merged_search: str | None = None  # an Anki search that finds those former notes
    guids_file: str | None = None


def check_writable(path: Path, default_name: str) -> None:
    """Fail early, with the reason, when `path` cannot become a file."""
    if path.is_dir():
        raise ExportError(f"cannot write {path}: it is a folder; name a file, e.g. -o {path / default_name}")
    existing = next(p for p in (path.parent, *path.parent.parents) if p.exists())
    if not existing.is_dir():
        raise ExportError(f"cannot write {path}: {existing} is a file, not a folder; choose another -o path")
    if not os.access(existing, os.W_OK):
        raise ExportError(f"cannot write {path}: no permission to write in {existing}; choose another -o path")


def never_built(build: Build, questions: list[Question], targets: list[str]) -> None:
    """Refuse when a target's output is missing or holds no statements, naming how to build it."""
    missing = [q.qid for q in questions if not holds_output(build.output_path(q))]
    if not missing:
        return
    shown = " ".join(missing[:10]) + (f" (and {len(missing) - 10} more)" if len(missing) > 10 else "")
    again = missing if len(missing) <= 10 else list(targets)
    command = advised(build.settings, "run", *again)  # with the user's --data/--out/--cache-dir
    raise ExportError(f"{len(missing)} question(s) never built: {shown}; run: {command} first")


@dataclass
class ExportJob:
    """One export: what it reads, where it writes, and, once run, what happened."""

    exporter: type[Exporter[Any]]
    options: ExportOptions
    path: Path
    outputs: list[tuple[Question, Path]]
    state_dir: Path | None = None
    decisions: dict[str, triage.Decision] = field(default_factory=dict)
    written: ExportWritten | None = None
    disappeared: list[str] = field(default_factory=list)
    carried: dict[str, str] = field(default_factory=dict)
    shared: int = 0
    merged: dict[str, str] = field(default_factory=dict)
    error: Exception | None = None

    @property
    def task_name(self) -> str:
        return f"{self.exporter.name}:{self.path.name}"

    def fingerprint(self) -> str:
        """What besides the outputs decides the file: exporter version, options, path, targets."""
        payload = {
            "exporter": self.exporter.name,
            "version": self.exporter.version,
            "mksap": __version__,
            "options": self.options.model_dump(mode="json"),
            "output": str(self.path),
            "questions": sorted(q.qid for q, _ in self.outputs),
        }
        return json.dumps(payload, sort_keys=True) + "\n"

    def action(self) -> str | None:
        """The task's action (None when it succeeded, else why not). Errors are kept and raised
        again once doit returns: expected ones become messages, anything else keeps its traceback."""
        try:
            docs = [read_built(q, p) for q, p in self.outputs]
            applied = triage.Applied(questions=triage.annotate(docs, self.decisions))
            if not self.exporter.reviews:  # a review page shows the decisions, others apply them
                applied = triage.apply(docs, self.decisions)
                docs = applied.questions
            self.path.parent.mkdir(parents=True, exist_ok=True)
            exporter = self.exporter()
            exporter.state_dir = self.state_dir
            notes, texts = read_guids(self.path)
            if texts is None:  # written by an earlier mksap: the file itself still holds the texts
                texts = {g: text_key(t) for g, t in exporter.read_notes(self.path).items()} if notes else {}
            self.carried = carry_guids(docs, self.options, notes, texts)
            merged = shared.merge(docs)  # after carry_guids: the copy the file already holds keeps its note
            self.shared = len(merged.into)
            self.written = exporter.export(merged.questions, self.options, self.path)
            if applied.rejected:
                self.written.skipped["rejected in review"] = applied.rejected
            if self.written.notes is not None:
                self.disappeared, self.merged = track_notes(
                    self.path, self.written.notes, merged.questions, self.carried, merged
                )
        except OSError as e:
            reason = e.strerror or str(e)
            self.error = ExportError(f"cannot write {self.path}: {reason}; choose another -o path")
        except Exception as e:
            self.error = e
        return str(self.error) if self.error else None


def read_built(q: Question, path: Path) -> ExportQuestion:
    """The exporters' view of question `q` built at `path`, its table statements keyed for
    merging shared tables; an unusable output names how to rebuild it."""
    try:
        doc = OutputDocument.read(path)
    except NotBuiltError as e:
        raise ExportError(f"{e}; run: mksap run {path.stem} --force") from None
    return ExportQuestion.from_document(doc, q.system, shared.table_digests(q))


def guids_file(path: Path) -> Path:
    return path.with_name(path.name + ".guids.json")


def text_key(text: str) -> str:
    """What "the same statement text" compares: the text without case and spacing differences."""
    return hashlib.sha256(" ".join(text.split()).casefold().encode()).hexdigest()[:16]


def read_guids(path: Path) -> tuple[dict[str, str], dict[str, str] | None]:
    """(GUID -> stable id, GUID -> text key) of the notes the previous export of `path` wrote,
    kept or merged, from its `<file>.guids.json`; the text keys are None when an earlier mksap
    wrote it (format 1, no texts)."""
    try:
        data = json.loads(guids_file(path).read_text(encoding="utf-8"))
        known = {**data.get("kept", {}), **data.get("merged", {}), **data.get("notes", {})}
        notes = {str(g): str(sid) for g, sid in known.items()}
        texts = data.get("texts")
    except (OSError, ValueError, AttributeError):
        return {}, {}
    return notes, ({str(g): str(k) for g, k in texts.items()} if isinstance(texts, dict) else None)


def carry_guids(
    questions: list[ExportQuestion], options: ExportOptions, notes: dict[str, str], texts: dict[str, str]
) -> dict[str, str]:
    """Give each statement the GUID the previous export of the file gave it (`guid`), so a
    note keeps its GUID, and so its history, for as long as the file is exported.

    A statement whose stable id the previous export had keeps that id's GUID. A GUID whose
    stable id is no longer built (an earlier mksap's positional id such as `c03.1`, or an id
    lost with the build state) goes to the statement of the same question with the same text
    (case and spacing aside) that the previous export did not have, when exactly one such
    statement and one such GUID share that text; otherwise it is gone, never handed to
    another fact. Returns old stable id -> new stable id of the GUIDs handed on."""
    current = {s.stable_id: s for q in questions for s in q.statements}
    for guid, sid in notes.items():
        if sid in current and current[sid].guid is None:
            current[sid].guid = guid
    known = set(notes.values())
    fresh: dict[tuple[str, str], list[ExportStatement]] = defaultdict(list)
    for q in questions:
        for s in selected(q, options)[0]:
            if s.stable_id not in known and s.guid is None:
                fresh[s.question_id, text_key(s.statement)].append(s)
    orphans: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for guid, sid in notes.items():
        if sid not in current and guid in texts:
            orphans[sid.partition("/")[0], texts[guid]].append((guid, sid))
    carried: dict[str, str] = {}
    for key, olds in orphans.items():
        news = fresh.get(key, [])
        if len(olds) == 1 and len(news) == 1:
            (guid, sid), s = olds[0], news[0]
            s.guid = guid
            carried[sid] = s.stable_id
    return carried


def track_notes(
    path: Path,
    notes: dict[str, str],
    questions: Sequence[ExportQuestion] = (),
    carried: dict[str, str] | None = None,
    merged: shared.Merged | None = None,
) -> tuple[list[str], dict[str, str]]:
    """Keep `<file>.guids.json` beside the file and return the stable ids of the notes the
    previous export of the file wrote and this one has not (`disappeared`), and the copies
    of shared tables' statements among them (`merged`: their statement is now written as
    another copy's note) with the stable id written instead.

    The file holds every GUID written with its stable id (`notes`) and its text key (`texts`),
    the GUIDs handed on to new ids (`carried`), in `kept` the GUIDs of questions this export
    left out, and in `merged` those of copies merged into another copy's note, so the next
    export that includes them (or no longer merges them) gives them the same GUIDs."""
    try:
        data = json.loads(guids_file(path).read_text(encoding="utf-8"))
        previous = {str(g): str(sid) for g, sid in data.get("notes", {}).items()}
        earlier = {**data.get("kept", {}), **data.get("merged", {})}
        before = {**{str(g): str(sid) for g, sid in earlier.items()}, **previous}
        old_texts = data.get("texts") if isinstance(data.get("texts"), dict) else {}
    except (OSError, ValueError, AttributeError):
        previous, before, old_texts = {}, {}, {}
    retired = merged.retired if merged is not None else {}
    into = merged.into if merged is not None else {}
    exported = {q.question_id for q in questions}
    kept = {
        g: sid
        for g, sid in before.items()
        if g not in notes and g not in retired and sid.partition("/")[0] not in exported
    }
    by_id = {s.stable_id: s.statement for q in questions for s in q.statements}
    by_id |= {c.stable_id: s.statement for q in questions for s in q.statements for c in s.copies}
    texts = {g: text_key(by_id[sid]) for g, sid in {**retired, **notes}.items() if sid in by_id}
    texts |= {g: str(old_texts[g]) for g in kept if g in old_texts}
    gone = {g: sid for g, sid in previous.items() if g not in notes and g not in retired}
    now_merged = {sid: into[sid] for g, sid in retired.items() if g in previous}
    record = {"mksap": 2, "file": path.name, "notes": notes, "texts": texts, "kept": kept, "merged": retired}
    extra = {"disappeared": gone, "carried": carried or {}, "merged_into": {sid: into[sid] for sid in retired.values()}}
    write_json(guids_file(path), {**record, **extra})
    return sorted(gone.values()), now_merged


def run_export(
    settings: Settings,
    name: str,
    targets: list[str],
    options: dict[str, Any],
    output: Path | None,
    *,
    force: bool = False,
    notice: Callable[[str], None] = lambda message: None,
    registry: Registry | None = None,
) -> ExportReport:
    """Export the built targets with the exporter `name`, as a doit task (see the module doc).

    `options` are the ones given on the command line; the others come from `[plugins.<name>]`
    of the config, then the exporter's defaults."""
    registry = registry or Registry.load()
    exporter: type[Exporter[Any]] = registry.get("exporter", name)
    configured = settings.plugin_options(name, exporter.options_model)
    try:
        opts = exporter.options_model.model_validate({**configured.model_dump(), **options})
    except ValidationError as e:
        err = e.errors()[0]
        flag = "--" + "-".join(str(part) for part in err["loc"]).replace("_", "-")
        raise ConfigError(f"export {name}: {flag}: {err['msg']}") from None
    build = Build.open(settings, notice=notice, use_cache=False, registry=registry)
    questions = parse_targets(targets, settings.data).discover(settings.data)
    if not questions:
        wanted = " ".join(targets) or "anything"
        raise MksapError(f"no question under {settings.data} matches {wanted}")
    never_built(build, questions, targets)
    path = (output or exporter.default_path()).expanduser().absolute()
    check_writable(path, exporter.default_path().name)
    outputs = [(q, build.output_path(q)) for q in questions]
    decided = triage.relevant(triage.load(settings), (q.qid for q in questions))
    job = ExportJob(exporter, opts, path, outputs, state_dir=build.build_dir / "exports" / name, decisions=decided)
    with BuildLock(settings.build_dir()).acquire():
        fingerprint = build.build_dir / "exports" / f"{name}-{path.name}.json"
        write_if_changed(fingerprint, job.fingerprint())
        # the targets' triage decisions: a new one makes the file stale
        decisions_dep = build.build_dir / "exports" / f"{name}-{path.name}.decisions.json"
        write_if_changed(decisions_dep, triage.serialise(decided))
        state = run_single_task(
            build,
            "export",
            job.task_name,
            job.action,
            file_dep=[p for _, p in outputs] + [t for q, _ in outputs for t in q.tables] + [fingerprint, decisions_dep],
            target=path,
            force=force,
        )
    if job.error is not None:
        raise job.error
    return ExportReport(
        exporter=name,
        unit=exporter.unit,
        path=str(path),
        questions=len(questions),
        up_to_date=state == "up-to-date",
        written=job.written,
        disappeared=job.disappeared,
        carried=job.carried,
        shared=job.shared,
        merged=job.merged,
        merged_search=exporter.search(sorted(job.merged)) if job.merged else None,
        guids_file=str(guids_file(path)) if job.written and job.written.notes is not None else None,
    )
