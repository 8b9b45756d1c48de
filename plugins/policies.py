"""Recoveries that decide which recovery runs: `circuit_breaker` and `escalate`."""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from typing import Literal

import msgspec

from supervisor.plugin import Duration, Recovery, RecoveryContext, RecoveryRef


class CircuitBreakerOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    recover: RecoveryRef
    max: int = 3
    window: Duration = Duration("10m")
    cooldown: Duration = Duration("5m")

    def __post_init__(self) -> None:
        if self.max < 1:
            raise ValueError("max must be >= 1")


class CircuitBreaker(Recovery):
    """Stop restarting a bot that keeps failing; mark it DEGRADED instead.

    closed: up to `max` inner recoveries per `window`; one more request opens the circuit.
    open: do nothing for `cooldown`, then half-open.
    half-open: try the inner recovery once; another request within `window` of that
    try re-opens, a later one finds the circuit closed again.
    """

    name = "circuit_breaker"
    Options = CircuitBreakerOptions

    def __init__(self, options: CircuitBreakerOptions, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(options)
        self.inner = options.recover.create()
        self.clock = clock
        self.attempts: collections.deque[float] = collections.deque()
        self.state: Literal["closed", "open", "half-open"] = "closed"
        self.opened_at = 0.0

    async def recover(self, ctx: RecoveryContext, failure: str) -> None:
        now = self.clock()
        window = self.options.window
        while self.attempts and now - self.attempts[0] > window:
            self.attempts.popleft()
        if self.state == "half-open" and not self.attempts:
            self.state = "closed"
        if self.state == "open":
            if now - self.opened_at < self.options.cooldown:
                ctx.logger.warning("circuit open for %s: not running %s (%s)", ctx.bot, self.options.recover.label, failure)
                return
            self.state = "half-open"
            self.attempts.clear()
        elif len(self.attempts) >= (1 if self.state == "half-open" else self.options.max):
            self.state, self.opened_at = "open", now
            ctx.control.mark_degraded(f"circuit breaker open: {len(self.attempts)} recoveries within "
                                      f"{window:g}s; last failure: {failure}")
            return
        self.attempts.append(now)
        await self.inner.recover(ctx, failure)

    async def close(self) -> None:
        await self.inner.close()


class EscalateOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    steps: list[RecoveryRef]
    reset_after: Duration = Duration("10m")
    """A failure streak this long after the previous one starts again from the first step."""

    def __post_init__(self) -> None:
        if not self.steps:
            raise ValueError("steps must name at least one recovery")


class Escalate(Recovery):
    """Each failure streak runs the next step (restart, then restart_dependents, then stop + webhook); the last repeats."""

    name = "escalate"
    Options = EscalateOptions

    def __init__(self, options: EscalateOptions, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(options)
        self.steps = [ref.create() for ref in options.steps]
        self.clock = clock
        self.next = 0
        self.last: float | None = None

    async def recover(self, ctx: RecoveryContext, failure: str) -> None:
        now = self.clock()
        if self.last is not None and now - self.last > self.options.reset_after:
            self.next = 0
        self.last = now
        step = self.next
        self.next = min(step + 1, len(self.steps) - 1)
        ctx.logger.warning("escalation step %d/%d for %s: %s", step + 1, len(self.steps), ctx.bot,
                           self.options.steps[step].label)
        await self.steps[step].recover(ctx, failure)

    async def close(self) -> None:
        for step in self.steps:
            await step.close()
