"""CPU and memory for the dashboard's sparklines, pushed on /events every few seconds while someone listens.

A dashboard polling /status would cost a psutil scan of every process on the box per sample (the process
trees of `supctl status`); this reads one /proc/PID/stat per running instance, only while a stream is open,
through the descriptors /metrics holds too.
"""

from __future__ import annotations

import asyncio
import time

from ..core.procstat import HeldStats
from ..core.states import ALIVE
from ..engine.fleet import Fleet
from .hub import EventHub
from .metrics import usage

EVERY = 5.0


class UsageFeed:
    def __init__(self, fleet: Fleet, hub: EventHub, stats: HeldStats) -> None:
        self._fleet, self._hub, self._stats = fleet, hub, stats
        self._task: asyncio.Task[None] | None = None
        self._last: dict[int, tuple[float, float]] = {}
        """pid -> (monotonic time, CPU seconds) of the previous sample."""

    def wake(self) -> None:
        """A listener joined: run until the last one leaves."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="http usage feed")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while self._hub.listeners:
            self._hub.publish("usage", self.sample())
            await asyncio.sleep(EVERY)
        self._last.clear()

    def sample(self) -> dict[str, object]:
        """{"time": t, "instances": [[bot, k, cpu % since the previous sample or None, rss bytes], ...]}."""
        now, rows, seen = time.monotonic(), [], {}
        for inst in self._fleet.instances():
            if inst.state not in ALIVE or inst.pid is None or (fields := self._stats.fields(inst.pid)) is None:
                continue
            seconds, resident = usage(fields)
            before = self._last.get(inst.pid)
            cpu = (seconds - before[1]) / (now - before[0]) * 100 if before and now > before[0] else None
            seen[inst.pid] = (now, seconds)
            rows.append([inst.bot, inst.index, None if cpu is None else round(cpu, 2), resident])
        self._last = seen
        self._stats.keep_only(set(seen))
        return {"time": time.time(), "instances": rows}
