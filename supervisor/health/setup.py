"""The plugins one procfile uses, resolved and validated: part of validating a procfile, kept out of config.py
because it imports plugin code."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import msgspec

from ..config import procfile as config
from ..config.procfile import Procfile
from ..core.errors import ConfigError, ConfigErrors
from .specs import HealthSpec, HookSpec

T = TypeVar("T")


class PluginSetup(msgspec.Struct, frozen=True):
    health: dict[str, list[HealthSpec]]
    hooks: list[HookSpec]


def load(path: str) -> tuple[Procfile, PluginSetup]:
    """The procfile and its plugins, validated together in one pass (plugin options are checked even when other
    keys are wrong), errors naming the procfile as given: what `validate`, `start` and reload all use."""
    try:
        procfile = config.load(path)
    except ConfigErrors as e:
        if isinstance(e.partial, Procfile):
            try:
                resolve(e.partial, path)
            except ConfigErrors as more:
                raise ConfigErrors(e.errors + more.errors) from None
        raise
    return procfile, resolve(procfile, path)


def resolve(procfile: Procfile, shown: str | None = None) -> PluginSetup:
    """Load the registry and check every health and hook table; ConfigErrors lists every failure."""
    file = shown or procfile.file
    if not (procfile.supervisor.hooks or procfile.supervisor.plugin_paths or any(b.health for b in procfile.bots.values())):
        return PluginSetup(health={}, hooks=[])
    from .loader import load_registry, parse_health, parse_hooks  # a procfile without plugins never loads the loader

    try:
        registry = load_registry(procfile.supervisor.plugin_paths, procfile.base_dir, file)
    except ConfigError as e:
        raise ConfigErrors([e]) from None
    errors: list[ConfigError] = []
    health: dict[str, list[HealthSpec]] = {}
    for name, bot in procfile.bots.items():
        if bot.health:
            specs = _collect(errors, lambda: parse_health(file, name, bot.health, registry))
            if specs is not None:
                health[name] = specs
    hooks = _collect(errors, lambda: parse_hooks(file, procfile.supervisor.hooks, registry)) if procfile.supervisor.hooks else []
    if errors:
        raise ConfigErrors(errors)
    return PluginSetup(health=health, hooks=hooks or [])


def _collect(errors: list[ConfigError], parse: Callable[[], T]) -> T | None:
    try:
        return parse()
    except ConfigError as e:
        errors.append(e)
    except ConfigErrors as e:
        errors.extend(e.errors)
    return None

