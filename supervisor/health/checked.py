"""One instance as the health runner sees it: a fresh read-only context and a narrow control handle.

Imported only for a bot with health checks (root.add_bot): the runner, the process tree and the plugin context
are not loaded by a fleet without any."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from ..core.states import State
from ..engine.instance import Instance, Transition
from ..output.rotating import tail_lines
from ..plugin import BotControl, BusView, CheckContext, Result
from .runner import HealthRunner, HealthStatus
from .specs import HealthSpec
from .tree import ProcessTree

HealthChange = Callable[[Instance, str, str, tuple[str, ...]], None]
"""Told (instance, state, reason, warnings) when an instance's health changes; the master publishes it."""


class InstanceHealth:
    """The InstanceTarget of one instance, the runner that checks it, and whether a policy marked it DEGRADED."""

    def __init__(self, inst: Instance, specs: list[HealthSpec], logger: logging.Logger, tree: ProcessTree,
                 bus: Callable[[], BusView | None], on_change: HealthChange,
                 stop: Callable[[Instance, str], Awaitable[None]],
                 restart_dependents: Callable[[str, str], Awaitable[None]]) -> None:
        self.inst = inst
        self.degraded: str | None = None
        """Set by a recovery (circuit breaker open) and cleared only by one (circuit closed), never by a passing check."""
        self._control = InstanceControl(self, stop, restart_dependents)
        self._logger = logger.getChild(f"health.{inst.bot}")
        self._tree = tree
        self._bus = bus
        self._on_change = on_change
        self._told: tuple[str, str, tuple[str, ...]] | None = None
        self.since: float | None = None
        """When the state last changed (epoch seconds), for `supctl status --json` and `describe`."""
        self.runner = HealthRunner(specs, self)

    def on_transition(self, t: Transition) -> None:
        """A process that is stopping or gone has no health; the next one starts from nothing on spawn."""
        if t.new not in (State.STARTING.value, State.RUNNING.value):
            self.runner.halt()

    async def context(self) -> CheckContext:
        inst = self.inst
        log_path = inst.log.path
        pid = inst.pid
        return CheckContext(bot=inst.bot, instance=inst.index, pid=pid, processes=await self._tree.snapshot(pid),
                            state=inst.state.value, logger=self._logger, bus=self._bus(),
                            lines=lambda n: tail_lines(log_path, n), cwd=str(inst.launch.cwd))

    def control(self) -> BotControl:
        return self._control

    def on_result(self, index: int, result: Result, when: float) -> None:
        """Results reach people through on_status and the runner's history."""

    def on_status(self, status: HealthStatus) -> None:
        self._tell()

    def mark_degraded(self, reason: str) -> None:
        self.degraded = reason
        self._logger.warning("%s marked DEGRADED: %s", self.inst.name, reason)
        self._tell()

    def clear_degraded(self, reason: str) -> None:
        if self.degraded is None:
            return
        self.degraded = None
        self._logger.warning("%s no longer DEGRADED: %s", self.inst.name, reason)
        self._tell()

    def summary(self) -> tuple[str, str, tuple[str, ...]]:
        """(state, reason, warnings): DEGRADED wins over the checks' aggregate."""
        status = self.runner.status()
        if self.degraded is not None:
            return "degraded", self.degraded, tuple(status.warnings)
        return status.state, status.reason, tuple(status.warnings)

    def _tell(self) -> None:
        state, reason, warnings = self.summary()
        told = (state, self.degraded or "", tuple(c.key for c in self.runner.status().checks if c.state == "warning"))
        if told != self._told:
            if self._told is None or told[0] != self._told[0]:
                self.since = time.time()
            self._told = told
            self._on_change(self.inst, state, reason, warnings)


class InstanceControl:
    """BotControl for one instance: a restart is the instance's own health restart (counted, in the budget)."""

    def __init__(self, health: InstanceHealth, stop: Callable[[Instance, str], Awaitable[None]],
                 restart_dependents: Callable[[str, str], Awaitable[None]]) -> None:
        self._health = health
        self._inst = health.inst
        self._stop = stop
        self._restart_dependents = restart_dependents

    async def restart(self, reason: str) -> None:
        await self._inst.recycle(f"health: {reason}")

    async def stop(self, reason: str) -> None:
        await self._stop(self._inst, f"health: {reason}")

    def signal(self, signum: int) -> None:
        self._inst.send_signal(signum)

    async def restart_dependents(self, reason: str) -> None:
        await self._restart_dependents(self._inst.bot, f"health of {self._inst.name}: {reason}")

    def mark_degraded(self, reason: str) -> None:
        self._health.mark_degraded(reason)

    def clear_degraded(self, reason: str) -> None:
        self._health.clear_degraded(reason)
