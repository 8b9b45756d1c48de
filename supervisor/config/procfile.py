"""The procfile schema as msgspec Structs: load, validate, merge [defaults]."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path
from typing import Any, Literal

import msgspec

from ..bus.topics import check_pattern
from ..core.commands import parse_signal
from ..core.errors import BusError, ConfigError, ConfigErrors
from ..core.units import Duration
from . import limits
from .common import Command, LogConfig, Struct
from .fleet import FleetConfig, check_fleet
from .hints import unknown_bot_key
from .http import HttpConfig, check_http
from .nats import NatsConfig, check_nats
from .paths import log_name
from .schedules import Cron, zone
from .tables import convert_table, describe, did_you_mean
from .tasks import TaskConfig, parse_tasks
from .watching import watch_problems


class BackoffConfig(Struct):
    initial: Duration = Duration("100ms")
    factor: float = 2.0
    max: Duration = Duration("30s")
    jitter: float = 0.1


class RestartLimit(Struct):
    count: int = 10
    window: Duration = Duration("5m")


class BusAccess(Struct):
    """A bot's NATS-style allow lists on the bus (patterns); a list left out is open, an empty one allows nothing."""

    publish: list[str] | None = None
    subscribe: list[str] | None = None
    serve: list[str] | None = None


class SupervisorConfig(Struct):
    state_dir: str = ".supctl"
    log: LogConfig = LogConfig()
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """The master's own log; SUPCTL_LOGLEVEL overrides it. DEBUG adds every health-check run and bus connect."""
    timezone: str = "UTC"
    reload_on_change: bool = False
    plugin_paths: list[str] = []
    hooks: list[dict[str, Any]] = []
    containment: Literal["auto", "cgroup", "subreaper"] = "auto"


class BotConfig(Command):
    env_file: str | None = None
    instances: int = 1
    autostart: bool = True
    restart: Literal["always", "on-failure", "never"] = "on-failure"
    success_codes: list[int] = msgspec.field(default_factory=lambda: [0])
    backoff: BackoffConfig = BackoffConfig()
    restart_limit: RestartLimit = RestartLimit()
    start_grace: Duration = Duration("1s")
    stop_signal: str | int = "TERM"
    stop_timeout: Duration = Duration("10s")
    depends_on: list[str] = []
    log: LogConfig | None = None
    restart_cron: str | None = None
    watch: list[str] = []
    watch_ignore: list[str] = []
    health: list[dict[str, Any]] = []
    start_timeout: Duration = Duration("60s")
    kill_switch: bool = True
    """Stopped, and kept from starting, while the kill switch is active."""
    bus: BusAccess = BusAccess()

    def signum(self) -> signal.Signals:
        return parse_signal(self.stop_signal)


class BusConfig(Struct):
    nats: NatsConfig | None = None
    """Bridge this master's bus to NATS (docs/fleet.md); without it nothing of NATS is loaded."""
    checkpoints: int = 3
    """How many checkpoints the master keeps per instance (docs/bus.md, "Checkpoints"); older ones are pruned."""
    persist: list[str] = []
    """Topic patterns whose retained values the master keeps in state_dir across restarts (docs/bus.md)."""


class Procfile(Struct):
    file: str
    supervisor: SupervisorConfig
    bots: dict[str, BotConfig]
    tasks: dict[str, TaskConfig] = {}
    http: HttpConfig | None = None
    env_files: dict[str, dict[str, str]] = {}
    bus: BusConfig = BusConfig()
    fleet: FleetConfig = FleetConfig()

    @property
    def base_dir(self) -> Path:
        return Path(self.file).parent

    @property
    def state_dir(self) -> Path:
        return (self.base_dir / self.supervisor.state_dir).resolve()

    def bot_env(self, name: str) -> dict[str, str]:
        """The env_file's values under the bot's own `env` (env wins)."""
        return {**self.env_files.get(name, {}), **self.bots[name].env}

    def bot_cwd(self, name: str) -> Path:
        return self.cwd_of(self.bots[name])

    def cwd_of(self, command: Command) -> Path:
        return _cwd(self.file, command)

    def http_token_path(self) -> Path:
        """[http] token_file relative to the procfile, or the generated one in state_dir."""
        cfg = self.http or HttpConfig()
        return (self.base_dir / cfg.token_file).resolve() if cfg.token_file else self.state_dir / "http.token"

    def log_config(self, name: str) -> LogConfig:
        return self.bots[name].log or self.supervisor.log

    def start_order(self) -> list[str]:
        """Bots ordered so that every dependency comes before its dependents."""
        order: list[str] = []
        seen: set[str] = set()

        def visit(n: str) -> None:
            if n in seen:
                return
            seen.add(n)
            for d in self.bots[n].depends_on:
                visit(d)
            order.append(n)

        for n in self.bots:
            visit(n)
        return order


TOP_KEYS = ("supervisor", "defaults", "bots", "tasks", "http", "bus", "fleet")
NOT_DEFAULTABLE = frozenset({"cmd", "depends_on", "restart_cron", "watch", "watch_ignore", "health"})
NESTED = ("backoff", "restart_limit", "log", "env", "bus")
_BOT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
TOO_DEEP = f"arrays or tables nested more than {limits.MAX_DEPTH} levels deep; a procfile needs a few"
RESERVED_BOT_NAMES = frozenset({"supctl"})
"""The master's own identity on the bus (and in supctl.* topics): no bot may take it."""


def parse_dotenv(path: Path) -> dict[str, str]:
    from dotenv import dotenv_values

    return {k: v or "" for k, v in dotenv_values(path).items()}


def load(path: str | os.PathLike[str]) -> Procfile:
    """Read and validate a procfile; raises ConfigErrors listing every problem found."""
    file = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ConfigErrors([ConfigError(file, "", f"cannot read: {e.strerror or e}")]) from None
    return loads(data, file)


def loads(data: bytes | str, file: str) -> Procfile:
    errors: list[ConfigError] = []
    try:
        if isinstance(data, bytes):
            data = data.decode("utf-8")
        raw = msgspec.toml.decode(data)
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise ConfigErrors([ConfigError(file, "", f"not UTF-8 text: byte 0x{data[e.start]:02x} is invalid", line, col)]) from None
    except RecursionError:
        raise ConfigErrors([ConfigError(file, "", TOO_DEEP)]) from None
    except msgspec.DecodeError as e:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(e))
        line, col = (int(m.group(1)), int(m.group(2))) if m else (None, None)
        if m is None and "(at end of document)" in str(e):
            lines = data.rstrip("\n").split("\n")
            line, col = len(lines), len(lines[-1]) + 1
        raise ConfigErrors([ConfigError(file, "", f"TOML syntax error: {str(e).split(' (at')[0]}", line, col)]) from None
    deep = limits.too_deep(raw)
    if deep is not None:
        raise ConfigErrors([ConfigError(file, deep, TOO_DEEP)])
    for key in raw:
        if key not in TOP_KEYS:
            errors.append(ConfigError(file, key, f"unknown section{did_you_mean(key, TOP_KEYS)}; expected one of {', '.join(TOP_KEYS)}"))
    sup = convert_table(raw.get("supervisor", {}), SupervisorConfig, file, "supervisor", errors) or SupervisorConfig()
    _check_log(file, "supervisor.log", sup.log, errors)
    try:
        zone(sup.timezone)
    except ValueError as e:
        errors.append(ConfigError(file, "supervisor.timezone", str(e)))
    http = None
    if "http" in raw:
        http = convert_table(raw["http"], HttpConfig, file, "http", errors)
        if http is not None:
            check_http(file, http, errors)
    defaults = _check_defaults(raw.get("defaults", {}), file, errors)
    bots_raw = raw.get("bots", {})
    bots: dict[str, BotConfig] = {}
    partial: dict[str, BotConfig] = {}
    """Every bot a table could be made of, errors or not: their health tables still get checked (one pass)."""
    env_files: dict[str, dict[str, str]] = {}
    if not isinstance(bots_raw, dict):
        errors.append(ConfigError(file, "bots", f"expected a table of [bots.NAME] tables, found {describe(bots_raw)}"))
        bots_raw = {}
    for name, table in bots_raw.items():
        key = f"bots.{name}"
        if not _BOT_NAME.match(name):
            errors.append(ConfigError(file, key, "bot names use letters, digits, '_', '-' and '.' only"))
            continue
        if name in RESERVED_BOT_NAMES:
            errors.append(ConfigError(file, key, f"the name {name!r} is reserved for the master (its bus identity); rename the bot"))
            continue
        merged = merge(defaults, table) if isinstance(table, dict) else table
        found = len(errors)
        bot = convert_table(merged, BotConfig, file, key, errors, partial=True, unknown=unknown_bot_key)
        if bot is None:
            continue
        partial[name] = bot
        for sub, message in watch_problems(_cwd(file, bot), bot.watch, bot.watch_ignore):
            errors.append(ConfigError(file, f"{key}.{sub}", message))
        if _check_bot(file, key, bot, errors) and len(errors) == found:
            bots[name] = bot
        if bot.env_file:  # checked even for a bot with other errors: every error in one pass
            env_path = Path(file).parent / bot.env_file
            try:
                env_files[name] = parse_dotenv(env_path) if env_path.is_file() else _missing(file, key, env_path, errors)
            except (OSError, ValueError, UnicodeDecodeError) as e:
                errors.append(ConfigError(file, f"{key}.env_file", f"cannot read {env_path}: {e}"))
    _check_dependencies(file, bots_raw, errors)
    tasks = parse_tasks(raw.get("tasks", {}), file, errors, set(bots_raw))
    total = sum(b.instances for b in bots.values())
    if total > limits.MAX_INSTANCES:
        errors.append(ConfigError(file, "bots", f"expected at most {limits.MAX_INSTANCES:,} instances in all, found {total:,}"))
    else:
        _check_log_names(file, bots, tasks, errors)
    bus = convert_table(raw.get("bus", {}), BusConfig, file, "bus", errors, partial=True) or BusConfig()
    limits.check_ranges(file, "bus", bus, limits.BUS, errors)
    _check_patterns(file, "bus.persist", bus.persist, errors)
    if bus.nats is not None:
        errors.extend(check_nats(file, bus.nats))
    fleet = convert_table(raw.get("fleet", {}), FleetConfig, file, "fleet", errors) or FleetConfig()
    errors.extend(check_fleet(file, fleet, list(bots_raw)))
    if errors:
        raise ConfigErrors(errors, Procfile(file=str(Path(file).resolve()), supervisor=sup, bots=partial, tasks=tasks,
                                            http=http, bus=bus))
    if not bots:
        raise ConfigErrors([ConfigError(file, "bots", "no bots defined; add at least one [bots.NAME] table with a cmd")])
    return Procfile(file=str(Path(file).resolve()), supervisor=sup, bots=bots, tasks=tasks, http=http, env_files=env_files,
                    bus=bus, fleet=fleet)


def _check_log_names(file: str, bots: dict[str, BotConfig], tasks: dict[str, Any], errors: list[ConfigError]) -> None:
    """Two writers must never share a log file: `x` with 2 instances and a bot `x-1`, or a bot named `supervisor`."""
    owners: dict[str, str] = {"supervisor.log": "the master's own log"}
    for name, bot in bots.items():
        for k in range(bot.instances):
            owners.setdefault(log_name(name, k, bot.instances), f"bots.{name}")
    for name, bot in bots.items():
        for k in range(bot.instances):
            owner = owners[log_name(name, k, bot.instances)]
            if owner != f"bots.{name}":
                errors.append(ConfigError(file, f"bots.{name}", f"its log file {log_name(name, k, bot.instances)} would be shared with {owner}; rename the bot"))
                break
    for name in tasks:
        if f"{name}.log" in owners:
            errors.append(ConfigError(file, f"tasks.{name}", f"its log file {name}.log would be shared with {owners[name + '.log']}; rename the task"))


def _cwd(file: str, command: Command) -> Path:
    base = Path(file).parent
    return (base / command.cwd).resolve() if command.cwd else base.resolve()


def _missing(file: str, key: str, path: Path, errors: list[ConfigError]) -> dict[str, str]:
    errors.append(ConfigError(file, f"{key}.env_file", f"expected an existing dotenv file, found no file at {path}"))
    return {}


def merge(defaults: dict[str, Any], table: dict[str, Any]) -> dict[str, Any]:
    """A bot table over [defaults]; nested tables (backoff, log, ...) merge key by key."""
    out = dict(defaults)
    for k, v in table.items():
        if k in NESTED and isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = {**out[k], **v}
        else:
            out[k] = v
    return out


def _check_defaults(raw: object, file: str, errors: list[ConfigError]) -> dict[str, Any]:
    before = len(errors)
    if not isinstance(raw, dict):
        errors.append(ConfigError(file, "defaults", f"expected a table, found {describe(raw)}"))
        return {}
    for k in NOT_DEFAULTABLE & raw.keys():
        errors.append(ConfigError(file, f"defaults.{k}", "is per bot and cannot be set under [defaults]"))
    probe = convert_table({**raw, "cmd": ["true"]}, BotConfig, file, "defaults", errors, ignore=NOT_DEFAULTABLE - {"cmd"},
                          partial=True, unknown=unknown_bot_key)
    if probe is not None:
        _check_bot(file, "defaults", probe, errors)
    return raw if len(errors) == before else {}


def _check_log(file: str, key: str, log: LogConfig, errors: list[ConfigError]) -> None:
    limits.check_ranges(file, key, log, limits.LOG, errors)


def _check_bot(file: str, key: str, bot: BotConfig, errors: list[ConfigError]) -> bool:
    before = len(errors)
    limits.check_ranges(file, key, bot, limits.BOT, errors)
    limits.check_success_codes(file, key, bot.success_codes, errors)
    try:
        if not bot.argv():
            errors.append(ConfigError(file, f"{key}.cmd", "expected a command, found an empty one"))
    except ValueError as e:
        errors.append(ConfigError(file, f"{key}.cmd", f"cannot split the command string: {e}"))
    try:
        bot.signum()
    except ValueError as e:
        errors.append(ConfigError(file, f"{key}.stop_signal", str(e)))
    if bot.log is not None:
        _check_log(file, f"{key}.log", bot.log, errors)
    for verb in ("publish", "subscribe", "serve"):
        _check_patterns(file, f"{key}.bus.{verb}", getattr(bot.bus, verb) or [], errors)
    if bot.restart_cron is not None:
        try:
            Cron(bot.restart_cron)
        except ValueError as e:
            errors.append(ConfigError(file, f"{key}.restart_cron", str(e)))
    return len(errors) == before


def _check_patterns(file: str, key: str, patterns: list[str], errors: list[ConfigError]) -> None:
    for i, pattern in enumerate(patterns):
        try:
            check_pattern(pattern)
        except BusError as e:
            errors.append(ConfigError(file, f"{key}[{i}]", str(e)))


def _check_dependencies(file: str, raw_bots: dict[str, Any], errors: list[ConfigError]) -> None:
    """Unknown dependencies and cycles, judged on the raw tables so a bot with other errors still gets these."""
    names = tuple(raw_bots)
    deps = {n: [d for d in t.get("depends_on", []) if isinstance(d, str)]
            for n, t in raw_bots.items() if isinstance(t, dict) and isinstance(t.get("depends_on", []), list)}
    for name, wanted in deps.items():
        for i, dep in enumerate(wanted):
            if dep not in raw_bots:
                errors.append(ConfigError(file, f"bots.{name}.depends_on[{i}]", f"unknown bot '{dep}'{did_you_mean(dep, names)}"))
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for dep in deps[n]:
            if dep not in deps:
                continue
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep):] + [dep]
                errors.append(ConfigError(file, f"bots.{n}.depends_on", f"dependency cycle: {' -> '.join(cycle)}"))
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[n] = 2

    for n in deps:
        if n not in state:
            visit(n)
