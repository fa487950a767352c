"""`mksap cache stats|clear|prune`: the LLM response cache."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from mksap.cli.options import JsonOut, envelope, print_table, settings_from_flags

if TYPE_CHECKING:
    from mksap.llm.cache import ResponseCache

cache_app = typer.Typer(help="The LLM response cache: stats, clear, prune.", no_args_is_help=True)


def _cache() -> ResponseCache:
    from mksap.llm.cache import ResponseCache

    return ResponseCache(settings_from_flags().llm_cache_dir)


@cache_app.command("stats")
def cache_stats(as_json: JsonOut = False) -> None:
    """Entries, size on disk, and hits/misses of the last run."""
    stats = _cache().stats()
    if as_json:
        print(envelope("cache-stats", stats.model_dump()))
        return
    last = stats.last_run
    rows = [
        ("location", stats.location),
        ("entries", stats.entries),
        ("size", f"{stats.size_bytes / 1e6:.1f} MB"),
        ("last run", f"{last.get('hits', 0)} hits, {last.get('misses', 0)} misses"),
    ]
    print_table(("cache", ""), rows)


@cache_app.command("clear")
def cache_clear() -> None:
    """Delete every cached answer (they will be paid for again)."""
    print(f"removed {_cache().clear()} entries")


@cache_app.command("prune")
def cache_prune(
    older_than: Annotated[str, typer.Option("--older-than", help="Age like 30d, 12h, 2w.")] = "30d",
) -> None:
    """Delete answers not used for longer than --older-than."""
    from mksap.llm.cache import parse_age

    age = parse_age(older_than)
    print(f"removed {_cache().prune(age)} entries unused for {older_than}")
