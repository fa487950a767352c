"""What every mksap command shares: the option names scripts rely on, settings from flags,
and how results and messages are printed. Imported by `mksap.cli` and its sub-command modules.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

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


def settings_from_flags(**flags: Any) -> Any:
    from mksap.settings import load_settings

    return load_settings(flags).settings


def err(message: str) -> None:
    print(message, file=sys.stderr)


def envelope(kind: str, data: Any) -> str:
    return json.dumps({"mksap": 1, "kind": kind, "data": data}, indent=2, ensure_ascii=False)
