"""`mksap doctor`: what this machine can run. The NLP tier (and how to install a scispaCy
model), which providers are usable (key set, CLI executable on PATH), and whether the LLM
cache and build-state folders are safe to use."""

from __future__ import annotations

import os
import shutil
from typing import Literal

from pydantic import BaseModel

from mksap.contracts.errors import CacheError
from mksap.contracts.registry import Registry
from mksap.settings import Settings

Status = Literal["ok", "warn", "error"]


class Check(BaseModel):
    topic: str
    status: Status
    message: str


class DoctorReport(BaseModel):
    checks: list[Check]

    @property
    def exit_code(self) -> int:
        return 1 if any(c.status == "error" for c in self.checks) else 0


def _line(topic: str, line: str) -> Check:
    status, _, message = line.partition(": ")
    if status not in ("ok", "warn", "error"):
        return Check(topic=topic, status="ok", message=line)
    return Check(topic=topic, status=status, message=message)  # type: ignore[arg-type]


def provider_checks(settings: Settings, registry: Registry) -> list[Check]:
    """One check per registered provider, and which one a run would use."""
    from mksap.llm.runtime import provider_chain

    chain = provider_chain(settings)
    checks = [Check(topic="providers", status="ok", message=f"a run uses: {' -> '.join(chain)}")]
    for name in registry.names("provider"):
        cls = registry.get("provider", name)
        executable = getattr(cls, "executable", None)
        if getattr(cls, "local", False):
            checks.append(Check(topic=f"provider {name}", status="ok", message="usable (no key, no network)"))
        elif executable:
            path = shutil.which(executable)
            status: Status = "ok" if path else ("error" if name in chain else "warn")
            found = f"`{executable}` found at {path}" if path else f"`{executable}` not found on PATH"
            checks.append(Check(topic=f"provider {name}", status=status, message=found))
        elif name == "anthropic":
            key = settings.api_key is not None and bool(settings.api_key.get_secret_value())
            where = settings.base_url or "the Anthropic API"
            status = "ok" if key else ("error" if name in chain else "warn")
            text = f"API key set; calls go to {where}" if key else "no API key: set ANTHROPIC_API_KEY"
            checks.append(Check(topic="provider anthropic", status=status, message=text))
        else:
            checks.append(Check(topic=f"provider {name}", status="ok", message="installed (no check available)"))
    return checks


def folder_checks(settings: Settings) -> list[Check]:
    """The LLM cache must be private (joblib stores pickles); the build state writable."""
    from mksap.llm.cache import check_private

    checks = []
    cache = settings.llm_cache_dir
    if cache.is_dir():
        try:
            check_private(cache)
            checks.append(Check(topic="llm cache", status="ok", message=f"{cache} is private"))
        except CacheError as e:
            checks.append(Check(topic="llm cache", status="error", message=str(e)))
    else:
        checks.append(Check(topic="llm cache", status="ok", message=f"{cache} will be created private (0700)"))
    build = settings.cache_dir
    probe = build if build.exists() else build.parent
    if probe.exists() and not os.access(probe, os.W_OK):
        checks.append(Check(topic="build state", status="error", message=f"{probe} is not writable"))
    else:
        checks.append(Check(topic="build state", status="ok", message=f"{build}"))
    return checks


def diagnose(settings: Settings, registry: Registry) -> DoctorReport:
    """Every check, in the order `mksap doctor` prints them."""
    checks: list[Check] = []
    for stage_cls in registry.stages():
        checks += [_line(f"stage {stage_cls.name}", line) for line in stage_cls(settings).health()]
    checks += [Check(topic="plugins", status="warn", message=f"{f.source}: {f.error}") for f in registry.failures]
    checks += provider_checks(settings, registry)
    checks += folder_checks(settings)
    return DoctorReport(checks=checks)


def render(report: DoctorReport) -> str:
    return "\n".join(f"{c.status:<6}{c.topic:<22}{c.message}" for c in report.checks)
