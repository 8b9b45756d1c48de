"""Every instance's health checks, keyed by bot; what status, describe, /metrics and the fleet ask about health."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..engine.instance import Instance, Transition
    from .checked import InstanceHealth
    from .tree import ProcessTree


class HealthBoard:
    """Every instance's health runner, keyed by (bot, instance); the master adds and drops them with bots."""

    def __init__(self) -> None:
        self._by_bot: dict[str, list[InstanceHealth]] = {}
        self._tree: ProcessTree | None = None

    def tree(self) -> ProcessTree:
        """One cache of /proc reads for every instance's checks, made for the first bot that has any."""
        if self._tree is None:
            from .tree import ProcessTree

            self._tree = ProcessTree()
        return self._tree

    def add(self, bot: str, checks: list[InstanceHealth]) -> None:
        """Each runner begins when its instance spawns (the master hands Instance.on_spawn its runner.begin)."""
        self._by_bot[bot] = checks

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
        return checks[inst.index] if inst.index < len(checks) and checks[inst.index].inst is inst else None

    def on_transition(self, inst: Instance, t: Transition) -> None:
        checks = self.of(inst)
        if checks is not None:
            checks.on_transition(t)

    def describe(self, inst: Instance) -> str | None:
        """The status column: DEGRADED wins, then the aggregate state with its reason."""
        checks = self.of(inst)
        if checks is None:
            return None
        state, reason, _ = checks.summary()
        if state == "degraded":
            return f"DEGRADED: {reason}"
        return state if reason == "all checks pass" else f"{state}: {reason}"

    async def wait_healthy(self, bot: str, timeout: float) -> bool:
        """Readiness for dependents: every instance's checks pass within `timeout`."""
        results = await asyncio.gather(*(c.runner.wait_healthy(timeout) for c in self._by_bot.get(bot, [])))
        return all(results)
