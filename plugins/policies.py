"""Recoveries that decide which recovery runs: `circuit_breaker` and `escalate`."""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from typing import Literal

import msgspec

from supervisor.plugin import Duration, Recovery, RecoveryContext, RecoveryRef, RecoverySkipped


class CircuitBreakerOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    recover: RecoveryRef
    max: int = 3
    window: Duration = Duration("10m")
    cooldown: Duration = Duration("5m")

    def __post_init__(self) -> None:
        if self.max < 1:
            raise ValueError("max must be >= 1")


class CircuitBreaker(Recovery):
    """Stop restarting a bot that keeps failing; mark it DEGRADED instead, for as long as the circuit is open.

    closed: up to `max` inner recoveries per `window`; one more request opens the circuit (DEGRADED).
    open: skip every request for `cooldown`, then half-open. Passing checks do not close it.
    half-open: the next request tries the inner recovery once (the probe); another request within
    `window` of that try re-opens. A passing check while half-open closes the circuit and clears DEGRADED.
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
            self._close(ctx, f"no failure within {window:g}s of the half-open try")
        if self.state == "open":
            if now - self.opened_at < self.options.cooldown:
                raise RecoverySkipped("circuit open, recovery skipped")
            self.state = "half-open"
            self.attempts.clear()
            ctx.logger.warning("circuit half-open for %s: trying %s once", ctx.bot, self.options.recover.label)
        elif len(self.attempts) >= (1 if self.state == "half-open" else self.options.max):
            self.state, self.opened_at = "open", now
            ctx.control.mark_degraded(f"circuit breaker open: {len(self.attempts)} recoveries within "
                                      f"{window:g}s; last failure: {failure}")
            raise RecoverySkipped(f"circuit opened after {len(self.attempts)} recoveries within {window:g}s, recovery skipped")
        self.attempts.append(now)
        await self.inner.recover(ctx, failure)

    def check_passed(self, ctx: RecoveryContext) -> None:
        """The probe worked: a pass while half-open (or once the cooldown is over) closes the circuit."""
        if self.state == "half-open" or (self.state == "open" and self.clock() - self.opened_at >= self.options.cooldown):
            self._close(ctx, "the check passes again after the cooldown")
        self.inner.check_passed(ctx)

    def _close(self, ctx: RecoveryContext, why: str) -> None:
        self.state = "closed"
        self.attempts.clear()
        ctx.control.clear_degraded(f"circuit breaker closed: {why}")

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

    def check_passed(self, ctx: RecoveryContext) -> None:
        for step in self.steps:
            step.check_passed(ctx)

    async def close(self) -> None:
        for step in self.steps:
            await step.close()
