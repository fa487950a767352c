"""`mksap export NAME`: one subcommand per registered exporter, with options made from the
exporter's own options model, so a third-party exporter gets its subcommand and `--help` too.

The subcommands are made when asked for (`ExportGroup`), from the invocation's registry;
`exporter_command` is also what a plugin's `register_commands` hook uses to put an exporter
at the top level (the review page's `mksap review`).
"""

from __future__ import annotations

import inspect
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from typer.core import TyperGroup

from mksap.cli.options import (
    CacheDir,
    Data,
    InPlace,
    JsonOut,
    Out,
    Targets,
    envelope,
    err,
    registry_of,
    settings_from_flags,
)
from mksap.contracts.errors import PluginError

if TYPE_CHECKING:
    from pydantic.fields import FieldInfo

    from mksap.contracts.exporter import Exporter
    from mksap.export.run import ExportReport

HELP = (
    "Write the built statements with an exporter (anki, csv, jsonl, review, or a plugin's).\n\n"
    "Each export is a task in the build's dependency DB: exporting again when nothing changed "
    "says 'up to date' and rewrites nothing (--force rewrites). Defaults for an exporter's "
    "options can go in [plugins.<name>] of mksap.toml."
)
Output = Annotated[
    Path | None,
    typer.Option(
        "-o", "--output", help="File to write (default: the exporter's, e.g. mksap.apkg).", show_default=False
    ),
]
Force = Annotated[bool, typer.Option("--force", help="Rewrite the file even if it is up to date.")]
#: Parameters every export command has; an exporter option may not take these names.
SHARED = ("ctx", "targets", "output", "force", "data", "out", "cache_dir", "in_place", "as_json")


class ExportGroup(TyperGroup):
    """The `export` group: its subcommands are the registered exporters."""

    def list_commands(self, ctx: Any) -> list[str]:
        return sorted(registry_of(ctx).names("exporter"))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        registry = registry_of(ctx)
        if cmd_name not in registry.names("exporter"):
            return None
        return typer.main.get_command(_single(exporter_command(registry.get("exporter", cmd_name))))


def export_app() -> typer.Typer:
    return typer.Typer(cls=ExportGroup, help=HELP, no_args_is_help=True)


def _single(command: Any) -> typer.Typer:
    app = typer.Typer(add_completion=False, rich_markup_mode=None, pretty_exceptions_show_locals=False)
    app.command()(command)
    return app


def _option(name: str, field: FieldInfo) -> tuple[Any, Any] | None:
    """(annotation, default) of the CLI option for one options-model field; None when the
    field has no command-line form (structured values: config only)."""
    flag = "--" + name.replace("_", "-")
    annotation = field.annotation
    help_text = (field.description or name.replace("_", " ")).rstrip(".") + "."
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is Literal or (args and typing.get_origin(args[0]) is Literal):
        choices = typing.get_args(annotation if typing.get_origin(annotation) is Literal else args[0])
        help_text += f" One of: {', '.join(map(str, choices))}."
        base: Any = str
    elif annotation is bool:
        return Annotated[bool | None, typer.Option(f"{flag}/--no-{flag[2:]}", help=help_text, show_default=False)], None
    elif annotation in (str, int, float, Path) or (len(args) == 1 and args[0] in (str, int, float, Path)):
        base = annotation if annotation in (str, int, float, Path) else args[0]
    else:
        return None
    if field.default is not None and not callable(field.default):
        help_text += f" [default: {field.default}]"
    return Annotated[base | None, typer.Option(flag, help=help_text, show_default=False)], None


def exporter_command(exporter: type[Exporter[Any]]) -> Any:
    """A typer command function for `exporter`: its name, docstring and options."""
    fields = exporter.options_model.model_fields
    clash = sorted(set(fields) & set(SHARED))
    if clash:
        raise PluginError(f"exporter '{exporter.name}': option name(s) {', '.join(clash)} are taken by mksap")

    def command(**values: Any) -> None:
        ctx = values.pop("ctx")
        shared = {k: values.pop(k) for k in SHARED if k in values}
        given = {k: v for k, v in values.items() if v is not None}
        _export(ctx, exporter.name, given, **shared)

    params = [
        inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context),
        inspect.Parameter("targets", inspect.Parameter.KEYWORD_ONLY, annotation=Targets, default=None),
        inspect.Parameter("output", inspect.Parameter.KEYWORD_ONLY, annotation=Output, default=None),
    ]
    for name, field in fields.items():
        option = _option(name, field)
        if option is not None:
            params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=option[0], default=None))
    for name, annotation, default in (
        ("force", Force, False),
        ("data", Data, None),
        ("out", Out, None),
        ("cache_dir", CacheDir, None),
        ("in_place", InPlace, None),
        ("as_json", JsonOut, False),
    ):
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default))
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__name__ = exporter.name
    command.__doc__ = inspect.getdoc(exporter)
    return command


def _export(
    ctx: typer.Context,
    name: str,
    options: dict[str, Any],
    *,
    targets: list[str] | None,
    output: Path | None,
    force: bool,
    as_json: bool,
    **locations: Any,
) -> None:
    from mksap.export.run import run_export

    report = run_export(
        settings_from_flags(**locations),
        name,
        list(targets or []),
        options,
        output,
        force=force,
        notice=lambda m: err(f"mksap: {m}"),
        registry=registry_of(ctx),
    )
    if as_json:
        print(envelope("export", report.model_dump(mode="json")))
        return
    print(render(report))


def render(report: ExportReport) -> str:
    """The report as a few lines of text."""
    if report.up_to_date:
        unchanged = f"{report.questions} questions unchanged; --force rewrites it"
        return f"{report.path} is up to date ({unchanged})"
    written = report.written
    assert written is not None
    left_out = ", ".join(f"{n} {why}" for why, n in written.skipped.items() if n)
    lines = [
        f"wrote {report.path}: {written.items} {report.unit} from {report.questions} questions"
        + (f" (left out: {left_out})" if left_out else "")
    ]
    if report.shared:
        lines.append(
            f"{report.shared} copies of statements of tables shared by several questions written once, "
            "naming every question that uses the table"
        )
    if report.guids_file:
        gone = len(report.disappeared)
        lines.append(
            f"{gone} note(s) of the previous export are gone (listed in {report.guids_file})"
            if gone
            else "no note of the previous export is gone"
        )
    if report.carried:
        lines.append(
            f"{len(report.carried)} note(s) keep their GUID under their statement's new id "
            f"(listed under 'carried' in {report.guids_file})"
        )
    if report.merged:
        lines.append(
            f"{len(report.merged)} note(s) of the previous export are now part of the note of another question "
            "that uses the same table; Anki keeps those old copies, with their own review history, until you "
            f"delete them (listed under 'merged_into' in {report.guids_file})"
            + (f"; find them in Anki's browser with: {report.merged_search}" if report.merged_search else "")
        )
    return "\n".join(lines)
