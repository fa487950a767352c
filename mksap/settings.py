"""Effective settings and where each value came from.

Precedence, highest first: command-line flag > `MKSAP_*` environment variable > `mksap.toml`
in the working directory > the user config file > built-in default. A relative path in a
config file is resolved against the folder of the file that names it; a relative path from a
flag or the environment is resolved against the working directory.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar, get_origin

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError
from pydantic.fields import FieldInfo

from mksap.contracts.errors import ConfigError

PROJECT_CONFIG = "mksap.toml"
ENV_PREFIX = "MKSAP_"


def user_config_file(env: Mapping[str, str]) -> Path:
    """The user config file: `MKSAP_USER_CONFIG`, else the platform's user config folder."""
    explicit = env.get("MKSAP_USER_CONFIG")
    if explicit:
        return Path(explicit)
    return Path(platformdirs.user_config_dir("mksap")) / "config.toml"


def default_llm_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("mksap")) / "llm"


class StageSettings(BaseModel):
    """`[stages.<name>]`: what one LLM stage asks instead of the run's `provider` and `model`
    (e.g. a cheaper model for cloze or for validate's repair round)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str | None = Field(None, description="provider name or fallback chain for this stage")
    model: str | None = Field(None, description="model name for this stage")

    def __repr__(self) -> str:  # how `mksap config` shows it
        return ", ".join(f"{k}={v}" for k, v in self.model_dump(exclude_none=True).items()) or "(run default)"


class Settings(BaseModel):
    """Every setting mksap reads. Each field is also `MKSAP_<NAME>` and a `mksap.toml` key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data: Path = Field(Path("data"), description="question bank: <data>/<system>/<qid>/<qid>.json")
    out: Path = Field(Path("out"), description="output tree (mirrors the input layout)")
    cache_dir: Path = Field(Path("cache"), description="build state: artifacts and doit's DB")
    llm_cache_dir: Path = Field(
        default_factory=default_llm_cache_dir, description="LLM response cache (shared by checkouts)"
    )
    in_place: bool = Field(False, description="write statements into the input files themselves")
    provider: str = Field(
        "auto", description="provider name, or a fallback chain 'a,b'; auto = the first ready of auto_providers"
    )
    auto_providers: str = Field(
        "anthropic,offline", description="what provider 'auto' tries, in order: the first one ready is used"
    )
    model: str = Field("claude-sonnet-4-6", description="model name passed to the provider")
    jobs: int = Field(
        0,
        ge=0,
        le=1024,
        description="doit worker threads; 0 = max_concurrency when a stage calls an API provider "
        "(threads never cap the calls in flight), else 8",
    )
    max_concurrency: int = Field(
        256,
        ge=1,
        le=1024,
        description="most LLM calls in flight at once, per provider and model; an API provider starts "
        "at 8 and follows its rate-limit headers up to this",
    )
    rpm: int = Field(
        0, ge=0, description="cap on requests per minute (0 = none: follow the server's rate-limit headers)"
    )
    tpm: int = Field(
        0, ge=0, description="cap on input+output tokens per minute (0 = none: follow the server's rate-limit headers)"
    )
    call_timeout: float = Field(
        120.0,
        gt=0,
        description="overall deadline for one LLM call, retries included, seconds (our answers are a few "
        "hundred tokens: minutes of silence is a dead connection)",
    )
    breaker_failures: int = Field(
        5, ge=1, description="calls in a row that fail the same way, with no answer between, that stop a provider"
    )
    estimate_with: str = Field(
        "offline", description="the local provider that answers an --estimate's requests (nothing is sent)"
    )
    # Per-question input limits: a question over one fails alone, with a line naming the limit.
    max_question_bytes: int = Field(2_000_000, ge=1, description="largest question JSON file, bytes")
    max_critique_chars: int = Field(200_000, ge=1, description="longest critique (and key point), characters")
    max_table_bytes: int = Field(1_000_000, ge=1, description="largest table file (and its text, spans resolved)")
    max_table_cells: int = Field(20_000, ge=1, description="largest table grid, rows x columns once spans are resolved")
    max_nesting: int = Field(100, ge=1, le=500, description="deepest nesting of arrays and objects in a question JSON")
    max_cost: float | None = Field(
        None, ge=0, description="USD this run may spend on LLM calls; a request that would pass it is not sent"
    )
    stages: dict[str, StageSettings] = Field(
        default_factory=dict,
        description="per-stage provider/model: [stages.<name>] model = ... (env MKSAP_STAGES as JSON)",
    )

    # Plugin option layers and the environment they were read with: private, so neither a
    # repr nor a dump ever shows a secret a plugin option holds.
    _plugin_layers: tuple[PluginLayer, ...] = PrivateAttr(default=())
    _env: Mapping[str, str] = PrivateAttr(default_factory=dict)
    _resolved: dict[tuple[str, type], tuple[BaseModel, dict[str, str]]] = PrivateAttr(default_factory=dict)

    def build_dir(self) -> Path:
        return self.cache_dir / "build"

    def for_stage(self, stage: str | None) -> Settings:
        """These settings as stage `stage` sees them: its `[stages.<name>]` provider and model
        in place of the run's (the same object when the stage has none)."""
        override = self.stages.get(stage) if stage is not None else None
        if override is None:
            return self
        update = override.model_dump(exclude_none=True)
        return self.model_copy(update=update) if update else self

    def plugin_options(self, plugin: str, model: type[PluginOptionsT]) -> PluginOptionsT:
        """The options of plugin `plugin`, validated against its own model (see `PluginOptions`)."""
        return self.plugin_options_with_sources(plugin, model)[0]

    def plugin_options_with_sources(
        self, plugin: str, model: type[PluginOptionsT]
    ) -> tuple[PluginOptionsT, dict[str, str]]:
        """The options and where each value came from (for `mksap config`)."""
        cached = self._resolved.get((plugin, model))
        if cached is None:
            cached = _resolve_plugin(plugin, model, self._plugin_layers, self._env)
            self._resolved[(plugin, model)] = cached
        options, sources = cached
        return options, sources  # type: ignore[return-value]

    def with_plugin_options(self, plugin: str, **values: Any) -> Settings:
        """A copy whose plugin `plugin` gets `values` above every other layer (for code and tests)."""
        copy = self.model_copy()
        layer = PluginLayer(origin="code", base=Path.cwd(), tables={plugin: values})
        copy._plugin_layers = (*self._plugin_layers, layer)
        copy._env = self._env
        copy._resolved = {}
        return copy


class PluginOptions(BaseModel):
    """Base of a plugin's own options model (a class attribute `options_model` of the plugin).

    Values come from, highest first: `MKSAP_<PLUGIN>_<OPTION>` > the `[plugins.<name>]` table
    of ./mksap.toml > that of the user config > a field's own fallback variable (declared with
    `json_schema_extra={"env": "NAME"}`, e.g. ANTHROPIC_API_KEY) > the field's default. A
    relative `Path` field, or a field declared `json_schema_extra={"path_like": True}` whose
    value looks like a path, is resolved against the folder of the file that names it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)


class Configured:
    """What a stage and a provider share: made with the run's settings, they read their own
    options (`options_model`) from them as `self.options`."""

    name: ClassVar[str]
    options_model: ClassVar[type[PluginOptions]] = PluginOptions

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def options(self) -> Any:
        """This plugin's options, from `[plugins.<name>]` / `MKSAP_<NAME>_*`."""
        return self.settings.plugin_options(self.name, self.options_model)


PluginOptionsT = TypeVar("PluginOptionsT", bound=BaseModel)


@dataclass(frozen=True)
class PluginLayer:
    """The `[plugins.*]` tables of one config file (or of code), and the folder they resolve against."""

    origin: str
    base: Path
    tables: Mapping[str, Mapping[str, Any]]


def plugin_env_name(plugin: str, option: str) -> str:
    return f"{ENV_PREFIX}{plugin.upper().replace('-', '_')}_{option.upper()}"


def _field_extra(field: FieldInfo, key: str) -> Any:
    extra = field.json_schema_extra
    return extra.get(key) if isinstance(extra, dict) else None


def _plugin_value(field: FieldInfo, value: Any, base: Path | None) -> Any:
    """A raw value for `field`: JSON decoded for structured fields given as text, paths resolved."""
    structured = get_origin(field.annotation) in (dict, list, tuple) or field.annotation in (dict, list, tuple)
    if structured and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise ValueError("must be JSON") from None
    if isinstance(value, str):
        value = value.strip()  # a CRLF .env leaves "\r" on the end of a key
    pathish = field.annotation in (Path, Path | None) or (
        _field_extra(field, "path_like") and isinstance(value, str) and _looks_like_path(value)
    )
    if base is not None and pathish and value is not None:
        p = Path(str(value)).expanduser()
        resolved = p if p.is_absolute() else base / p
        return resolved if field.annotation in (Path, Path | None) else str(resolved)
    return value


def _resolve_plugin(
    plugin: str, model: type[PluginOptionsT], layers: tuple[PluginLayer, ...], env: Mapping[str, str]
) -> tuple[PluginOptionsT, dict[str, str]]:
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    cwd = Path.cwd()
    try:
        for name, field in model.model_fields.items():
            fallback = _field_extra(field, "env")
            if fallback and env.get(fallback, "").strip():
                values[name], sources[name] = _plugin_value(field, env[fallback], cwd), f"env {fallback}"
        files = [lay for lay in layers if lay.origin != "code"]
        code = [lay for lay in layers if lay.origin == "code"]
        for layer in files:
            _table_layer(plugin, model, layer, values, sources)
        _env_layer(plugin, model, env, values, sources, cwd)
        for layer in code:
            _table_layer(plugin, model, layer, values, sources)
    except ValueError as e:
        raise ConfigError(f"plugin {plugin}: {e}") from None
    try:
        options = model.model_validate(values)
    except ValidationError as e:
        err = e.errors()[0]
        name = str(err["loc"][0]) if err["loc"] else "?"
        origin = sources.get(name, "default")
        # Never echo the value: it may be a secret.
        raise ConfigError(f"option '{name}' of plugin {plugin} from {origin}: {err['msg']}") from None
    for name in model.model_fields:
        sources.setdefault(name, "default")
    return options, sources


def _table_layer(
    plugin: str, model: type[BaseModel], layer: PluginLayer, values: dict[str, Any], sources: dict[str, str]
) -> None:
    table = layer.tables.get(plugin, {})
    where = f"{layer.origin} [plugins.{plugin}]"
    unknown = sorted(set(table) - set(model.model_fields))
    if unknown:
        valid = ", ".join(model.model_fields) or "none"
        raise ConfigError(f"{where}: unknown option(s) {', '.join(unknown)}; valid: {valid}")
    for name, value in table.items():
        values[name] = _plugin_value(model.model_fields[name], value, layer.base)
        sources[name] = where


def _env_layer(
    plugin: str,
    model: type[BaseModel],
    env: Mapping[str, str],
    values: dict[str, Any],
    sources: dict[str, str],
    cwd: Path,
) -> None:
    for name, field in model.model_fields.items():
        var = plugin_env_name(plugin, name)
        raw = env.get(var)
        if raw is not None and raw != "":
            try:
                values[name] = _plugin_value(field, raw, cwd)
            except ValueError as e:
                raise ValueError(f"{var} {e}") from None
            sources[name] = f"env {var}"


class ResolvedSettings(BaseModel):
    """Settings plus the origin of every value, for `mksap config`."""

    settings: Settings
    sources: dict[str, str]


#: Settings that moved into a plugin's own options, and where they live now.
MOVED = {
    "api_key": "[plugins.anthropic] api_key (or ANTHROPIC_API_KEY)",
    "base_url": "[plugins.anthropic] base_url (or ANTHROPIC_BASE_URL)",
    "prices": "[plugins.anthropic] prices",
    "prices_date": "[plugins.anthropic] prices_date",
    "nlp_model": "[plugins.nlp] model (or MKSAP_NLP_MODEL)",
    "keep_rejected": "[plugins.validate] keep_rejected (or MKSAP_VALIDATE_KEEP_REJECTED)",
}


def _read_toml(path: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(core settings, plugin tables) of one config file."""
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e}); fix or remove the file") from e
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from e
    table = dict(data.get("mksap", data))
    plugins = table.pop("plugins", {})
    if not isinstance(plugins, dict) or not all(isinstance(v, dict) for v in plugins.values()):
        raise ConfigError(f"{path}: `plugins` must hold one table per plugin, e.g. [plugins.anthropic]")
    moved = [f"'{k}' is now {MOVED[k]}" for k in sorted(table) if k in MOVED]
    if moved:
        raise ConfigError(f"{path}: setting moved: {'; '.join(moved)}")
    unknown = sorted(set(table) - set(Settings.model_fields))
    if unknown:
        valid = ", ".join(Settings.model_fields)
        raise ConfigError(
            f"{path}: unknown setting(s) {', '.join(unknown)}; valid: {valid} (plugin options: [plugins.<name>])"
        )
    return table, plugins


def _absolutise(values: dict[str, Any], base: Path) -> dict[str, Any]:
    """Resolve relative path settings against `base` (the folder of the file naming them)."""
    out = dict(values)
    for name, field in Settings.model_fields.items():
        if name in out and field.annotation in (Path, "Path") and out[name] is not None:
            p = Path(str(out[name])).expanduser()
            out[name] = p if p.is_absolute() else base / p
    return out


def _looks_like_path(value: str) -> bool:
    return "/" in value or value.startswith(".") or value.startswith("~")


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in Settings.model_fields:
        raw = env.get(ENV_PREFIX + name.upper())
        if raw is not None and raw != "":
            values[name] = raw
    if isinstance(values.get("stages"), str):
        try:
            values["stages"] = json.loads(values["stages"])
        except ValueError:
            raise ConfigError(
                'MKSAP_STAGES must be JSON, e.g. {"cloze": {"model": "claude-haiku-4-5"}}'
            ) from None
    return values


def _merge(merged: dict[str, Any], name: str, value: Any) -> Any:
    """A layer's value over the merged ones: `stages` tables merge per stage and key."""
    if name != "stages" or not isinstance(value, Mapping) or not isinstance(merged.get(name), Mapping):
        return value
    combined = {k: dict(v) if isinstance(v, Mapping) else v for k, v in merged[name].items()}
    for stage, table in value.items():
        base = combined.get(stage)
        combined[stage] = {**base, **table} if isinstance(base, Mapping) and isinstance(table, Mapping) else table
    return combined


def check_stage_settings(settings: Settings, stages: list[str]) -> None:
    """Refuse a `[stages.<name>]` table naming no registered stage (a typo would be ignored)."""
    unknown = sorted(set(settings.stages) - set(stages))
    if unknown:
        raise ConfigError(f"[stages.{unknown[0]}] names no stage; valid: {', '.join(stages)}")


def load_settings(
    flags: Mapping[str, Any] | None = None,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> ResolvedSettings:
    """Merge every layer into validated settings; flags with value None are 'not given'."""
    cwd = (cwd or Path.cwd()).resolve()
    env = os.environ if env is None else env
    layers: list[tuple[str, dict[str, Any]]] = []
    plugin_layers: list[PluginLayer] = []

    for origin, path, base in (
        ("user config", user_config_file(env), user_config_file(env).parent),
        ("project", cwd / PROJECT_CONFIG, cwd),
    ):
        if path.is_file():
            table, plugins = _read_toml(path)
            layers.append((f"{origin} {path}", _absolutise(table, base)))
            plugin_layers.append(PluginLayer(origin=f"{origin} {path}", base=base, tables=plugins))
    layers.append(("env", _absolutise(_from_env(env), cwd)))
    given = {k: v for k, v in (flags or {}).items() if v is not None}
    layers.append(("flag", _absolutise(given, cwd)))

    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for origin, values in layers:
        for name, value in values.items():
            merged[name] = _merge(merged, name, value)
            sources[name] = f"env {ENV_PREFIX}{name.upper()}" if origin == "env" else origin

    try:
        settings = Settings(**merged)
    except ValidationError as e:
        err = e.errors()[0]
        name = str(err["loc"][0]) if err["loc"] else "?"
        origin = sources.get(name, "default")
        # Never echo the value: it may be a secret.
        raise ConfigError(f"setting '{name}' from {origin}: {err['msg']}") from None
    for name in Settings.model_fields:
        sources.setdefault(name, "default")
    relative = {
        n: cwd / p
        for n in ("data", "out", "cache_dir", "llm_cache_dir")
        if not (p := getattr(settings, n)).is_absolute()
    }
    settings = settings.model_copy(update=relative)
    settings._plugin_layers = tuple(plugin_layers)
    settings._env = dict(env)
    return ResolvedSettings(settings=settings, sources=sources)
