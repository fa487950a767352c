"""Effective settings and where each value came from.

Precedence, highest first: command-line flag > `MKSAP_*` environment variable > `mksap.toml`
in the working directory > the user config file > built-in default. A relative path in a
config file is resolved against the folder of the file that names it; a relative path from a
flag or the environment is resolved against the working directory.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

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
        "auto", description="provider name, or a fallback chain 'a,b'; auto = anthropic if a key is set, else offline"
    )
    model: str = Field("claude-sonnet-4-6", description="model name passed to the provider")
    base_url: str | None = Field(None, description="Messages API base URL (local servers too)")
    api_key: SecretStr | None = Field(None, description="API key (prefer ANTHROPIC_API_KEY)")
    jobs: int = Field(8, ge=1, le=256, description="doit worker threads")
    max_concurrency: int = Field(16, ge=1, le=1024, description="LLM calls in flight at once")
    rpm: int = Field(1000, ge=0, description="requests per minute limit (0 = none)")
    tpm: int = Field(400_000, ge=0, description="input+output tokens per minute limit (0 = none)")
    call_timeout: float = Field(300.0, gt=0, description="overall deadline for one LLM call, seconds")
    nlp_model: str = Field("en_core_sci_sm", description="spaCy/scispaCy model: package name or path")
    keep_rejected: bool = Field(False, description="keep statements failing validation, flagged")
    prices: dict[str, tuple[float, float, float, float]] = Field(
        default_factory=dict,
        description="USD per million tokens (input, output, cache write, cache read) by model; "
        "overrides the provider's built-in table (JSON in MKSAP_PRICES)",
    )
    prices_date: str | None = Field(None, description="when the `prices` above were checked")

    def build_dir(self) -> Path:
        return self.cache_dir / "build"


class ResolvedSettings(BaseModel):
    """Settings plus the origin of every value, for `mksap config`."""

    settings: Settings
    sources: dict[str, str]


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e}); fix or remove the file") from e
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from e
    table = data.get("mksap", data)
    unknown = sorted(set(table) - set(Settings.model_fields))
    if unknown:
        valid = ", ".join(Settings.model_fields)
        raise ConfigError(f"{path}: unknown setting(s) {', '.join(unknown)}; valid: {valid}")
    return table


def _absolutise(values: dict[str, Any], base: Path) -> dict[str, Any]:
    """Resolve relative path settings against `base` (the folder of the file naming them)."""
    out = dict(values)
    for name, field in Settings.model_fields.items():
        if name in out and field.annotation in (Path, "Path") and out[name] is not None:
            p = Path(str(out[name])).expanduser()
            out[name] = p if p.is_absolute() else base / p
    if "nlp_model" in out and _looks_like_path(str(out["nlp_model"])):
        p = Path(str(out["nlp_model"])).expanduser()
        out["nlp_model"] = str(p if p.is_absolute() else base / p)
    return out


def _looks_like_path(value: str) -> bool:
    return "/" in value or value.startswith(".") or value.startswith("~")


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in Settings.model_fields:
        raw = env.get(ENV_PREFIX + name.upper())
        if raw is not None and raw != "":
            values[name] = _decode_structured(name, raw) if name == "prices" else raw
    return values


def _decode_structured(name: str, raw: str) -> Any:
    import json

    try:
        return json.loads(raw)
    except ValueError:
        raise ConfigError(
            f"{ENV_PREFIX}{name.upper()} must be JSON, e.g. '{{\"claude-sonnet-4-6\": [3, 15, 3.75, 0.3]}}'"
        ) from None


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

    user_file = user_config_file(env)
    if user_file.is_file():
        layers.append((f"user config {user_file}", _absolutise(_read_toml(user_file), user_file.parent)))
    project_file = cwd / PROJECT_CONFIG
    if project_file.is_file():
        layers.append((f"project {project_file}", _absolutise(_read_toml(project_file), cwd)))
    layers.append(("env", _absolutise(_from_env(env), cwd)))
    given = {k: v for k, v in (flags or {}).items() if v is not None}
    layers.append(("flag", _absolutise(given, cwd)))

    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for origin, values in layers:
        for name, value in values.items():
            merged[name] = value
            sources[name] = f"env {ENV_PREFIX}{name.upper()}" if origin == "env" else origin
    if "api_key" not in merged and env.get("ANTHROPIC_API_KEY"):
        merged["api_key"] = env["ANTHROPIC_API_KEY"]
        sources["api_key"] = "env ANTHROPIC_API_KEY"
    if "base_url" not in merged and env.get("ANTHROPIC_BASE_URL"):
        merged["base_url"] = env["ANTHROPIC_BASE_URL"]
        sources["base_url"] = "env ANTHROPIC_BASE_URL"

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
    for name in ("data", "out", "cache_dir", "llm_cache_dir"):
        path = getattr(settings, name)
        if not path.is_absolute():
            settings = settings.model_copy(update={name: cwd / path})
    return ResolvedSettings(settings=settings, sources=sources)
