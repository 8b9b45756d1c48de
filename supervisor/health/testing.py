"""Test doubles for plugin authors (and supctl's own tests): a recording BotControl and a target.

Lets a plugin be exercised against a real process without a master.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
from collections.abc import Callable

from ..plugin import BusView, CheckContext, Result
from .runner import HealthStatus
from .tree import ProcessTree

BUNDLED = {
    "check.http": "supervisor.plugins.web:HttpCheck",
    "check.tcp": "supervisor.plugins.net:TcpCheck",
    "check.exec": "supervisor.plugins.commands:ExecCheck",
    "check.memory": "supervisor.plugins.resources:MemoryCheck",
    "check.cpu": "supervisor.plugins.resources:CpuCheck",
    "check.disk": "supervisor.plugins.resources:DiskCheck",
    "check.host": "supervisor.plugins.resources:HostCheck",
    "check.log_pattern": "supervisor.plugins.output:LogPattern",
    "check.bus_heartbeat": "supervisor.plugins.bus:BusHeartbeat",
    "recovery.restart": "supervisor.plugins.actions:Restart",
    "recovery.stop": "supervisor.plugins.actions:Stop",
    "recovery.signal": "supervisor.plugins.actions:Signal",
    "recovery.restart_dependents": "supervisor.plugins.actions:RestartDependents",
    "recovery.exec": "supervisor.plugins.commands:ExecRecovery",
    "recovery.webhook": "supervisor.plugins.web:Webhook",
    "recovery.circuit_breaker": "supervisor.plugins.policies:CircuitBreaker",
    "recovery.escalate": "supervisor.plugins.policies:Escalate",
}
"""The `[project.entry-points."supctl.plugins"]` table of pyproject.toml, for injecting before install."""


def bundled_entry_points() -> list[importlib.metadata.EntryPoint]:
    return [importlib.metadata.EntryPoint(name, value, "supctl.plugins") for name, value in BUNDLED.items()]


class RecordingControl:
    """A BotControl that records each call as (method, argument) and can signal when one arrives."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []
        self.changed = asyncio.Event()

    def _note(self, method: str, arg: object) -> None:
        self.calls.append((method, arg))
        self.changed.set()

    async def wait_for_calls(self, n: int, timeout: float) -> list[tuple[str, object]]:
        """Return once at least n calls were recorded; TimeoutError otherwise."""
        async with asyncio.timeout(timeout):
            while len(self.calls) < n:
                self.changed.clear()
                await self.changed.wait()
        return self.calls

    async def restart(self, reason: str) -> None:
        self._note("restart", reason)

    async def stop(self, reason: str) -> None:
        self._note("stop", reason)

    def signal(self, signum: int) -> None:
        self._note("signal", signum)

    async def restart_dependents(self, reason: str) -> None:
        self._note("restart_dependents", reason)

    def mark_degraded(self, reason: str) -> None:
        self._note("mark_degraded", reason)

    def clear_degraded(self, reason: str) -> None:
        self._note("clear_degraded", reason)


class FakeTarget:
    """An InstanceTarget over a real (or no) process, recording every result and status it is told."""

    def __init__(self, bot: str = "api", pid: int | None = None, *, state: str = "RUNNING",
                 lines: Callable[[int], list[str]] | None = None, bus: BusView | None = None,
                 cwd: str | None = None) -> None:
        self.bot = bot
        self.cwd = cwd
        self.pid = pid
        self.state = state
        self.lines = lines or (lambda n: [])
        self.bus = bus
        self.controller = RecordingControl()
        self.results: list[tuple[int, Result, float]] = []
        self.statuses: list[HealthStatus] = []
        self.logger = logging.getLogger(f"supctl.bot.{bot}")
        self._tree = ProcessTree()

    async def context(self) -> CheckContext:
        return CheckContext(bot=self.bot, instance=0, pid=self.pid, processes=await self._tree.snapshot(self.pid),
                            state=self.state, logger=self.logger, bus=self.bus, lines=self.lines, cwd=self.cwd)

    def control(self) -> RecordingControl:
        return self.controller

    def on_result(self, index: int, result: Result, when: float) -> None:
        self.results.append((index, result, when))

    def on_status(self, status: HealthStatus) -> None:
        self.statuses.append(status)
