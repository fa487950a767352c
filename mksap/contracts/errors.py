"""The one hierarchy of expected errors, and the exit codes they end in. Each message names the fix.

The CLI turns these into a one-line message and an exit code (`exit_code_for`); anything else
is a bug and keeps its traceback. Inside a build, a stage's error decides how its task ends:
`InputError` (bad input) and `StageError` (the model answered unusably) fail the task,
`ProviderError` (the model could not be called) is a task error; either way only that
question fails and every other one goes on.
"""

from enum import IntEnum


class ExitCode(IntEnum):
    """Every exit status of `mksap` (and of `doit` in this repository), documented in the README."""

    OK = 0
    FAILED = 1  # some questions (or checks) failed; everything else was done
    ERROR = 2  # an expected error stopped the command: bad option, setting, input or state
    BUG = 3  # an unexpected exception (a bug): its traceback is printed
    COST_CAP = 4  # the run stopped at --max-cost: every answer paid for is cached; run again to go on
    LOCKED = 75  # another build holds the build state (sysexits EX_TEMPFAIL)
    INTERRUPTED = 130  # Ctrl-C: finished work is recorded
    TERMINATED = 143  # SIGTERM: finished work is recorded


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so doit saves the tasks that finished."""


class MksapError(Exception):
    """An expected failure with a message a user can act on."""

    exit_code: ExitCode = ExitCode.ERROR


class ConfigError(MksapError):
    """A setting is missing, malformed or points somewhere unusable."""


class PluginError(MksapError):
    """A plugin failed to load, or a name does not match any registered plugin."""


class InputError(MksapError):
    """A question file or table cannot be used as input (one question, not the run)."""


class LimitError(InputError):
    """An input is over one of the per-question limits (the `max_*` settings): it fails alone,
    saying which limit and how to raise it."""

    def __init__(self, subject: str, size: str, setting: str, limit: int) -> None:
        super().__init__(
            f"{subject} is {size}, over the {setting} limit of {limit:,}; if it is genuine, raise it with "
            f"MKSAP_{setting.upper()}=N (or `{setting} = N` in mksap.toml)"
        )
        self.setting = setting


class StageError(MksapError):
    """A stage ran but produced nothing usable (the model answered badly)."""


class AnswerError(StageError):
    """The model answered, but not with JSON valid for the schema (or it was cut short).

    Never cached; the stage gets one repair round with this message before failing.
    """

    def __init__(self, message: str, raw_text: str = "", usage: object | None = None) -> None:
        super().__init__(message)
        self.raw_text = raw_text
        self.usage = usage  # the `Usage` the provider billed for the unusable answer, if known


class ProviderError(MksapError):
    """We could not get an answer from a model provider (the stage could not run)."""


class ProviderStopError(ProviderError):
    """A provider failure that retrying will not fix: auth, quota or spend limit.

    The runtime stops sending work to that provider for the rest of the run.
    """


class RunStopError(ProviderError):
    """The run sends no more requests: no provider is left, or answers can no longer be cached.
    Every later request fails at once with the same reason, which the summary says once."""

    exit_code = ExitCode.ERROR


class CostCapError(ProviderError):
    """A request was not sent: its estimated cost would take the run past `max_cost`.

    Not a `ProviderStopError`: a fallback provider must not take over the work either.
    """

    exit_code = ExitCode.COST_CAP


class CacheError(MksapError):
    """The LLM response cache is unusable or unsafe."""


class BuildLockedError(MksapError):
    """Another run holds the build state."""

    exit_code = ExitCode.LOCKED


class ExportError(MksapError):
    """An export could not be written."""


def os_error_line(error: OSError) -> str:
    """An OSError as one line that keeps its cause (type, errno text, file), naming the two a
    user must act on: a full disk and a read-only file system."""
    import errno

    text = f"{type(error).__name__}: {error}"
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"disk full: {text}; free some space, then run again"
    if error.errno == errno.EROFS:
        return f"read-only file system: {text}; make it writable or choose another --out / --cache-dir"
    return text


def exit_code_for(error: BaseException) -> ExitCode:
    """The one mapping from an exception that ends a command to its exit status."""
    if isinstance(error, MksapError):
        return error.exit_code
    if isinstance(error, KeyboardInterrupt):
        return ExitCode.TERMINATED if isinstance(error, Terminated) else ExitCode.INTERRUPTED
    return ExitCode.BUG
