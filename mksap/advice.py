"""The commands a message advises, written so that they work when pasted: with the locations
(`--data`, `--out`, `--cache-dir`, `--in-place`) this invocation was given, where a bare
command would not find them on its own in the environment and config files."""

from __future__ import annotations

import shlex

from mksap.contracts.errors import MksapError
from mksap.settings import Settings, load_settings

_LOCATIONS = (("data", "--data"), ("out", "--out"), ("cache_dir", "--cache-dir"))


def advised(settings: Settings, *words: str) -> str:
    """`mksap <words>` plus the location flags that differ from what a bare `mksap` resolves."""
    try:
        plain: Settings | None = load_settings().settings
    except MksapError:  # the environment alone does not even load: give every location
        plain = None
    flags: list[str] = []
    for name, flag in _LOCATIONS:
        value = getattr(settings, name)
        if plain is None or getattr(plain, name) != value:
            flags += [flag, str(value)]
    if settings.in_place and not (plain is not None and plain.in_place):
        flags.append("--in-place")
    return shlex.join(["mksap", *words, *flags])
