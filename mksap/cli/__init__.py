"""The command line. Commands parse options, call one core function, and render its result.

Importing this package loads no plugin and touches no disk. `main()` loads the plugin
registry once, builds the app (built-in commands, then those plugins register), and is the one
place where exceptions become messages and exit codes (`mksap.contracts.errors.exit_code_for`).
"""

from __future__ import annotations

import sys

import typer

from mksap.cli.batches import batches_app
from mksap.cli.build import run, status
from mksap.cli.cache import cache_app
from mksap.cli.decisions import decisions_app
from mksap.cli.export import export_app
from mksap.cli.inspect import config, plugins, show
from mksap.cli.options import Invocation, err
from mksap.cli.reports import doctor, validate
from mksap.contracts.errors import ExitCode, MksapError, exit_code_for

HELP = (
    "Turn an MKSAP question bank into atomic flashcard statements with cloze candidates.\n\n"
    "Typical use: `mksap run` (build every stale question), `mksap run cv` (one system), "
    "`mksap run cvmcq24001 --force` (rebuild one question), `mksap status`, `mksap show QID`, "
    "`mksap export anki`. Add --traceback to any command to see the full traceback of an error."
)


def make_app() -> typer.Typer:
    """The app with mksap's own commands (plugins add theirs in `main`)."""
    app = typer.Typer(
        name="mksap",
        help=HELP,
        no_args_is_help=True,
        pretty_exceptions_show_locals=False,  # API keys live in locals
        rich_markup_mode=None,  # help text is plain: "[brackets]" must not become markup
        add_completion=False,
    )
    for command in (run, status, show, plugins, config, validate, doctor):
        app.command()(command)
    app.add_typer(export_app(), name="export")
    app.add_typer(cache_app, name="cache")
    app.add_typer(batches_app, name="batches")
    app.add_typer(decisions_app, name="decisions")
    return app


def main(argv: list[str] | None = None) -> int:
    """Entry point: the one place where exceptions become messages and exit codes."""
    from mksap.contracts.registry import Registry

    args = list(sys.argv[1:] if argv is None else argv)
    traceback = "--traceback" in args
    if traceback:
        args.remove("--traceback")
    try:
        registry = Registry.load()
        app = make_app()
        taken = {c.name or c.callback.__name__ for c in app.registered_commands if c.callback}
        registry.add_commands(app, taken | {g.name or "" for g in app.registered_groups})
        command = typer.main.get_command(app)
        # standalone: typer prints a usage error itself and exits 2 through SystemExit
        command.main(args=args, prog_name="mksap", standalone_mode=True, obj=Invocation(registry))
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (ExitCode.OK if e.code is None else ExitCode.ERROR)
    except MksapError as e:
        if traceback:
            raise
        err(f"mksap: error: {e}")
        return exit_code_for(e)
    except Exception as e:  # a bug: keep its traceback
        import traceback as tb

        tb.print_exc()
        err(f"mksap: internal error ({type(e).__name__}); please report it with the traceback above")
        return exit_code_for(e)
    return ExitCode.OK


def entry() -> None:
    sys.exit(main())
