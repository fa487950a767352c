"""The hooks a plugin module may define. A plugin is a module named by an entry point in the
`mksap` group (or listed in `MKSAP_PLUGINS`); mksap calls each hook it defines once per run.
Each plugin class may carry its own options model (`options_model`), read from the
`[plugins.<name>]` table of the config and `MKSAP_<NAME>_<OPTION>` (see `mksap.settings`).

A module attribute named `register_*` that is not one of these hooks is an error, so a misspelt
hook fails loudly instead of being ignored.
"""

from collections.abc import Callable
from typing import Any

Register = Callable[[Any], None]


def register_stages(register: Register) -> None:
    """Called once when the registry is built. Call `register(StageSubclass)` for each stage.

    Stages are ordered by their `needs`; a stage name must be unique across all plugins.
    """


def register_providers(register: Register) -> None:
    """Called once when the registry is built. Call `register(ProviderSubclass)` for each
    provider; the class's `name` is what `--provider` accepts.
    """


def register_exporters(register: Register) -> None:
    """Called once when the registry is built. Call `register(ExporterSubclass)` for each
    exporter; its `name` becomes a subcommand of `mksap export`.
    """


def register_commands(app: Any) -> None:
    """Called once per `mksap` invocation, after the built-in commands exist. Add commands to
    `app` (a `typer.Typer`): `@app.command()`, or `app.add_typer(sub_app, name=...)`. A name
    already taken by mksap or another plugin is an error, reported like a failed plugin.

    Options of the commands: define `command_options()` in the same module, returning
    {plugin name: its `PluginOptions` model} (read from `[plugins.<name>]`); `mksap config`
    shows them with their sources. It is called only by `mksap config`, so it may import.
    """


HOOKS: dict[str, Callable[..., None]] = {
    "register_stages": register_stages,
    "register_providers": register_providers,
    "register_exporters": register_exporters,
    "register_commands": register_commands,
}
