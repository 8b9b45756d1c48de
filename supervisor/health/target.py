"""One instance as the health runner sees it: a fresh read-only context and a narrow control handle."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import psutil

from ..engine.instance import Instance
from ..output.rotating import tail_lines
from ..plugin import BotControl, BusView, CheckContext, Result
from .runner import HealthRunner
from .specs import HealthSpec


class InstanceControl:
    """BotControl for one instance: every action goes through the master's own entry points."""

    def __init__(self, inst: Instance, restart: Callable[[Instance, str], Awaitable[None]],
                 stop: Callable[[Instance, str], Awaitable[None]],
                 restart_dependents: Callable[[str, str], Awaitable[None]], logger: logging.Logger) -> None:
        self._inst = inst
        self._restart = restart
        self._stop = stop
        self._restart_dependents = restart_dependents
        self._logger = logger

    async def restart(self, reason: str) -> None:
        await self._restart(self._inst, reason)

    async def stop(self, reason: str) -> None:
        await self._stop(self._inst, reason)

    def signal(self, signum: int) -> None:
        self._inst.send_signal(signum)

    async def restart_dependents(self, reason: str) -> None:
        await self._restart_dependents(self._inst.bot, reason)

    def mark_degraded(self, reason: str) -> None:
        self._inst.degraded = reason
        self._logger.warning("%s marked DEGRADED: %s", self._inst.name, reason)


class InstanceHealth:
    """The InstanceTarget of health.py for one instance, and the runner that checks it."""

    def __init__(self, inst: Instance, specs: list[HealthSpec], control: BotControl, logger: logging.Logger,
                 bus: Callable[[], BusView | None], on_change: Callable[[Instance, str, str], None]) -> None:
        self.inst = inst
        self._control = control
        self._logger = logger.getChild(f"health.{inst.bot}")
        self._bus = bus
        self._on_change = on_change
        self._proc: psutil.Process | None = None
        self._state = "unknown"
        self.runner = HealthRunner(specs, self)

    def _process(self) -> psutil.Process | None:
        pid = self.inst.pid
        if pid is None:
            return None
        if self._proc is None or self._proc.pid != pid:
            try:
                self._proc = psutil.Process(pid)
            except psutil.Error:
                return None
        return self._proc

    def context(self) -> CheckContext:
        log_path = self.inst.log.path
        return CheckContext(bot=self.inst.bot, instance=self.inst.index, pid=self.inst.pid, process=self._process(),
                            state=self.inst.state.value, logger=self._logger, bus=self._bus(),
                            lines=lambda n: tail_lines(log_path, n))

    def control(self) -> BotControl:
        return self._control

    def on_result(self, index: int, result: Result, when: float) -> None:
        status = self.runner.status()
        if status.state != self._state:
            self._state = status.state
            if status.state == "healthy":
                self.inst.degraded = None
            self._on_change(self.inst, status.state, status.reason)


class HealthBoard:
    """Every instance's health runner, keyed by (bot, instance); the master adds and drops them with bots."""

    def __init__(self) -> None:
        self._by_bot: dict[str, list[InstanceHealth]] = {}

    def add(self, bot: str, checks: list[InstanceHealth]) -> None:
        self._by_bot[bot] = checks
        for c in checks:
            c.runner.start()

    async def drop(self, bot: str) -> None:
        for c in self._by_bot.pop(bot, []):
            await c.runner.stop()

    async def close(self) -> None:
        for bot in list(self._by_bot):
            await self.drop(bot)

    def has_checks(self, bot: str) -> bool:
        return bool(self._by_bot.get(bot))

    def of(self, inst: Instance) -> InstanceHealth | None:
        checks = self._by_bot.get(inst.bot, [])
        return checks[inst.index] if inst.index < len(checks) else None

    def describe(self, inst: Instance) -> str | None:
        """The status column: DEGRADED wins, then the aggregate state with its reason."""
        if inst.degraded:
            return f"DEGRADED: {inst.degraded}"
        checks = self.of(inst)
        if checks is None:
            return None
        status = checks.runner.status()
        return status.state if status.state == "healthy" else f"{status.state}: {status.reason}"

    async def wait_healthy(self, bot: str, timeout: float) -> bool:
        """Readiness for dependents: every instance's checks pass within `timeout`."""
        results = await asyncio.gather(*(c.runner.wait_healthy(timeout) for c in self._by_bot.get(bot, [])))
        return all(results)
