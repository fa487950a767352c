"""`mksap show` (one built question), `mksap plugins` and `mksap config`: read-only views."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer
from pydantic import SecretStr

from mksap.cli.options import (
    CacheDir,
    Data,
    InPlace,
    JsonOut,
    Out,
    ProviderOpt,
    envelope,
    print_table,
    registry_of,
    settings_from_flags,
)


def show(
    qid: Annotated[str, typer.Argument(help="Question id, e.g. cvmcq24001.")],
    data: Data = None,
    out: Out = None,
    cache_dir: CacheDir = None,
    in_place: InPlace = None,
    as_json: JsonOut = False,
) -> None:
    """A question's statements, grouped by source, cloze candidates in [brackets]."""
    from mksap.reports.show import load_output, render

    doc = load_output(settings_from_flags(data=data, out=out, cache_dir=cache_dir, in_place=in_place), qid)
    if as_json:
        print(envelope("question", doc.output_fields()))
        return
    print(render(doc))


def plugins(ctx: typer.Context, as_json: JsonOut = False) -> None:
    """Every installed provider, stage and exporter plugin, with the package it comes from."""
    registry = registry_of(ctx)
    rows = [{"kind": e.kind, "name": e.name, "package": e.package, "module": e.module} for e in registry.entries]
    failed = [{"source": f.source, "package": f.package, "error": f.error} for f in registry.failures]
    if as_json:
        print(envelope("plugins", {"plugins": rows, "failed": failed}))
        return
    print_table(("kind", "name", "package", "module"), [tuple(r.values()) for r in rows])
    for f in failed:
        print(f"FAILED {f['source']} ({f['package']}): {f['error']}")


def _shown(value: Any, secret: bool = False) -> str:
    """A setting as `config` prints it: secrets only as set / not set."""
    if secret or isinstance(value, SecretStr):
        return "set" if isinstance(value, SecretStr) and value.get_secret_value() else "not set"
    return "" if value is None else str(value)


def config(
    ctx: typer.Context,
    data: Data = None,
    out: Out = None,
    cache_dir: CacheDir = None,
    in_place: InPlace = None,
    provider: ProviderOpt = None,
    as_json: JsonOut = False,
) -> None:
    """Each effective setting and where it came from (flag, env, mksap.toml, user config,
    default), then every plugin's own options (`[plugins.<name>]`, `MKSAP_<PLUGIN>_<OPTION>`)."""
    from mksap.settings import Settings, load_settings, user_config_file

    flags = dict(data=data, out=out, cache_dir=cache_dir, in_place=in_place, provider=provider)
    resolved = load_settings(flags)
    settings = resolved.settings
    rows = []
    for name, field in Settings.model_fields.items():
        value = _shown(getattr(settings, name))
        rows.append({"name": name, "value": value, "source": resolved.sources[name], "help": field.description})
    for plugin, model in registry_of(ctx).options_models():
        options, sources = settings.plugin_options_with_sources(plugin, model)
        for name, field in model.model_fields.items():
            rows.append(
                {
                    "name": f"plugins.{plugin}.{name}",
                    "value": _shown(getattr(options, name), secret="SecretStr" in str(field.annotation)),
                    "source": sources[name],
                    "help": field.description,
                }
            )
    if as_json:
        print(envelope("config", rows))
        return
    print_table(("setting", "value", "source"), [(r["name"], r["value"], r["source"]) for r in rows])
    print(f"(user config file: {user_config_file(os.environ)})")
