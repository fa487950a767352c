"""A local AnkiConnect (protocol version 6) backed by a real Anki collection, for tests.

It is a real HTTP server on 127.0.0.1 with an OS-assigned port, and every action runs against
a real collection opened with Anki's own Python library (`anki` on PyPI), so what a client
writes can be read back exactly as Anki stores it::

    with FakeAnkiConnect(tmp_path / "anki" / "collection.anki2", api_key="k") as anki:
        body = {"action": "deckNames", "version": 6, "key": "k"}
        urllib.request.urlopen(anki.url, json.dumps(body).encode())  # {"result": [...], "error": None}
        with anki.collection() as col:  # the same collection, under the server's lock
            col.note_count()

Rules kept from the add-on (FooSoft/anki-connect, `plugin/__init__.py` and `plugin/web.py`):

- Any path and method: a body is a JSON object `{"action", "version", "params", "key"}`; an
  empty body answers the text `AnkiConnect v.6`; a body that is not JSON, or fails the
  add-on's request schema, answers `{"result": null, "error": "<why>"}`. `OPTIONS` answers an
  empty CORS preflight.
- `version` defaults to 4; at 4 or below a success is the bare result, above 4 it is
  `{"result": ..., "error": null}`. A failure is always `{"result": null, "error": "<text>"}`,
  with HTTP 200.
- The key check is `key != configured key`, for every action but `requestPermission`: with
  no key configured, a request that sends one is refused too. `multi` runs each sub-action
  through the same handler, so each one needs its own `key` (and `version`).
- An unknown action answers `unsupported action`; parameters are passed as keyword
  arguments, so a wrong or missing one answers Python's TypeError text.
- `updateNoteFields` on the note open in Anki's browser (`show_in_browser`) answers
  success and changes nothing, the trap the add-on documents.
- Origins: a request without an `Origin` header is allowed; one from an origin outside
  `cors_origins` gets HTTP 403 with an empty body, and its `requestPermission` is denied (the
  add-on would ask the user; this fake answers as if they clicked No).

The collection is not thread-safe: every action runs under one re-entrant lock (`multi`
re-enters it). What the add-on does in Anki's GUI (dialogs, media files, sync) is not here;
a request naming media (`audio`, `video`, `picture`) is refused rather than ignored.
"""

from __future__ import annotations

import hashlib
import json
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from anki.collection import Collection
    from anki.notes import Note

__all__ = [
    "API_VERSION",
    "DUPLICATE_ERROR",
    "KEY_ERROR",
    "UNSUPPORTED_ERROR",
    "AnkiConnectActions",
    "FakeAnkiConnect",
]

API_VERSION = 6
KEY_ERROR = "valid api key must be provided"
UNSUPPORTED_ERROR = "unsupported action"
DUPLICATE_ERROR = "cannot create note because it is a duplicate"
EMPTY_ERROR = "cannot create note because it is empty"
UNKNOWN_ERROR = "cannot create note for unknown reason"
NO_CARDS_ERROR = "The field values you have provided would make an empty question on all cards."
MEDIA_KEYS = ("audio", "video", "picture")

# Anki's NoteFieldsCheckResponse states, as the add-on reads them from `note.dupeOrEmpty()`.
_NORMAL, _EMPTY, _DUPLICATE = 0, 1, 2


class ActionError(Exception):
    """An expected refusal; its text is what the client reads in `error`."""


def action(func: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a method of `AnkiConnectActions` as an action named like the method."""
    func.is_action = True  # type: ignore[attr-defined]
    return func


class AnkiConnectActions:
    """The add-on's actions on one open collection. Method names are the action names and
    parameter names are the add-on's, because requests are dispatched as `method(**params)`.
    Call only under `FakeAnkiConnect`'s lock."""

    def __init__(self, col: Collection, *, api_key: str | None, profile: str) -> None:
        self.col = col
        self.api_key = api_key
        self.profile = profile
        self.browser_note: int | None = None  # the note the user is viewing in Anki's browser

    def table(self) -> dict[str, Callable[..., Any]]:
        """action name -> bound method."""
        return {
            name: getattr(self, name)
            for name in dir(type(self))
            if getattr(getattr(type(self), name), "is_action", False)
        }

    # -- lookups ----------------------------------------------------------------------------
    def _model(self, name: str) -> dict[str, Any]:
        model = self.col.models.by_name(name)
        if model is None:
            raise ActionError(f"model was not found: {name}")
        return model

    def _note(self, note_id: int) -> Note:
        from anki.errors import NotFoundError

        try:
            return self.col.get_note(note_id)
        except NotFoundError:
            raise ActionError(f"Note was not found: {note_id}") from None

    def _card_ids(self, note_id: int) -> list[int]:
        return self.col.db.list("select id from cards where nid = ? order by ord", note_id)

    @staticmethod
    def _field_values(note: Note) -> dict[str, dict[str, Any]]:
        return {
            field["name"]: {"value": note.fields[field["ord"]], "order": field["ord"]}
            for field in note.note_type()["flds"]
        }

    # -- misc -------------------------------------------------------------------------------
    @action
    def version(self) -> int:
        return API_VERSION

    @action
    def requestPermission(self, origin: str, allowed: bool) -> dict[str, Any]:
        # `origin` and `allowed` come from the HTTP layer, as in the add-on's web.py.
        if not allowed:
            return {"permission": "denied"}
        return {"permission": "granted", "requireApikey": bool(self.api_key), "version": API_VERSION}

    @action
    def getProfiles(self) -> list[str]:
        return [self.profile]

    @action
    def getActiveProfile(self) -> str:
        return self.profile

    # -- decks ------------------------------------------------------------------------------
    @action
    def deckNames(self) -> list[str]:
        return [d.name for d in self.col.decks.all_names_and_ids()]

    @action
    def deckNamesAndIds(self) -> dict[str, int]:
        return {d.name: int(d.id) for d in self.col.decks.all_names_and_ids()}

    @action
    def createDeck(self, deck: str) -> int:
        # Anki's `decks.id` creates the deck (and its parents) when missing, else returns it.
        return int(self.col.decks.id(deck))

    @action
    def changeDeck(self, cards: list[int], deck: str) -> None:
        self.col.set_deck(cards, self.col.decks.id(deck))

    @action
    def deckNameFromId(self, deckId: int) -> str:
        deck = self.col.decks.get(deckId, default=False)
        if deck is None:
            raise ActionError(f"deck was not found: {deckId}")
        return deck["name"]

    # -- models -----------------------------------------------------------------------------
    @action
    def modelNames(self) -> list[str]:
        return [m.name for m in self.col.models.all_names_and_ids()]

    @action
    def modelNamesAndIds(self) -> dict[str, int]:
        return {m.name: int(m.id) for m in self.col.models.all_names_and_ids()}

    @action
    def modelFieldNames(self, modelName: str) -> list[str]:
        return [field["name"] for field in self._model(modelName)["flds"]]

    @action
    def createModel(
        self,
        modelName: str,
        inOrderFields: list[str],
        cardTemplates: list[dict[str, str]],
        css: str | None = None,
        isCloze: bool = False,
    ) -> dict[str, Any]:
        from anki.consts import MODEL_CLOZE

        if not inOrderFields:
            raise ActionError("Must provide at least one field for inOrderFields")
        if not cardTemplates:
            raise ActionError("Must provide at least one card for cardTemplates")
        if modelName in self.modelNames():
            raise ActionError("Model name already exists")
        models = self.col.models
        model = models.new(modelName)
        if isCloze:
            model["type"] = MODEL_CLOZE
        for name in inOrderFields:
            models.add_field(model, models.new_field(name))
        if css is not None:
            model["css"] = css
        for number, card in enumerate(cardTemplates, start=1):
            template = models.new_template(card.get("Name", f"Card {number}"))
            template["qfmt"] = card["Front"]
            template["afmt"] = card["Back"]
            models.add_template(model, template)
        models.add(model)
        return model

    # -- adding notes -----------------------------------------------------------------------
    def _build_note(self, spec: dict[str, Any]) -> tuple[Note, int]:
        """The unsaved note for an `addNote`-style spec and its deck id, after the add-on's
        empty and duplicate checks (first field only)."""
        from anki.notes import Note

        if any(spec.get(key) for key in MEDIA_KEYS):
            raise ActionError(f"this fake AnkiConnect stores no media ({', '.join(MEDIA_KEYS)})")
        model = self._model(spec["modelName"])
        deck = self.col.decks.by_name(spec["deckName"])
        if deck is None:
            raise ActionError(f"deck was not found: {spec['deckName']}")
        note = Note(self.col, model)
        if "tags" in spec:
            note.tags = spec["tags"]
        for name, value in spec["fields"].items():
            match = next((k for k in note.keys() if k.lower() == name.lower()), None)
            if match is not None:
                note[match] = value
        options = spec.get("options", {})
        allow = _bool_option(options, "allowDuplicate", "allowDuplicate")
        scope = options.get("duplicateScope")
        scope_options = options.get("duplicateScopeOptions", {})
        state = self._duplicate_state(
            note,
            deck["id"],
            scope,
            scope_options.get("deckName"),
            _bool_option(scope_options, "checkChildren", "duplicateScopeOptions.checkChildren"),
            _bool_option(scope_options, "checkAllModels", "duplicateScopeOptions.checkAllModels"),
        )
        if state == _EMPTY:
            raise ActionError(EMPTY_ERROR)
        if state == _DUPLICATE and not allow:
            raise ActionError(DUPLICATE_ERROR)
        if state not in (_NORMAL, _DUPLICATE):
            raise ActionError(UNKNOWN_ERROR)  # e.g. a cloze note type without a cloze
        return note, int(deck["id"])

    def _duplicate_state(
        self,
        note: Note,
        deck_id: int,
        scope: str | None,
        scope_deck: str | None,
        check_children: bool,
        check_all_models: bool,
    ) -> int:
        """0 fine, 1 first field empty, 2 duplicate. The default scope is Anki's own check
        (same note type, whole collection, first field); `deck` and `checkAllModels` compare
        first-field checksums like the add-on does."""
        if scope != "deck" and not check_all_models:
            return int(note.fields_check())
        first = note.fields[0]
        if not first.strip():
            return _EMPTY
        deck_ids: set[int] | None = None
        if scope == "deck":
            if scope_deck is not None:
                other = self.col.decks.by_name(scope_deck)
                if other is None:
                    return _NORMAL  # the add-on: an unknown deck cannot hold a duplicate
                deck_id = other["id"]
            deck_ids = {deck_id}
            if check_children:
                deck_ids |= {int(did) for _, did in self.col.decks.children(deck_id)}
        query, args = "select id from notes where csum = ?", [self._checksum(first)]
        if note.id:
            query, args = query + " and id != ?", [*args, note.id]
        if not check_all_models:
            query, args = query + " and mid = ?", [*args, note.mid]
        for nid in self.col.db.list(query, *args):
            if deck_ids is None:
                return _DUPLICATE
            if deck_ids & set(self.col.db.list("select did from cards where nid = ?", nid)):
                return _DUPLICATE
        return _NORMAL

    def _checksum(self, text: str) -> int:
        """`anki.utils.field_checksum` (what notes.csum holds), computed on this collection's
        backend: the library's helper needs the GUI's global `anki.lang` backend."""
        from anki.collection import StripHtmlMode

        stripped = self.col._backend.strip_html(text=text, mode=StripHtmlMode.PRESERVE_MEDIA_FILENAMES)
        return int(hashlib.sha1(stripped.encode("utf-8")).hexdigest()[:8], 16)

    @action
    def addNote(self, note: dict[str, Any]) -> int:
        built, deck_id = self._build_note(note)
        self.col.add_note(built, deck_id)
        if not built.cards():
            raise ActionError(NO_CARDS_ERROR)
        return int(built.id)

    @action
    def addNotes(self, notes: list[dict[str, Any]]) -> list[int]:
        # Current add-on: all or nothing. Every note is tried, then the added ones are deleted
        # again if any failed, and the error is the Python list of the failures' texts.
        added: list[int] = []
        errors: list[str] = []
        for spec in notes:
            try:
                added.append(self.addNote(spec))
            except Exception as e:  # the add-on collects every failure's text
                errors.append(str(e))
        if errors:
            self.deleteNotes(added)
            raise ActionError(str(errors))
        return added

    @action
    def canAddNotes(self, notes: list[dict[str, Any]]) -> list[bool]:
        return [detail["canAdd"] for detail in self.canAddNotesWithErrorDetail(notes)]

    @action
    def canAddNotesWithErrorDetail(self, notes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        details: list[dict[str, Any]] = []
        for spec in notes:
            try:
                self._build_note(spec)
                details.append({"canAdd": True})
            except Exception as e:  # the add-on reports any failure as False
                details.append({"canAdd": False, "error": str(e)})
        return details

    # -- changing notes ---------------------------------------------------------------------
    @action
    def updateNoteFields(self, note: dict[str, Any]) -> None:
        if any(note.get(key) for key in MEDIA_KEYS):
            raise ActionError(f"this fake AnkiConnect stores no media ({', '.join(MEDIA_KEYS)})")
        existing = self._note(note["id"])
        if existing.id == self.browser_note:
            # The add-on's documented trap: the browser's editor keeps its own copy of the
            # note it shows and saves that, so the update is lost without an error.
            return
        for name, value in note["fields"].items():
            if name in existing:  # exact field names here, unlike addNote
                existing[name] = value
        # Anki leaves a note whose fields did not change alone, `mod` included.
        self.col.update_note(existing, skip_undo_entry=True)

    @action
    def updateNote(self, note: dict[str, Any]) -> None:
        if "fields" not in note and "tags" not in note:
            raise ActionError('Must provide a "fields" or "tags" property.')
        if "fields" in note:
            self.updateNoteFields(note)
        if "tags" in note:
            self.updateNoteTags(note["id"], note["tags"])

    @action
    def updateNoteTags(self, note: int, tags: str | list[str]) -> None:
        if isinstance(tags, str):
            tags = [tags]
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise ActionError("Must provide tags as a list of strings")
        for old in self.getNoteTags(note):
            self.col.tags.bulk_remove([note], old)
        for new in tags:
            self.col.tags.bulk_add([note], new)

    @action
    def getNoteTags(self, note: int) -> list[str]:
        return list(self._note(note).tags)

    @action
    def addTags(self, notes: list[int], tags: str, add: bool = True) -> None:
        # `tags` is one space-separated string, handed to Anki as the add-on does.
        if add:
            self.col.tags.bulk_add(notes, tags)
        else:
            self.col.tags.bulk_remove(notes, tags)

    @action
    def removeTags(self, notes: list[int], tags: str) -> None:
        self.addTags(notes, tags, add=False)

    @action
    def getTags(self) -> list[str]:
        return self.col.tags.all()

    @action
    def deleteNotes(self, notes: list[int]) -> None:
        self.col.remove_notes(notes)

    # -- reading notes and cards ------------------------------------------------------------
    @action
    def findNotes(self, query: str | None = None) -> list[int]:
        return [] if query is None else [int(n) for n in self.col.find_notes(query)]

    @action
    def findCards(self, query: str | None = None) -> list[int]:
        return [] if query is None else [int(c) for c in self.col.find_cards(query)]

    @action
    def notesInfo(self, notes: list[int] | None = None, query: str | None = None) -> list[dict[str, Any]]:
        if notes is None and query is None:
            raise ActionError('Must provide either "notes" or a "query"')
        if query is not None:
            notes = self.findNotes(query)
        infos: list[dict[str, Any]] = []
        for nid in notes or []:
            try:
                note = self._note(nid)
            except ActionError:
                infos.append({})  # the add-on keeps the answer aligned with the request
                continue
            infos.append(
                {
                    "noteId": int(note.id),
                    "profile": self.profile,
                    "tags": list(note.tags),
                    "fields": self._field_values(note),
                    "modelName": note.note_type()["name"],
                    "mod": note.mod,
                    "cards": self._card_ids(note.id),
                }
            )
        return infos

    @action
    def notesModTime(self, notes: list[int]) -> list[dict[str, Any]]:
        infos: list[dict[str, Any]] = []
        for nid in notes:
            try:
                note = self._note(nid)
            except ActionError:
                infos.append({})
                continue
            infos.append({"noteId": int(note.id), "mod": note.mod})
        return infos

    @action
    def cardsInfo(self, cards: list[int]) -> list[dict[str, Any]]:
        from anki.errors import NotFoundError

        infos: list[dict[str, Any]] = []
        for cid in cards:
            try:
                card = self.col.get_card(cid)
            except NotFoundError:
                infos.append({})
                continue
            model = card.note_type()
            # as the add-on does: the scheduler's next states have no public getter
            states = self.col._backend.get_scheduling_states(card.id)
            infos.append(
                {
                    "cardId": int(card.id),
                    "fields": self._field_values(card.note()),
                    "fieldOrder": card.ord,
                    "question": card.question(),
                    "answer": card.answer(),
                    "modelName": model["name"],
                    "ord": card.ord,
                    "deckName": self.deckNameFromId(card.did),
                    "css": model["css"],
                    "factor": card.factor,
                    "interval": card.ivl,
                    "note": int(card.nid),
                    "type": card.type,
                    "queue": card.queue,
                    "due": card.due,
                    "reps": card.reps,
                    "lapses": card.lapses,
                    "left": card.left,
                    "mod": card.mod,
                    "nextReviews": list(self.col.sched.describe_next_states(states)),
                    "flags": card.flags,
                }
            )
        return infos

    @action
    def cardsModTime(self, cards: list[int]) -> list[dict[str, Any]]:
        from anki.errors import NotFoundError

        infos: list[dict[str, Any]] = []
        for cid in cards:
            try:
                card = self.col.get_card(cid)
            except NotFoundError:
                infos.append({})
                continue
            infos.append({"cardId": int(card.id), "mod": card.mod})
        return infos

    # -- packages ---------------------------------------------------------------------------
    @action
    def importPackage(self, path: str) -> bool:
        """The add-on runs `anki.importing.AnkiPackageImporter(col, path).run()`. In anki
        26.09 that name is a deprecated shim over `Collection.import_anki_package` with these
        options (the update rules stay at their default, "if newer"); calling the backend
        directly skips the shim's deprecation print. Anki's working folder is the
        collection's media folder, so a relative path is read from there."""
        from anki.collection import ImportAnkiPackageOptions, ImportAnkiPackageRequest

        package = Path(self.col.media.dir(), path)
        self.col.import_anki_package(
            ImportAnkiPackageRequest(
                package_path=str(package),
                options=ImportAnkiPackageOptions(
                    merge_notetypes=True, with_scheduling=True, with_deck_configs=True
                ),
            )
        )
        return True


def _bool_option(options: dict[str, Any], key: str, label: str) -> bool:
    value = options.get(key, False)
    if type(value) is not bool:
        raise ActionError(f'option parameter "{label}" must be boolean')
    return value


def _schema_error(body: Any) -> str | None:
    """The first line of the error the add-on's request schema gives (jsonschema), or None.
    Schema: an object; `action` a non-empty string (required); `version` an integer;
    `params` an object."""
    if not isinstance(body, dict):
        return f"{body!r} is not of type 'object'"
    if "action" not in body:
        return "'action' is a required property"
    act, version, params = body["action"], body.get("version", 0), body.get("params", {})
    if not isinstance(act, str):
        return f"{act!r} is not of type 'string'"
    if not act:
        return "'' should be non-empty"
    integral = isinstance(version, int) or (isinstance(version, float) and version.is_integer())
    if isinstance(version, bool) or not integral:
        return f"{version!r} is not of type 'integer'"
    if not isinstance(params, dict):
        return f"{params!r} is not of type 'object'"
    return None


class FakeAnkiConnect:
    """AnkiConnect on 127.0.0.1:<free port> over the collection at `collection_path`
    (created when missing; its media folder goes beside it). Use as a context manager, or
    `start()` / `stop()`. `calls` records every handled action (sub-actions of `multi`
    too) and `failures` the traceback of every action that answered an error."""

    def __init__(
        self,
        collection_path: Path,
        *,
        api_key: str | None = None,
        profile: str = "User 1",
        cors_origins: tuple[str, ...] = ("http://localhost",),
    ) -> None:
        self.collection_path = Path(collection_path)
        self.api_key = api_key
        self.profile = profile
        self.cors_origins = cors_origins
        self.calls: list[dict[str, Any]] = []
        self.failures: list[str] = []
        self._lock = threading.RLock()
        self._col: Collection | None = None
        self._api: AnkiConnectActions | None = None
        self._actions: dict[str, Callable[..., Any]] = {}
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> FakeAnkiConnect:
        from anki.collection import Collection

        self.collection_path.parent.mkdir(parents=True, exist_ok=True)
        self._col = Collection(str(self.collection_path))
        self._api = AnkiConnectActions(self._col, api_key=self.api_key, profile=self.profile)
        self._actions = self._api.table()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.fake = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="fake-ankiconnect", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        with self._lock:
            if self._col is not None:
                self._col.close()
                self._col = None

    def __enter__(self) -> FakeAnkiConnect:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._httpd is not None, "the server is not running"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @contextmanager
    def collection(self) -> Iterator[Collection]:
        """The server's collection, for a test to set up or inspect, under the server's lock."""
        with self._lock:
            assert self._col is not None, "the server is not running"
            yield self._col

    def show_in_browser(self, note_id: int | None) -> None:
        """Pretend the user has `note_id` open in Anki's browser (None: nothing open): while
        it is, `updateNoteFields` on it answers success and changes nothing, as in Anki."""
        with self._lock:
            assert self._api is not None, "the server is not running"
            self._api.browser_note = note_id

    # -- the add-on's handler ---------------------------------------------------------------
    def handle(self, request: dict[str, Any]) -> Any:
        """One request object -> its reply object, as the add-on's `AnkiConnect.handler`."""
        name = request.get("action", "")
        version = request.get("version", 4)
        params = request.get("params", {})
        with self._lock:
            self.calls.append({"action": name, "params": params})
            try:
                if request.get("key") != self.api_key and name != "requestPermission":
                    raise ActionError(KEY_ERROR)
                method = self._actions.get(name) if name != "multi" else self._multi
                if method is None:
                    raise ActionError(UNSUPPORTED_ERROR)
                result = method(**params)
                return result if version <= 4 else {"result": result, "error": None}
            except Exception as e:  # the protocol: every failure is an error string
                self.failures.append(traceback.format_exc())
                return {"result": None, "error": str(e)}

    def _multi(self, actions: list[dict[str, Any]]) -> list[Any]:
        return [self.handle(sub) for sub in actions]

    def allow_origin(self, origin: str | None) -> tuple[bool, str]:
        """(allowed, Access-Control-Allow-Origin), as the add-on's `allowOrigin`."""
        if "*" in self.cors_origins:
            return True, "*"
        if origin is None:
            return True, "http://localhost"
        if origin in self.cors_origins:
            return True, origin
        local_ok = "http://localhost" in self.cors_origins and (
            origin in ("http://127.0.0.1", "https://127.0.0.1")
            or origin.startswith(("http://127.0.0.1:", "chrome-extension://", "moz-extension://"))
            or origin.startswith("safari-web-extension://")
        )
        return (True, origin) if local_ok else (False, "http://localhost")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the stdlib's 5 resets connections when a test sends many at once


class _Handler(BaseHTTPRequestHandler):
    """HTTP for `FakeAnkiConnect`: the add-on answers every method and path the same way."""

    server_version = "FakeAnkiConnect/1"

    def do_POST(self) -> None:
        fake: FakeAnkiConnect = self.server.fake  # type: ignore[attr-defined]
        origin = self.headers.get("Origin")
        allowed, cors = fake.allow_origin(origin)
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw.decode("utf-8"))
            problem = _schema_error(body)
        except ValueError as e:
            body, problem = None, str(e)
        if problem is not None:
            if not allowed:
                return self._send(403, cors, None)
            if not raw:
                return self._send(200, cors, f"AnkiConnect v.{API_VERSION}".encode())
            return self._send(200, cors, json.dumps({"result": None, "error": problem}).encode())
        if body["action"] == "requestPermission":
            body["params"] = {**body.get("params", {}), "allowed": allowed, "origin": origin or ""}
            if not allowed:
                cors = origin or cors
        elif not allowed:
            return self._send(403, cors, None)
        self._send(200, cors, json.dumps(fake.handle(body)).encode())

    do_GET = do_PUT = do_POST

    def do_OPTIONS(self) -> None:
        _, cors = self.server.fake.allow_origin(self.headers.get("Origin"))  # type: ignore[attr-defined]
        private = self.headers.get("Access-Control-Request-Private-Network") == "true"
        self._send(200, cors, b"", private_network=private)

    def _send(self, status: int, cors: str, body: bytes | None, private_network: bool = False) -> None:
        self.send_response(status)
        self.send_header("Access-Control-Allow-Origin", cors)
        self.send_header("Access-Control-Allow-Headers", "*")
        if private_network:
            self.send_header("Access-Control-Allow-Private-Network", "true")
        if body is not None:
            self.send_header("Content-Type", "text/json")
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass
