"""What `mksap sync anki` reports, as models (`--json`) and as a few lines of text."""

from __future__ import annotations

from pydantic import BaseModel

from mksap_plugins.sync.notes import GONE_TAG

SHOWN = 10  # notes listed per kind of change in the text report


class NoteLine(BaseModel):
    """One note in a report: its stable id, Anki note id, first line of its text, and why."""

    stable_id: str
    note_id: int | None = None
    text: str = ""
    detail: str = ""
    before: str = ""  # an updated note's text before, when it changed


class SyncReport(BaseModel):
    """The result of `mksap sync anki` (with `dry_run`: what it would do; nothing changed)."""

    url: str
    profile: str
    deck: str
    dry_run: bool
    questions: int
    notes: int = 0
    left_out: dict[str, int] = {}
    added: list[NoteLine] = []
    updated: list[NoteLine] = []
    skipped_edited: list[NoteLine] = []
    gone: list[NoteLine] = []
    deleted_in_anki: list[NoteLine] = []
    failed: list[NoteLine] = []
    unchanged: int = 0
    created_decks: list[str] = []
    notices: list[str] = []
    snapshot: str | None = None
    seconds: float = 0.0

    @property
    def changes(self) -> int:
        return len(self.added) + len(self.updated) + len(self.gone)


class RollbackReport(BaseModel):
    """The result of `mksap sync anki --rollback` (with `dry_run`: what it would restore)."""

    url: str
    profile: str
    dry_run: bool
    snapshot: str | None = None
    synced_at: str | None = None
    deleted: list[NoteLine] = []
    restored: list[NoteLine] = []
    ungone: list[NoteLine] = []
    kept_edited: list[NoteLine] = []
    missing: list[NoteLine] = []
    seconds: float = 0.0


def _section(title: str, mark: str, lines: list[NoteLine]) -> list[str]:
    if not lines:
        return []
    out = [f"{title} ({len(lines)}):"]
    for line in lines[:SHOWN]:
        out.append(f"  {mark} {line.stable_id}  {line.text}" + (f"  [{line.detail}]" if line.detail else ""))
        if line.before:
            out.append(f"    was: {line.before}")
    if len(lines) > SHOWN:
        out.append(f"  … and {len(lines) - SHOWN} more (--json lists them all)")
    return out


def render_sync(report: SyncReport) -> str:
    left_out = ", ".join(f"{n} {why}" for why, n in report.left_out.items() if n)
    lines = [
        f"Anki profile '{report.profile}' at {report.url}: {report.notes} mksap notes from "
        f"{report.questions} questions" + (f" (left out: {left_out})" if left_out else "")
    ]
    lines += [f"note: {n}" for n in report.notices]
    if report.created_decks:
        lines.append(f"created deck(s): {', '.join(report.created_decks)}")
    lines += _section("added", "+", report.added)
    lines += _section("updated", "~", report.updated)
    lines += _section("skipped, edited in Anki since the last sync", "!", report.skipped_edited)
    lines += _section(f"gone from mksap, tagged {GONE_TAG}", "-", report.gone)
    lines += _section("failed", "x", report.failed)
    if report.deleted_in_anki:
        lines.append(f"{len(report.deleted_in_anki)} note(s) deleted in Anki since the last sync: not added again")
    counts = (
        f"{len(report.added)} added, {len(report.updated)} updated, {len(report.skipped_edited)} skipped "
        f"(edited in Anki), {len(report.gone)} tagged gone, {report.unchanged} unchanged"
    )
    if report.dry_run:
        lines.append(f"dry run, nothing changed; a sync would make: {counts}")
    elif report.changes == 0 and not report.failed:
        lines.append(f"nothing to sync: Anki is up to date ({counts}; {report.seconds:.1f}s)")
    else:
        lines.append(f"synced: {counts} in {report.seconds:.1f}s")
        if report.snapshot:
            lines.append(f"snapshot {report.snapshot}: `mksap sync anki --rollback` undoes this sync")
    return "\n".join(lines)


def render_rollback(report: RollbackReport) -> str:
    if report.snapshot is None:
        return f"nothing to roll back: no sync to Anki profile '{report.profile}' is left to undo"
    verb = "would roll back" if report.dry_run else "rolled back"
    lines = [f"{verb} the sync of {report.synced_at} to Anki profile '{report.profile}' ({report.snapshot})"]
    lines += _section("deleted (added by that sync)", "-", report.deleted)
    lines += _section("fields and tags put back", "~", report.restored)
    lines += _section(f"{GONE_TAG} removed", "+", report.ungone)
    lines += _section("left alone, edited in Anki since that sync", "!", report.kept_edited)
    lines += _section("not in Anki any more", "?", report.missing)
    lines.append(
        f"{'would restore' if report.dry_run else 'restored'}: {len(report.deleted)} deleted, "
        f"{len(report.restored)} put back, {len(report.ungone)} un-gone, {len(report.kept_edited)} left alone"
        + (" (dry run, nothing changed)" if report.dry_run else f" in {report.seconds:.1f}s")
    )
    return "\n".join(lines)
