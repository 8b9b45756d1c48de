"""Find plugins (entry points and procfile paths) and turn `[[bots.X.health]]` tables into specs.

Entry points are named `check.NAME`, `recovery.NAME` or `hook.NAME` so a plugin is
imported only when a procfile uses it: a broken third-party package then fails the
procfiles that name it, with its entry point and exception, and nobody else.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import sys
import typing
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import msgspec

if TYPE_CHECKING:
    import importlib.metadata

from ..core.errors import ConfigError, ConfigErrors, PluginError
from ..plugin import Duration, EventHook, EventKind, HealthCheck, Recovery, RecoveryRef
from .options import convert_options, did_you_mean, recovery_fields
from .specs import HealthSpec, HookSpec, InOrder, RecoverySpec, Threaded

log = logging.getLogger("supctl.plugins")

GROUP = "supctl.plugins"
Kind = Literal["check", "recovery", "hook"]
BASES: dict[Kind, type] = {"check": HealthCheck, "recovery": Recovery, "hook": EventHook}
METHODS: dict[Kind, str] = {"check": "check", "recovery": "recover", "hook": "on_event"}
HEALTH_KEYS = ("check", "every", "timeout", "failures", "recover", "recover_timeout", "start_period", "initial_delay",
               "severity")
SEVERITIES = ("error", "warn")
HOOK_KEYS = ("hook", "events", "timeout")
EVENT_KINDS: tuple[str, ...] = typing.get_args(EventKind)


class _Entry(msgspec.Struct):
    """A registered plugin: loaded class, or a way to load it, and where it came from."""

    origin: str
    load: Callable[[], Any] | None = None
    cls: type | None = None


class Registry:
    """Plugins by kind and name; entry-point plugins are imported on first use."""

    def __init__(self) -> None:
        self._entries: dict[Kind, dict[str, _Entry]] = {"check": {}, "recovery": {}, "hook": {}}

    def names(self, kind: Kind) -> list[str]:
        return sorted(self._entries[kind])

    def origin(self, kind: Kind, name: str) -> str:
        return self._entries[kind][name].origin

    def add_class(self, kind: Kind, cls: type, origin: str) -> None:
        """Register an already imported class (procfile paths, tests)."""
        validate_class(kind, cls, cls.name if isinstance(getattr(cls, "name", None), str) else "?")
        self._claim(kind, cls.name, _Entry(origin, cls=cls))

    def add_lazy(self, kind: Kind, name: str, load: Callable[[], Any], origin: str) -> None:
        self._claim(kind, name, _Entry(origin, load=load))

    def _claim(self, kind: Kind, name: str, entry: _Entry) -> None:
        if name in self._entries[kind]:
            raise PluginError(f"{kind} '{name}' from {entry.origin} is already provided by {self.origin(kind, name)}")
        self._entries[kind][name] = entry

    def get(self, kind: Kind, name: str, file: str, key: str) -> type:
        """The class for `name`, importing it now if needed; ConfigError at `key` if unknown or broken."""
        entry = self._entries[kind].get(name)
        if entry is None:
            known = ", ".join(self.names(kind)) or "none installed"
            raise ConfigError(file, key, f"unknown {kind} plugin '{name}'{did_you_mean(name, self.names(kind))}; known: {known}")
        if entry.cls is None:
            try:
                cls = entry.load()  # type: ignore[misc]
                validate_class(kind, cls, name)
            except Exception as e:  # noqa: BLE001 -- any import failure is reported, not raised through
                raise ConfigError(file, key, f"plugin {entry.origin} failed to load: {type(e).__name__}: {e}") from e
            entry.cls = cls
        return entry.cls


def validate_class(kind: Kind, cls: Any, name: str) -> None:
    """Catch a malformed plugin at load time, not at its first check an hour later."""
    base = BASES[kind]
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise PluginError(f"{cls!r} is not a subclass of supervisor.plugin.{base.__name__}")
    if getattr(cls, "name", None) != name:
        raise PluginError(f"{cls.__qualname__}.name is {getattr(cls, 'name', None)!r}, expected {name!r}")
    options = getattr(cls, "Options", None)
    if not (isinstance(options, type) and issubclass(options, msgspec.Struct)):
        raise PluginError(f"{cls.__qualname__}.Options must be a msgspec.Struct subclass")
    method = getattr(cls, METHODS[kind])
    if method is getattr(base, METHODS[kind]):
        raise PluginError(f"{cls.__qualname__} does not implement {METHODS[kind]}()")
    if cls.blocking == inspect.iscoroutinefunction(method):
        want = "a plain def" if cls.blocking else "an async def"
        raise PluginError(f"{cls.__qualname__}.{METHODS[kind]} must be {want} (blocking = {cls.blocking})")


def load_registry(plugin_paths: Sequence[str], base_dir: Path, file: str = "procfile.toml",
                  entry_points: Iterable[importlib.metadata.EntryPoint] | None = None) -> Registry:
    """All plugins visible to one procfile: installed entry points plus its `plugin_paths`.

    `entry_points` replaces the installed ones (tests inject a registry this way).
    """
    import importlib.metadata  # here: it costs the master ~2 MiB, and only fleets with plugins need it

    registry = Registry()
    eps = importlib.metadata.entry_points(group=GROUP) if entry_points is None else entry_points
    for ep in eps:
        kind, _, name = ep.name.partition(".")
        origin = f"entry point '{ep.name} = {ep.value}'" + (f" ({ep.dist.name})" if ep.dist else "")
        if kind not in BASES or not name:
            log.warning("ignoring %s: its name must be check.NAME, recovery.NAME or hook.NAME", origin)
            continue
        try:
            registry.add_lazy(kind, name, ep.load, origin)  # type: ignore[arg-type]
        except PluginError as e:
            log.warning("ignoring %s", e)
    for i, raw in enumerate(plugin_paths):
        key = f"supervisor.plugin_paths[{i}]"
        path = (base_dir / raw).resolve()
        if path.is_dir():
            files = sorted(p for p in path.glob("*.py") if not p.name.startswith("_"))
        elif path.is_file():
            files = [path]
        else:
            raise ConfigError(file, key, f"no such file or folder: {path}")
        for source in files:
            try:
                for kind, cls in _classes_in(_import_file(source)):
                    registry.add_class(kind, cls, f"path {source}")
            except Exception as e:  # noqa: BLE001 -- a broken plugin file is a procfile error
                raise ConfigError(file, key, f"plugin {source} failed to load: {type(e).__name__}: {e}") from e
    return registry


def _import_file(path: Path) -> Any:
    """Import a plugin file under a unique module name so two procfiles' `checks.py` never collide."""
    import hashlib  # here, not at the top: it maps libcrypto (~650 KiB of RSS) into masters without plugin files

    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    name = f"supctl_plugin_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # msgspec resolves the Options annotations through sys.modules
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _classes_in(module: Any) -> list[tuple[Kind, type]]:
    found: list[tuple[Kind, type]] = []
    for obj in vars(module).values():
        if isinstance(obj, type) and obj.__module__ == module.__name__ and "name" in vars(obj):
            for kind, base in BASES.items():
                if issubclass(obj, base):
                    found.append((kind, obj))
    return found


def parse_health(file: str, bot: str, raw: list[dict[str, Any]], registry: Registry) -> list[HealthSpec]:
    """Validate every `[[bots.BOT.health]]` table now, so a typo fails `validate`, not a 3 a.m. check."""
    if not isinstance(raw, list):
        raise ConfigError(file, f"bots.{bot}.health", "expected an array of tables ([[bots.NAME.health]])")
    specs, errors = [], []
    for i, table in enumerate(raw):
        try:
            specs.append(_health_spec(file, bot, i, table, registry))
        except ConfigError as e:
            errors.append(e)
        except ConfigErrors as e:
            errors.extend(e.errors)
    if errors:
        raise ConfigErrors(errors)
    return specs


def _health_spec(file: str, bot: str, index: int, table: Any, registry: Registry) -> HealthSpec:
    key = f"bots.{bot}.health[{index}]"
    if not isinstance(table, dict):
        raise ConfigError(file, key, "expected a table")
    name = table.get("check")
    if not isinstance(name, str):
        raise ConfigError(file, f"{key}.check", "is required: the name of a health-check plugin")
    cls = registry.get("check", name, file, f"{key}.check")
    common = {k: table[k] for k in HEALTH_KEYS if k in table}
    options = {k: v for k, v in table.items() if k not in HEALTH_KEYS}
    every = _duration(file, f"{key}.every", common.get("every", "10s"))
    timeout = _duration(file, f"{key}.timeout", common.get("timeout", "5s"))
    failures = common.get("failures", 3)
    if not isinstance(failures, int) or isinstance(failures, bool) or failures < 1:
        raise ConfigError(file, f"{key}.failures", f"expected a whole number >= 1, found {failures!r}")
    start_period = _duration(file, f"{key}.start_period", common.get("start_period", "0s"), zero=True)
    initial_delay = _duration(file, f"{key}.initial_delay", common.get("initial_delay", "0s"), zero=True)
    severity = common.get("severity", "error")
    if severity not in SEVERITIES:
        raise ConfigError(file, f"{key}.severity", f"expected \"error\" or \"warn\", found {severity!r}")
    if severity == "warn" and "recover" in common:
        raise ConfigError(file, f"{key}.recover", "a check with severity = \"warn\" only reports; it never recovers")
    make_check = _factory(file, key, cls, options, registry, HEALTH_KEYS)
    recover = None
    if "recover" in common:
        recover = RecoverySpec(
            label=_label(common["recover"]),
            create=build_recovery(file, f"{key}.recover", common["recover"], registry),
            timeout=_duration(file, f"{key}.recover_timeout", common.get("recover_timeout", "60s")),
        )
    return HealthSpec(index=index, key=key, check=name, create=make_check, every=every, timeout=timeout,
                      failures=failures, recover=recover, start_period=start_period, initial_delay=initial_delay,
                      severity=severity)


def parse_hooks(file: str, raw: list[dict[str, Any]], registry: Registry, key: str = "supervisor.hooks") -> list[HookSpec]:
    """Validate `[[supervisor.hooks]]` tables: `hook` (name), `events` (default all), `timeout`, options."""
    specs: list[HookSpec] = []
    for i, table in enumerate(raw):
        sub = f"{key}[{i}]"
        if not isinstance(table, dict) or not isinstance(table.get("hook"), str):
            raise ConfigError(file, f"{sub}.hook", "is required: the name of an event-hook plugin")
        cls = registry.get("hook", table["hook"], file, f"{sub}.hook")
        events = table.get("events")
        if events is not None and not (isinstance(events, list) and all(isinstance(e, str) for e in events)):
            raise ConfigError(file, f"{sub}.events", f"expected an array of event names, found {events!r}")
        for j, event in enumerate(events or []):
            if event not in EVENT_KINDS:
                raise ConfigError(file, f"{sub}.events[{j}]", f"unknown event '{event}'{did_you_mean(event, EVENT_KINDS)};"
                                  f" known: {', '.join(EVENT_KINDS)}")
        options = {k: v for k, v in table.items() if k not in HOOK_KEYS}
        specs.append(HookSpec(name=table["hook"], create=_factory(file, sub, cls, options, registry, HOOK_KEYS),
                              events=frozenset(events) if events is not None else None,
                              timeout=_duration(file, f"{sub}.timeout", table.get("timeout", "5s"))))
    return specs


def build_recovery(file: str, key: str, raw: Any, registry: Registry) -> Callable[[], Recovery]:
    """A factory for the recovery `raw` names: "name", `{ name = "...", ...options }`, or a list run in order."""
    if isinstance(raw, list):
        if not raw:
            raise ConfigError(file, key, "expected at least one recovery")
        parts = [build_recovery(file, f"{key}[{i}]", item, registry) for i, item in enumerate(raw)]
        return lambda: InOrder([make() for make in parts])
    if isinstance(raw, str):
        name, options = raw, {}
    elif isinstance(raw, dict) and isinstance(raw.get("name"), str):
        name, options = raw["name"], {k: v for k, v in raw.items() if k != "name"}
    else:
        raise ConfigError(file, key, f"expected a recovery name, a table with `name`, or an array of them, found {raw!r}")
    cls = registry.get("recovery", name, file, f"{key}.name" if isinstance(raw, dict) else key)
    make = _factory(file, key, cls, options, registry, ("name",))
    return (lambda: Threaded(make())) if cls.blocking else make  # type: ignore[attr-defined]


def _factory(file: str, key: str, cls: Any, raw: dict[str, Any], registry: Registry,
             common: Sequence[str]) -> Callable[[], Any]:
    """Validate options once; the returned factory gives each bot instance its own plugin object."""
    refs = {name: _refs(file, f"{key}.{name}", raw[name], many, registry)
            for name, many in recovery_fields(cls.Options).items() if name in raw}
    options = convert_options(file, key, cls.Options, {**raw, **refs}, common)
    try:
        cls(options)
    except (ValueError, TypeError) as e:
        raise ConfigError(file, key, str(e)) from e
    except Exception as e:  # a plugin that cannot be built is a procfile error, never an internal one
        raise ConfigError(file, key, f"{cls.__qualname__} cannot be built: {type(e).__name__}: {e}") from e
    return lambda: cls(options)


def _refs(file: str, key: str, raw: Any, many: bool, registry: Registry) -> RecoveryRef | list[RecoveryRef]:
    if not many:
        return RecoveryRef(_label(raw), build_recovery(file, key, raw, registry))
    if not isinstance(raw, list):
        raise ConfigError(file, key, f"expected an array of recoveries, found {raw!r}")
    return [RecoveryRef(_label(item), build_recovery(file, f"{key}[{i}]", item, registry)) for i, item in enumerate(raw)]


def _label(raw: Any) -> str:
    if isinstance(raw, list):
        return " + ".join(_label(r) for r in raw)
    return str(raw.get("name") if isinstance(raw, dict) else raw)


def _duration(file: str, key: str, value: Any, zero: bool = False) -> float:
    try:
        seconds = float(Duration(value)) if isinstance(value, str) else None
    except ValueError as e:
        raise ConfigError(file, key, str(e)) from e
    if seconds is None or seconds < 0 or (seconds == 0 and not zero):
        want = "a duration like '30s' (or '0s')" if zero else "a positive duration like '10s'"
        raise ConfigError(file, key, f"expected {want}, found {value!r}")
    return seconds


__all__ = ["GROUP", "Registry", "build_recovery", "load_registry", "parse_health", "parse_hooks", "validate_class"]
