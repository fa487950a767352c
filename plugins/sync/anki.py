"""`mksap sync anki`: bring the notes in a running Anki up to date through AnkiConnect.

The notes are exactly those `mksap export anki` writes for the targets (the exporter writes
them to a temporary .apkg that is read back). Each note is matched to a note of mksap's note
type in Anki (found by the note type's fixed id): through the sync state (the GUID we gave it,
or its stable id), else by its `StableId` field (a note from an .apkg import), else by its
text within its question (a note exported under an earlier id scheme). Then:

- no note in Anki: **added** through `importPackage` of an .apkg holding only the new notes,
  so they keep mksap's GUIDs and a later .apkg import updates them instead of duplicating them
  (`addNote` cannot set a GUID). The note type comes with that package, with the exporter's
  fixed id (a note type made by `createModel` would get another id, and Anki would skip the
  notes of a later .apkg import as conflicting); missing decks are made first (`createDeck`);
- in Anki as mksap wants it: unchanged;
- its fields edited in Anki since the last sync (its `mod` moved and its fields are not the
  ones the sync left): left alone, and reported **skipped-edited** when mksap has a change;
- otherwise **updated** (`updateNoteFields` with the changed fields; `addTags`/`removeTags`
  for the `mksap::` tags, the user's own tags stay);
- a note of ours in the targets whose statement is gone: tagged `mksap::gone`, never deleted;
- a note the last sync left that the user deleted since: not added again.

A statement of a table shared by several questions is one note, as in the .apkg
(`mksap.export.shared`); the copy that has a note in Anki, or had one after an earlier sync,
keeps it (the first in question order when several do), and the other copies' notes are
tagged gone like any statement that went away (the report says why).

A sync that changes Anki first writes a snapshot (see `mksap_plugins.sync.store`);
`--rollback` undoes the newest one (added notes deleted, fields and tags put back, gone tags
removed), leaving alone what was edited in Anki since. AnkiConnect calls are batched in
`multi` requests: a sync of hundreds of notes takes about ten requests.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr

from mksap.contracts.errors import MksapError
from mksap.contracts.exporter import ExportQuestion
from mksap.contracts.registry import Registry
from mksap.export.shared import merge
from mksap.settings import PluginOptions, Settings
from mksap_plugins.exporters.anki import FIELDS, MODEL_ID, AnkiExporter, AnkiOptions
from mksap_plugins.sync.ankiconnect import AnkiConnect, AnkiConnectError
from mksap_plugins.sync.notes import (
    GONE_TAG,
    AnkiNote,
    WantedNote,
    fields_digest,
    first_line,
    question_of,
    read_package,
    text_key,
)
from mksap_plugins.sync.report import NoteLine, SyncReport
from mksap_plugins.sync.store import AddedEntry, GoneEntry, Record, Snapshot, SyncState, SyncStore, UpdatedEntry

PLUGIN = "anki-sync"
NOTES_PER_INFO = 500  # note ids per notesInfo action
INFOS_PER_REQUEST = 4  # notesInfo actions per request: one request never holds Anki for long


class AnkiSyncOptions(PluginOptions):
    """`[plugins.anki-sync]`, or `MKSAP_ANKI_SYNC_<OPTION>`. Which notes and which deck come
    from the Anki exporter's options (`[plugins.anki]`): a sync writes what an export would."""

    url: str = Field("http://127.0.0.1:8765", min_length=1, description="AnkiConnect's address")
    api_key: SecretStr | None = Field(None, description="the AnkiConnect add-on's apiKey, if it has one")
    timeout: float = Field(120.0, gt=0, description="seconds to wait for one AnkiConnect request")


# -- reading both sides -------------------------------------------------------------------
def connect(options: AnkiSyncOptions) -> tuple[AnkiConnect, str]:
    """A checked client, and the name of the profile open in Anki."""
    key = options.api_key.get_secret_value().strip() if options.api_key is not None else ""
    client = AnkiConnect(options.url, key or None, options.timeout)
    client.check()
    [profile] = client.multi([("getActiveProfile", {})])  # an old add-on lacks it: "default"
    return client, str(profile.result) if profile.error is None and profile.result else "default"


@dataclass(frozen=True)
class AnkiSide:
    notes: dict[int, AnkiNote]  # every note of mksap's note type, by note id
    decks: set[str]


def _chunks(items: Sequence[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def read_anki(client: AnkiConnect) -> AnkiSide:
    """Our notes (of the exporter's note type, found by its fixed id) and the deck names. A
    note type of ours that lost one of our fields is an error."""
    models, decks, ids = client.multi_results(
        [("modelNamesAndIds", {}), ("deckNames", {}), ("findNotes", {"query": f"mid:{MODEL_ID}"})]
    )
    model = next((name for name, mid in models.items() if int(mid) == MODEL_ID), None)
    if model is not None:
        names = client.call("modelFieldNames", modelName=model)
        missing = [f for f in FIELDS if f not in names]
        if missing:
            raise AnkiConnectError(
                f"note type '{model}' in Anki lacks the field(s) {', '.join(missing)} mksap writes; "
                "add them back (Tools > Manage Note Types > Fields) and sync again"
            )
    return AnkiSide(notes_info(client, ids), set(decks))


def notes_info(client: AnkiConnect, ids: Iterable[int]) -> dict[int, AnkiNote]:
    """The notes of `ids` that exist, read `NOTES_PER_INFO` at a time in `multi` requests."""
    actions = [("notesInfo", {"notes": chunk}) for chunk in _chunks(sorted(set(ids)), NOTES_PER_INFO)]
    results = client.multi_results(actions, per_request=INFOS_PER_REQUEST)
    return {n.note_id: n for n in (AnkiNote.from_info(i) for infos in results for i in infos if i)}


def built_questions(
    settings: Settings, registry: Registry, targets: list[str], notice: Callable[[str], None]
) -> tuple[list[ExportQuestion], Callable[[str], bool]]:
    """The built questions of `targets` as `mksap export` reads them (targets never built are
    refused the same way, the triage decisions applied the same way), and whether a stable id belongs to the targets."""
    from mksap.bank import parse_targets
    from mksap.build.tasks import Build
    from mksap.export import decisions
    from mksap.export.run import never_built, read_built

    selection = parse_targets(targets, settings.data)
    questions = selection.discover(settings.data)
    if not questions:
        raise MksapError(f"no question under {settings.data} matches {' '.join(targets) or 'anything'}")
    build = Build.open(settings, notice=notice, use_cache=False, registry=registry)
    never_built(build, questions, targets)
    docs = [read_built(q, build.output_path(q)) for q in questions]
    docs = decisions.apply(docs, decisions.load(settings)).questions  # triage: rejected out, edits in

    def in_scope(stable_id: str) -> bool:
        qid = question_of(stable_id)
        return selection.everything or qid in selection.qids or qid[:2] in selection.systems

    return docs, in_scope


def wanted_notes(
    questions: list[ExportQuestion], options: AnkiOptions, path: Path
) -> tuple[dict[str, WantedNote], dict[str, int]]:
    """Every note `mksap export anki` writes for `questions` (stable id -> note), and how many
    statements it left out, why."""
    written = AnkiExporter().export(questions, options, path)
    return read_package(path), written.skipped


def new_notes_package(
    questions: list[ExportQuestion], options: AnkiOptions, wanted: Iterable[WantedNote], path: Path
) -> None:
    """The exporter's .apkg of only the `wanted` notes (GUIDs, note type and decks as in the
    full export)."""
    by_id = {n.stable_id: n for n in wanted}
    subset = [
        q.model_copy(update={"statements": keep})
        for q in questions
        if (keep := [s for s in q.statements if s.stable_id in by_id])
    ]
    AnkiExporter().export(subset, options, path)
    if {n.guid for n in read_package(path).values()} != {n.guid for n in by_id.values()}:
        raise MksapError(f"the package of new notes ({path}) does not hold exactly the new notes; please report it")


# -- the plan -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Match:
    want: WantedNote
    note: AnkiNote
    rec: Record | None  # what the last sync left, None for a note no sync has written


@dataclass
class Plan:
    """What a sync does, computed from the three sides; computing it changes nothing."""

    add: list[WantedNote] = field(default_factory=list)
    update: list[Match] = field(default_factory=list)
    skipped: list[Match] = field(default_factory=list)
    gone: list[tuple[AnkiNote, Record | None]] = field(default_factory=list)
    deleted: list[WantedNote] = field(default_factory=list)
    refresh: dict[str, Record | None] = field(default_factory=dict)  # records to write, Anki unchanged
    unchanged: int = 0
    notices: list[str] = field(default_factory=list)
    merged_into: dict[str, str] = field(default_factory=dict)  # a shared table's copy -> the note written

    @property
    def changes(self) -> bool:
        return bool(self.add or self.update or self.gone)


def match_notes(
    wanted: Mapping[str, WantedNote], notes: Mapping[int, AnkiNote], state: SyncState, in_scope: Callable[[str], bool]
) -> dict[str, tuple[AnkiNote | None, str | None]]:
    """stable id -> (its note in Anki or None, the key of its record in the state or None)."""
    recs = state.notes
    by_guid = {r.guid: k for k, r in recs.items() if r.guid}
    by_sid: dict[str, list[str]] = defaultdict(list)
    for k, r in recs.items():
        by_sid[r.stable_id].append(k)
    unrecorded: dict[str, list[AnkiNote]] = defaultdict(list)
    for n in sorted(notes.values(), key=lambda n: n.note_id):  # the oldest first: it has the history
        if str(n.note_id) not in recs:
            unrecorded[n.stable_id].append(n)
    claimed: set[int] = set()
    pairs: dict[str, tuple[AnkiNote | None, str | None]] = {}
    for sid, want in wanted.items():
        keys = ([by_guid[want.guid]] if want.guid in by_guid else []) + by_sid.get(sid, [])
        key = next((k for k in keys if int(k) in notes and int(k) not in claimed), None)
        if key is not None:
            note: AnkiNote | None = notes[int(key)]
        else:
            note = next((n for n in unrecorded.get(sid, []) if n.note_id not in claimed), None)
            key = None if note is not None else next(iter(keys), None)  # a record whose note is gone
        if note is not None:
            claimed.add(note.note_id)
        pairs[sid] = (note, key)
    # A statement whose id changed (e.g. an .apkg exported under the earlier id scheme): the one
    # note of its question with the same text and an id mksap no longer builds, if unique.
    loose: dict[tuple[str, str], list[AnkiNote]] = defaultdict(list)
    for n in notes.values():
        if n.note_id not in claimed and n.stable_id not in wanted and in_scope(n.stable_id):
            loose[question_of(n.stable_id), text_key(n.text)].append(n)
    fresh: dict[tuple[str, str], list[str]] = defaultdict(list)
    for sid, (note, key) in pairs.items():
        if note is None and key is None:
            fresh[question_of(sid), text_key(wanted[sid].text)].append(sid)
    for text, sids in fresh.items():
        candidates = loose.get(text, [])
        if len(sids) == 1 and len(candidates) == 1:
            note = candidates[0]
            claimed.add(note.note_id)
            pairs[sids[0]] = (note, str(note.note_id) if str(note.note_id) in recs else None)
    return pairs


def make_plan(
    wanted: Mapping[str, WantedNote], notes: Mapping[int, AnkiNote], state: SyncState, in_scope: Callable[[str], bool]
) -> Plan:
    """Sort every wanted note and every note of ours in the targets into what the sync does."""
    plan = Plan()
    pairs = match_notes(wanted, notes, state, in_scope)
    for sid, (note, key) in pairs.items():
        want = wanted[sid]
        rec = state.notes.get(key) if key is not None else None
        if note is None:
            if rec is not None and not rec.gone:
                plan.deleted.append(want)  # the user deleted it in Anki: respect that
                continue
            plan.add.append(want)
            if key is not None:
                plan.refresh[key] = None
        elif note.content == want.content:
            plan.unchanged += 1
            fresh = Record.of(note, rec.guid if rec else None, sid)
            if fresh != rec:
                plan.refresh[str(note.note_id)] = fresh
        elif rec is None:
            plan.update.append(Match(want, note, None))  # in Anki before any sync: ours from now on
        elif note.edited_since(rec.fields):
            if want.content != rec.content:
                plan.skipped.append(Match(want, note, rec))
            else:
                plan.unchanged += 1  # edited in Anki, and mksap has nothing new for it
        elif want.content != rec.content or note.mod == rec.mod:
            plan.update.append(Match(want, note, rec))
        else:
            plan.unchanged += 1  # only its tags changed in Anki, and mksap has nothing new
    matched = {n.note_id for n, _ in pairs.values() if n is not None}
    duplicates = 0
    for note in notes.values():
        if note.note_id in matched or not in_scope(note.stable_id):
            continue
        rec = state.notes.get(str(note.note_id))
        if note.stable_id in wanted:
            duplicates += 1
        elif not note.is_gone and not (rec is not None and rec.gone):  # a gone tag the user removed stays off
            plan.gone.append((note, rec))
    wanted_keys = {key for _, key in pairs.values() if key is not None}
    for key, rec in state.notes.items():
        if int(key) not in notes and key not in wanted_keys and in_scope(rec.stable_id):
            plan.refresh[key] = None  # gone from mksap and deleted in Anki: forget it
    if duplicates:
        plan.notices.append(
            f"{duplicates} note(s) have the StableId of another note of mksap's note type: left alone "
            "(find them with 'dupe:' or their StableId in Anki's browser)"
        )
    return plan


def note_line(sid: str, note_id: int | None, text: str, detail: str = "") -> NoteLine:
    return NoteLine(stable_id=sid, note_id=note_id, text=first_line(text), detail=detail)


def describe(plan: Plan, report: SyncReport) -> None:
    """The plan as report lines."""
    report.added = [note_line(w.stable_id, None, w.text) for w in plan.add]
    for m in plan.update:
        fields = m.note.changed_fields(m.want.fields)
        add, remove = m.note.tag_changes(m.want.tags)
        line = note_line(
            m.want.stable_id, m.note.note_id, m.want.text, ", ".join([*fields, *(["tags"] if add or remove else [])])
        )
        line.before = first_line(m.note.text) if "Text" in fields else ""
        report.updated.append(line)
    report.skipped_edited = [
        note_line(m.want.stable_id, m.note.note_id, m.note.text, "edited in Anki; mksap's version left out")
        for m in plan.skipped
    ]
    into = plan.merged_into
    report.gone = [
        note_line(n.stable_id, n.note_id, n.text, f"one note with {into[n.stable_id]}" if n.stable_id in into else "")
        for n, _ in plan.gone
    ]
    merged = sum(n.stable_id in into for n, _ in plan.gone)
    if merged:
        report.notices.append(
            f"{merged} note(s) are copies of a statement of a table shared by several questions, now one note "
            f"tagged with each of them: tagged {GONE_TAG} (delete them in Anki if you wish)"
        )
    report.deleted_in_anki = [note_line(w.stable_id, None, w.text) for w in plan.deleted]
    report.unchanged = plan.unchanged
    report.notices += plan.notices


# -- sync ---------------------------------------------------------------------------------
def sync_anki(
    settings: Settings,
    registry: Registry,
    targets: list[str],
    options: AnkiSyncOptions,
    anki_options: AnkiOptions,
    *,
    dry_run: bool = False,
    notice: Callable[[str], None] = lambda message: None,
) -> SyncReport:
    """Bring Anki's notes of `targets` up to date (see the module doc); `dry_run` only plans."""
    started = time.monotonic()
    client, profile = connect(options)
    store = SyncStore.open(settings, profile)
    questions, in_scope = built_questions(settings, registry, targets, notice)
    report = SyncReport(
        url=client.url, profile=profile, deck=anki_options.deck, dry_run=dry_run, questions=len(questions)
    )
    with build_lock(settings, dry_run), _scratch(store, dry_run) as tmp:
        anki = read_anki(client)
        state = store.load_state()
        # a shared table's statement once: the copy with a note in Anki (or one an earlier sync
        # left, which the user may have deleted since) keeps it
        held = {n.stable_id for n in anki.notes.values()} | {r.stable_id for r in state.notes.values()}
        merged = merge(questions, held=lambda s: s.stable_id in held)
        questions = merged.questions
        wanted, report.left_out = wanted_notes(questions, anki_options, tmp / "all.apkg")
        report.notes = len(wanted)
        last = store.latest()
        if last is not None and last.status == "planned":
            report.notices.append(
                f"the sync of {last.created} did not finish; what it did is in Anki and is taken as it is "
                f"(`mksap sync anki --rollback` undoes it: {store.path_of(last)})"
            )
        plan = make_plan(wanted, anki.notes, state, in_scope)
        plan.merged_into = merged.into
        describe(plan, report)
        report.created_decks = sorted({w.deck for w in plan.add} - anki.decks)
        if not dry_run and plan.changes:
            apply(client, store, state, plan, report, (questions, anki_options, tmp))
        elif not dry_run and plan.refresh:
            state.apply(plan.refresh)
            store.save_state(state)
    report.seconds = round(time.monotonic() - started, 3)
    return report


@contextlib.contextmanager
def build_lock(settings: Settings, dry_run: bool) -> Iterator[None]:
    """The build lock while a sync changes things: no build rewrites the outputs it reads, and
    no second sync races it on the state. A dry run only reads."""
    if dry_run:
        yield
        return
    from mksap.build.lock import BuildLock

    with BuildLock(settings.build_dir()).acquire():
        yield


@contextlib.contextmanager
def _scratch(store: SyncStore, dry_run: bool) -> Iterator[Path]:
    """A folder for the temporary packages: beside the sync state, where Anki can read the one
    it imports (a sandboxed Anki may not see /tmp); the system's for a dry run, which writes
    nothing of ours."""
    if not dry_run:
        store.root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".sync-", dir=None if dry_run else store.root) as tmp:
        yield Path(tmp)


def tag_actions(changes: Iterable[tuple[int, list[str], list[str]]]) -> list[tuple[str, dict[str, Any]]]:
    """addTags/removeTags for (note id, tags to add, tags to remove): one action per distinct
    tag set, so hundreds of notes usually need a handful."""
    adds: dict[str, list[int]] = defaultdict(list)
    removes: dict[str, list[int]] = defaultdict(list)
    for note_id, add, remove in changes:
        if add:
            adds[" ".join(add)].append(note_id)
        if remove:
            removes[" ".join(remove)].append(note_id)
    return [("addTags", {"notes": ids, "tags": tags}) for tags, ids in adds.items()] + [
        ("removeTags", {"notes": ids, "tags": tags}) for tags, ids in removes.items()
    ]


def _snapshot(store: SyncStore, state: SyncState, plan: Plan, url: str) -> Snapshot:
    snapshot = store.new_snapshot(url)
    keys = [str(m.note.note_id) for m in plan.update] + [str(n.note_id) for n, _ in plan.gone] + list(plan.refresh)
    snapshot.previous = {k: state.notes.get(k) for k in keys}
    snapshot.added = [
        AddedEntry(stable_id=w.stable_id, guid=w.guid, fields=fields_digest(w.fields), text=first_line(w.text))
        for w in plan.add
    ]
    snapshot.updated = [
        UpdatedEntry(
            stable_id=m.want.stable_id,
            note_id=m.note.note_id,
            before_fields={f: m.note.fields.get(f, "") for f in FIELDS},
            before_tags=list(m.note.tags),
            fields=fields_digest(m.want.fields),
            text=first_line(m.want.text),
        )
        for m in plan.update
    ]
    snapshot.gone = [GoneEntry(stable_id=n.stable_id, note_id=n.note_id, text=first_line(n.text)) for n, _ in plan.gone]
    return snapshot


def apply(
    client: AnkiConnect,
    store: SyncStore,
    state: SyncState,
    plan: Plan,
    report: SyncReport,
    export: tuple[list[ExportQuestion], AnkiOptions, Path],
) -> None:
    """Make the plan's changes: snapshot first, then decks and new notes, then field and tag
    changes in `multi` requests, then every touched note read back into the state."""
    snapshot = _snapshot(store, state, plan, client.url)
    store.save_snapshot(snapshot)
    report.snapshot = str(store.path_of(snapshot))
    added = _add(client, plan, report, export) if plan.add else {}
    refused = _change(client, plan, report)
    back = notes_info(client, [m.note.note_id for m in plan.update] + [n.note_id for n, _ in plan.gone])

    records: dict[str, Record | None] = dict(plan.refresh)
    for entry in snapshot.added:
        if (note := added.get(entry.stable_id)) is not None:
            entry.note_id, entry.mod, entry.fields = note.note_id, note.mod, note.fields_digest
            snapshot.previous[str(note.note_id)] = None
            records[str(note.note_id)] = Record.of(note, entry.guid, entry.stable_id)
    snapshot.added = [e for e in snapshot.added if e.note_id is not None]
    report.added = [line for line in report.added if line.stable_id in added]
    failed: set[int] = set()
    for m, entry in zip(plan.update, snapshot.updated, strict=True):
        note = back.get(m.note.note_id)
        why = refused.get(m.note.note_id) or _not_updated(note, m.want)
        if why:
            report.failed.append(note_line(m.want.stable_id, m.note.note_id, m.want.text, why))
            failed.add(m.note.note_id)  # it keeps its old record (or none): the next sync tries again
        elif note is not None:
            records[str(note.note_id)] = Record.of(note, m.rec.guid if m.rec else None, m.want.stable_id)
        if note is not None:
            entry.mod, entry.fields = note.mod, note.fields_digest
    report.updated = [line for line in report.updated if line.note_id not in failed]
    for before, rec in plan.gone:
        if (note := back.get(before.note_id)) is not None:
            records[str(note.note_id)] = Record.of(note, rec.guid if rec else None, rec.stable_id if rec else None)
    snapshot.status = "done"
    store.save_snapshot(snapshot)
    state.apply(records)
    store.save_state(state)


def _change(client: AnkiConnect, plan: Plan, report: SyncReport) -> dict[int, str]:
    """The field and tag changes of the updated and gone notes, in `multi` requests; the error
    AnkiConnect gave for each note whose fields it refused."""
    field_actions = [
        ("updateNoteFields", {"note": {"id": m.note.note_id, "fields": changed}})
        for m in plan.update
        if (changed := m.note.changed_fields(m.want.fields))
    ]
    tags = tag_actions((m.note.note_id, *m.note.tag_changes(m.want.tags)) for m in plan.update)
    if plan.gone:
        tags.append(("addTags", {"notes": [n.note_id for n, _ in plan.gone], "tags": GONE_TAG}))
    replies = client.multi(field_actions + tags)
    tag_errors = [r.error for r in replies[len(field_actions) :] if r.error]
    if tag_errors:
        report.notices.append(f"AnkiConnect refused {len(tag_errors)} tag change(s): {tag_errors[0]}")
    return {a[1]["note"]["id"]: r.error for a, r in zip(field_actions, replies, strict=False) if r.error}


def _not_updated(note: AnkiNote | None, want: WantedNote) -> str:
    """Why a note read back after its update does not hold mksap's fields ("" when it does)."""
    if note is None:
        return "deleted in Anki during the sync"
    if note.changed_fields(want.fields):
        return "Anki kept its old fields: is it open in Anki's browser? close the browser and sync again"
    return ""


def _add(
    client: AnkiConnect, plan: Plan, report: SyncReport, export: tuple[list[ExportQuestion], AnkiOptions, Path]
) -> dict[str, AnkiNote]:
    """Import the new notes as an .apkg of their own; stable id -> each note added, read back."""
    questions, anki_options, tmp = export
    if report.created_decks:
        client.multi_results([("createDeck", {"deck": deck}) for deck in report.created_decks])
    package = tmp / "new.apkg"
    new_notes_package(questions, anki_options, plan.add, package)
    before = set(client.call("findNotes", query=f"mid:{MODEL_ID}"))
    if client.call("importPackage", path=str(package.resolve())) is not True:
        raise AnkiConnectError("AnkiConnect did not import the new notes: open a profile in Anki and sync again")
    fresh = set(client.call("findNotes", query=f"mid:{MODEL_ID}")) - before
    found: dict[str, AnkiNote] = {}
    for note in sorted(notes_info(client, fresh).values(), key=lambda n: n.note_id):
        found.setdefault(note.stable_id, note)
    for want in plan.add:
        if want.stable_id not in found:
            why = "Anki's import skipped it (a note with its GUID but another note type?)"
            report.failed.append(note_line(want.stable_id, None, want.text, why))
    return {w.stable_id: found[w.stable_id] for w in plan.add if w.stable_id in found}
