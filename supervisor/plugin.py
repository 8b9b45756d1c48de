"""The public plugin API: the only supctl module a health check, recovery or event hook imports.

Plugins get a frozen view of one bot instance (plain values, never a live
psutil.Process) and, for recoveries, a narrow control handle -- never the master --
so a plugin cannot reach into state it does not own (circus hooks could, and that
is how they broke).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, ClassVar, Literal, Protocol

import msgspec

from .core.backoff import backoff_delay
from .core.commands import parse_signal, split_argv
from .core.units import Duration, Size, format_size

__all__ = [
    "BotControl", "BusView", "CheckContext", "Duration", "EventHook", "EventKind", "HealthCheck", "NoOptions",
    "ProcessEvent", "ProcessInfo", "Recovery", "RecoveryContext", "RecoveryRef", "RecoverySkipped", "Result", "Size",
    "backoff_delay", "format_size", "parse_signal", "split_argv",
]


class Result(msgspec.Struct, frozen=True):
    """What one check call found."""

    healthy: bool
    reason: str = ""

    @classmethod
    def ok(cls, reason: str = "ok") -> Result:
        return cls(True, reason)

    @classmethod
    def fail(cls, reason: str) -> Result:
        return cls(False, reason)


class BusView(Protocol):
    """The slice of the message bus a check may read."""

    def last_publish_time(self, bot: str, topic: str, instance: int | None = None) -> float | None:
        """time.monotonic() of the last publish on topic by that instance of the bot (None: by any instance), or None
        if it never did."""
        ...


class BotControl(Protocol):
    """What a recovery may do to the bot instance it acts on; the master implements it."""

    async def restart(self, reason: str) -> None: ...
    async def stop(self, reason: str) -> None: ...
    def signal(self, signum: int) -> None: ...
    async def restart_dependents(self, reason: str) -> None: ...
    def mark_degraded(self, reason: str) -> None: ...
    def clear_degraded(self, reason: str) -> None: ...


class ProcessInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One process of an instance's tree, as read just before the plugin call."""

    pid: int
    ppid: int
    name: str
    rss: int
    """Resident memory in bytes."""
    cpu_user: float
    cpu_system: float
    """CPU seconds consumed so far."""


def _no_lines(n: int) -> list[str]:
    return []


class CheckContext(msgspec.Struct, frozen=True, kw_only=True):
    """A read-only snapshot of one bot instance, taken just before the plugin runs."""

    bot: str
    instance: int
    pid: int | None
    state: str
    logger: logging.Logger
    processes: tuple[ProcessInfo, ...] = ()
    """The instance's process first, then its descendants; empty when no process runs."""
    bus: BusView | None = None
    lines: Callable[[int], list[str]] = _no_lines
    cwd: str | None = None
    """The instance's working directory (its `cwd`, or the procfile's directory): where its relative paths point."""

    def last_lines(self, n: int) -> list[str]:
        """The instance's last n output lines (stdout and stderr interleaved), oldest first."""
        return self.lines(n)

    def tree(self) -> tuple[ProcessInfo, ...]:
        """The instance's process and all its descendants: a bot's real footprint includes its workers."""
        return self.processes

    def tree_rss(self) -> int:
        """Resident memory of the whole tree in bytes (pm2's max_memory_restart counts only the parent)."""
        return sum(p.rss for p in self.processes)

    def tree_cpu_seconds(self) -> float:
        """User+system CPU seconds consumed so far by the processes of the tree."""
        return sum(p.cpu_user + p.cpu_system for p in self.processes)


class RecoveryContext(CheckContext, frozen=True, kw_only=True):
    """A check context plus the control handle a recovery acts through."""

    control: BotControl


class RecoverySkipped(Exception):
    """Raised by a recovery that decided to do nothing (a circuit breaker that is open).

    `supctl health` then shows the message (e.g. "circuit open, recovery skipped") instead of "recovered".
    """


class NoOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The options of a plugin that takes none: any key in its table is an error."""


class _Plugin:
    """Shared shape: a name, an Options Struct checked at load time, and an optional thread mode."""

    name: ClassVar[str]
    Options: ClassVar[type[msgspec.Struct]] = NoOptions
    """Omit it for a plugin without options."""
    blocking: ClassVar[bool] = False
    """True: the plugin's method is a plain `def` that may block; it runs in its own thread."""

    def __init__(self, options: Any) -> None:
        self.options = options

    async def close(self) -> None:
        """Release clients or sockets; called when the instance's runner stops."""


class HealthCheck(_Plugin):
    """Subclass and implement `check`; return Result.fail(reason) rather than raising when you can."""

    async def check(self, ctx: CheckContext) -> Result:
        raise NotImplementedError


class Recovery(_Plugin):
    """Subclass and implement `recover`; raising marks the recovery as failed in the health history."""

    async def recover(self, ctx: RecoveryContext, failure: str) -> None:
        raise NotImplementedError

    def check_passed(self, ctx: RecoveryContext) -> None:
        """Told each time the check this recovery serves passes (a policy may close a circuit); must not block."""


EventKind = Literal["started", "exited", "backoff", "fatal", "stopped", "health_changed"]


class ProcessEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One transition of one bot instance, as the master reports it to event hooks."""

    kind: EventKind
    bot: str
    instance: int
    pid: int | None = None
    time: float = msgspec.field(default_factory=time.time)
    reason: str = ""
    exit_code: int | None = None
    health: str | None = None
    """For health_changed: healthy, unhealthy, starting, unknown or degraded."""
    warnings: tuple[str, ...] = ()
    """For health_changed: the failing checks with severity = "warn" ("disk: 1GB free < min 5GB")."""


class EventHook(_Plugin):
    """Subclass and implement `on_event`; hooks are told about transitions, they cannot act on bots."""

    async def on_event(self, event: ProcessEvent) -> None:
        raise NotImplementedError


class RecoveryRef:
    """A recovery named inside another recovery's options (circuit_breaker.recover, escalate.steps).

    Annotate an option as `RecoveryRef` or `list[RecoveryRef]`; the loader validates the
    nested name and options (a name, a table `{ name = ..., ... }` or a list run in order)
    and hands you this. Call `create()` once in your __init__ so each instance has its own state.
    """

    def __init__(self, label: str, factory: Callable[[], Recovery]) -> None:
        self.label = label
        self._factory = factory

    def create(self) -> Recovery:
        return self._factory()

    def __repr__(self) -> str:
        return f"RecoveryRef({self.label!r})"
