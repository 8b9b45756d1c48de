"""The `bus_heartbeat` check: the bot published on a topic recently (alive, not merely running)."""

from __future__ import annotations

import time

import msgspec

from supervisor.plugin import CheckContext, Duration, HealthCheck, Result


class BusHeartbeatOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    topic: str
    within: Duration


class BusHeartbeat(HealthCheck):
    """Healthy while this instance (not merely another instance of the bot) publishes on `topic` within `within`."""

    name = "bus_heartbeat"
    Options = BusHeartbeatOptions

    async def check(self, ctx: CheckContext) -> Result:
        if ctx.bus is None:
            return Result.fail("no bus")
        last = ctx.bus.last_publish_time(ctx.bot, self.options.topic, ctx.instance)
        if last is None:
            return Result.fail(f"nothing published on {self.options.topic} yet")
        age = time.monotonic() - last
        if age > self.options.within:
            return Result.fail(f"last publish on {self.options.topic} {age:.1f}s ago (within {self.options.within:g}s)")
        return Result.ok(f"published on {self.options.topic} {age:.1f}s ago")
