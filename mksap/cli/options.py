"""What every mksap command shares: the option names scripts rely on, settings from flags,
the invocation's plugin registry, and how results, tables and messages are printed."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from mksap.contracts.registry import Registry
    from mksap.settings import Settings

# -- shared options: every command that reads the bank takes the same names ----------------
Data = Annotated[Path | None, typer.Option("--data", help="Question bank folder (env MKSAP_DATA).", show_default=False)]
Out = Annotated[Path | None, typer.Option("--out", help="Output tree (env MKSAP_OUT).", show_default=False)]
CacheDir = Annotated[
    Path | None,
    typer.Option("--cache-dir", help="Build state: artifacts, doit DB (env MKSAP_CACHE_DIR).", show_default=False),
]
InPlace = Annotated[
    bool | None,
    typer.Option("--in-place/--no-in-place", help="Write statements into the input files.", show_default=False),
]
ProviderOpt = Annotated[
    str | None,
    typer.Option("--provider", help="Provider or fallback chain 'a,b' (env MKSAP_PROVIDER).", show_default=False),
]
Targets = Annotated[list[str] | None, typer.Argument(help="System codes (cv en) and/or question ids; none = all.")]
JsonOut = Annotated[bool, typer.Option("--json", help="Machine-readable output (a versioned envelope).")]


@dataclass
class Invocation:
    """What one `mksap` invocation shares between its commands (click's `ctx.obj`)."""

    registry: Registry


def registry_of(ctx: typer.Context) -> Registry:
    """The invocation's plugin registry (loaded once by `main`)."""
    obj = ctx.find_root().obj
    if isinstance(obj, Invocation):
        return obj.registry
    from mksap.contracts.registry import Registry

    return Registry.load()


def settings_from_flags(**flags: Any) -> Settings:
    from mksap.settings import load_settings

    return load_settings(flags).settings


def err(message: str) -> None:
    print(message, file=sys.stderr)


def envelope(kind: str, data: Any) -> str:
    return json.dumps({"mksap": 1, "kind": kind, "data": data}, indent=2, ensure_ascii=False)


def print_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, right: Iterable[str] = ()) -> None:
    """A plain, borderless table on stdout (rich), as wide as its content when not on a terminal."""
    from rich.console import Console
    from rich.table import Table

    aligned = set(right)
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for name in columns:
        table.add_column(name, justify="right" if name in aligned else "left", overflow="fold")
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    width = None if sys.stdout.isatty() else max(shutil.get_terminal_size((200, 24)).columns, 200)
    Console(file=sys.stdout, width=width, highlight=False, markup=False, emoji=False).print(table)
