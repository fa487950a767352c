"""`mksap batches` (list ours) and `mksap batches cancel` (cancel ours still processing).

Everything heavy is imported inside the commands, so importing `mksap.cli` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from mksap.cli.options import CacheDir, JsonOut
from mksap.cli.options import envelope as _envelope
from mksap.cli.options import err as _err
from mksap.cli.options import settings_from_flags as _settings

if TYPE_CHECKING:
    from mksap.batch.listing import BatchListing

batches_app = typer.Typer(
    help="This build's Message Batches (`mksap run --batch`): list them, or cancel ours still processing.\n\n"
    "They are recorded under <cache-dir>/batches/; `mksap run --batch` resumes them after an interrupt.",
    invoke_without_command=True,
)

Ids = Annotated[list[str] | None, typer.Argument(help="Batch ids (msgbatch_...); none = all ours in progress.")]


@batches_app.callback()
def batches(ctx: typer.Context, cache_dir: CacheDir = None, as_json: JsonOut = False) -> None:
    """List our batches: id, status, request counts, round, created time."""
    if ctx.invoked_subcommand is not None:
        return
    _show(None, cache_dir, as_json)


@batches_app.command("cancel")
def cancel(ids: Ids = None, cache_dir: CacheDir = None, as_json: JsonOut = False) -> None:
    """Cancel our batches that are still processing.

    A run watching them stops; the next `mksap run --batch` fetches what was already answered
    and submits the rest again."""
    _show(list(ids or []), cache_dir, as_json)


def _show(cancel_ids: list[str] | None, cache_dir: object, as_json: bool) -> None:
    from mksap.batch.listing import batch_listing

    listing = batch_listing(_settings(cache_dir=cache_dir), cancel=cancel_ids)
    if as_json:
        print(_envelope("batches", listing.model_dump(mode="json")))
        return
    print(render(listing))
    if listing.note:
        _err(f"mksap: {listing.note}")


def render(listing: BatchListing) -> str:
    """A table of batches, then what was canceled."""
    if not listing.batches:
        return "no batches (`mksap run --batch` submits them)"
    lines = [
        f"{'id':<34} {'status':<12} {'requests':>8} {'ok':>6} {'errored':>7} {'expired':>7} "
        f"{'canceled':>8} {'round':>5}  created"
    ]
    for b in listing.batches:
        c = b.counts
        lines.append(
            f"{b.id:<34} {b.status:<12} {b.requests:>8} {c.succeeded:>6} {c.errored:>7} {c.expired:>7} "
            f"{c.canceled:>8} {b.round:>5}  {b.created_at}"
        )
    if listing.canceled:
        lines.append(f"cancel requested: {', '.join(listing.canceled)}")
    if listing.waiting_answers:
        lines.append(f"{listing.waiting_answers} fetched answer(s) wait for `mksap run --batch`")
    return "\n".join(lines)
