"""`mksap doctor`: what this machine can run. The NLP tier (and how to install a scispaCy
model), which providers are usable (key set, CLI executable on PATH), and whether the LLM
cache and build-state folders are safe to use."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel

from mksap.contracts.errors import CacheError, ExitCode, MksapError
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
    def exit_code(self) -> ExitCode:
        return ExitCode.FAILED if any(c.status == "error" for c in self.checks) else ExitCode.OK


def _line(topic: str, line: str) -> Check:
    status, _, message = line.partition(": ")
    if status not in ("ok", "warn", "error"):
        return Check(topic=topic, status="ok", message=line)
    return Check(topic=topic, status=status, message=message)  # type: ignore[arg-type]


def provider_checks(settings: Settings, registry: Registry) -> list[Check]:
    """Each registered provider's own health, and which one a run would use. A provider that
    is not usable is an error only when the run would use it."""
    from mksap.llm.runtime import provider_chain

    try:
        chain = provider_chain(settings, registry).names
        checks = [Check(topic="providers", status="ok", message=f"a run uses: {' -> '.join(chain)}")]
    except MksapError as e:
        chain, checks = [], [Check(topic="providers", status="error", message=str(e))]
    for name in registry.names("provider"):
        for line in registry.provider(name).health(settings):
            check = _line(f"provider {name}", line)
            if check.status == "error" and name not in chain:
                check = check.model_copy(update={"status": "warn"})
            checks.append(check)
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


def probe_checks(settings: Settings, registry: Registry) -> list[Check]:
    """`--probe`: ask each provider of the run's chain what its endpoint can do, as a run's
    first-call check does (a model list, or a tiny structured call: at most a few tokens)."""
    from mksap.llm.probe import chain_lines, probe_providers
    from mksap.llm.runtime import ProviderRuntime

    try:
        runtime = ProviderRuntime(settings, registry)
    except MksapError as e:
        return [Check(topic="probe", status="error", message=str(e))]
    try:
        found = probe_providers(runtime)
    finally:
        runtime.close()
    return [
        Check(
            topic=f"probe {provider.name}",
            status="error" if isinstance(result, MksapError) or provider.unready(settings) else "ok",
            message=line.partition(": ")[2],
        )
        for (provider, result), line in zip(found, chain_lines(found), strict=True)
    ]


def diagnose(settings: Settings, registry: Registry, *, probe: bool = False) -> DoctorReport:
    """Every check, in the order `mksap doctor` prints them; `probe`: the endpoints' too."""
    checks: list[Check] = []
    for stage_cls in registry.stages():
        checks += [_line(f"stage {stage_cls.name}", line) for line in stage_cls(settings).health()]
    checks += [Check(topic="plugins", status="warn", message=f"{f.source}: {f.error}") for f in registry.failures]
    checks += provider_checks(settings, registry)
    checks += folder_checks(settings)
    if probe:
        checks += probe_checks(settings, registry)
    return DoctorReport(checks=checks)
