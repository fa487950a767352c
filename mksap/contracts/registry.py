"""The plugin registry: built once per run from the `mksap` entry-point group.

A plugin that fails to load is recorded with its error (shown by `mksap plugins`), never
silently skipped; asking for an unknown name lists the valid ones.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from types import ModuleType
from typing import TYPE_CHECKING, Any

from mksap.contracts.errors import PluginError
from mksap.contracts.hookspecs import HOOKS

if TYPE_CHECKING:
    from mksap.contracts.provider import Provider
    from mksap.contracts.stage import Stage

ENTRY_POINT_GROUP = "mksap"
KINDS = {"register_stages": "stage", "register_providers": "provider", "register_exporters": "exporter"}


@dataclass(frozen=True)
class PluginEntry:
    kind: str
    name: str
    obj: Any
    package: str
    module: str


@dataclass(frozen=True)
class PluginFailure:
    source: str
    package: str
    error: str


@dataclass
class Registry:
    """Names to plugin classes, by kind."""

    entries: list[PluginEntry] = field(default_factory=list)
    failures: list[PluginFailure] = field(default_factory=list)
    command_hooks: list[tuple[str, str, Callable[[Any], None]]] = field(default_factory=list)
    command_option_hooks: list[Callable[[], dict[str, Any]]] = field(default_factory=list)

    @classmethod
    def load(cls, env: dict[str, str] | None = None) -> Registry:
        """Load every entry point of the `mksap` group, then modules named in `MKSAP_PLUGINS`."""
        env = dict(os.environ) if env is None else env
        registry = cls()
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            package = ep.dist.name if ep.dist else "?"
            try:
                module = ep.load()
            except Exception as e:  # a broken plugin must not break the tool; it is reported
                registry.failures.append(PluginFailure(ep.value, package, _one_line(e)))
                continue
            registry.add_module(module, package)
        for name in filter(None, (n.strip() for n in env.get("MKSAP_PLUGINS", "").split(","))):
            try:
                module = importlib.import_module(name)
            except Exception as e:
                registry.failures.append(PluginFailure(name, "MKSAP_PLUGINS", _one_line(e)))
                continue
            registry.add_module(module, "MKSAP_PLUGINS")
        return registry

    def add_module(self, module: ModuleType, package: str) -> None:
        """Call every hook the module defines; record a failure instead of raising."""
        misspelt = [
            n for n in vars(module) if n.startswith("register_") and n not in HOOKS and callable(getattr(module, n))
        ]
        if misspelt:
            valid = ", ".join(HOOKS)
            self.failures.append(
                PluginFailure(module.__name__, package, f"unknown hook(s) {', '.join(misspelt)}; valid: {valid}")
            )
            return
        for hook, kind in KINDS.items():
            fn = getattr(module, hook, None)
            if fn is None:
                continue
            try:
                fn(lambda obj, kind=kind: self._register(kind, obj, package, module.__name__))
            except Exception as e:
                self.failures.append(PluginFailure(f"{module.__name__}.{hook}", package, _one_line(e)))
        if callable(getattr(module, "register_commands", None)):
            self.command_hooks.append((module.__name__, package, module.register_commands))
            if callable(getattr(module, "command_options", None)):
                self.command_option_hooks.append(module.command_options)

    def options_models(self) -> list[tuple[str, Any]]:
        """(plugin name, options model) of every plugin with options: its stages, providers and
        exporters, then its commands' (`command_options()`; one that fails is left out)."""
        models = [(e.name, e.obj.options_model) for e in self.entries]
        for hook in self.command_option_hooks:
            with contextlib.suppress(Exception):  # already reported if its module is broken
                models += list(hook().items())
        return [(name, model) for name, model in models if model.model_fields]

    def add_commands(self, app: Any, taken: set[str]) -> None:
        """Call every plugin's `register_commands(app)`. A hook that fails, or takes a command
        name already in `taken`, is recorded as a plugin failure and its commands are dropped."""
        for module, package, hook in self.command_hooks:
            before = len(app.registered_commands), len(app.registered_groups)
            try:
                hook(app)
                added = [_command_name(c) for c in app.registered_commands[before[0] :]]
                added += [g.name or "" for g in app.registered_groups[before[1] :]]
                clash = sorted(set(added) & taken)
                if clash:
                    raise PluginError(f"command name(s) {', '.join(clash)} already taken")
                taken.update(added)
            except Exception as e:
                del app.registered_commands[before[0] :]
                del app.registered_groups[before[1] :]
                self.failures.append(PluginFailure(f"{module}.register_commands", package, _one_line(e)))

    def _register(self, kind: str, obj: Any, package: str, module: str) -> None:
        name = getattr(obj, "name", None)
        if not isinstance(name, str) or not name:
            raise PluginError(f"{kind} plugin {obj!r} from {module} has no 'name'")
        if any(e.kind == kind and e.name == name for e in self.entries):
            raise PluginError(f"{kind} '{name}' from {module} is already registered")
        self.entries.append(PluginEntry(kind, name, obj, package, module))

    def names(self, kind: str) -> list[str]:
        return [e.name for e in self.entries if e.kind == kind]

    def get(self, kind: str, name: str) -> Any:
        for e in self.entries:
            if e.kind == kind and e.name == name:
                return e.obj
        valid = ", ".join(self.names(kind)) or "none installed"
        raise PluginError(f"no {kind} named '{name}'; valid: {valid}")

    def stages(self) -> list[type[Stage]]:
        """Stage classes in dependency order (each after everything it needs)."""
        by_name = {e.name: e.obj for e in self.entries if e.kind == "stage"}
        ordered: list[type[Stage]] = []
        visiting: set[str] = set()

        def visit(name: str, wanted_by: str) -> None:
            if any(s.name == name for s in ordered):
                return
            if name not in by_name:
                raise PluginError(f"stage '{wanted_by}' needs stage '{name}', which no plugin provides")
            if name in visiting:
                raise PluginError(f"stages depend on each other in a cycle through '{name}'")
            visiting.add(name)
            for need in by_name[name].needs:
                visit(need, name)
            visiting.discard(name)
            ordered.append(by_name[name])

        for name in by_name:
            visit(name, name)
        return ordered

    def provider(self, name: str) -> type[Provider]:
        return self.get("provider", name)


def _command_name(info: Any) -> str:
    return info.name or info.callback.__name__.replace("_", "-")


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")
