"""The one hierarchy of expected errors. Each message names the fix.

The CLI turns these into a one-line message and an exit code; anything else is a bug and
keeps its traceback.
"""


class MksapError(Exception):
    """An expected failure with a message a user can act on."""

    exit_code = 2


class ConfigError(MksapError):
    """A setting is missing, malformed or points somewhere unusable."""


class PluginError(MksapError):
    """A plugin failed to load, or a name does not match any registered plugin."""


class InputError(MksapError):
    """A question file or table cannot be used as input (one question, not the run)."""


class StageError(MksapError):
    """A stage ran but produced nothing usable (the model answered badly)."""


class AnswerError(StageError):
    """The model answered, but not with JSON valid for the schema (or it was cut short).

    Never cached; the stage gets one repair round with this message before failing.
    """

    def __init__(self, message: str, raw_text: str = "") -> None:
        super().__init__(message)
        self.raw_text = raw_text


class ProviderError(MksapError):
    """We could not get an answer from a model provider (the stage could not run)."""


class ProviderStopError(ProviderError):
    """A provider failure that retrying will not fix: auth, quota or spend limit.

    The runtime stops sending work to that provider for the rest of the run.
    """


class CacheError(MksapError):
    """The LLM response cache is unusable or unsafe."""


class BuildLockedError(MksapError):
    """Another run holds the build state."""

    exit_code = 75


class ExportError(MksapError):
    """An export could not be written."""
