"""circuit_breaker and escalate decide which recovery runs; clocks are injected."""

from __future__ import annotations

import asyncio
import logging

import pytest

from supervisor.plugins.actions import Restart, RestartDependents, Stop
from supervisor.plugins.policies import (
    CircuitBreaker,
    CircuitBreakerOptions,
    Escalate,
    EscalateOptions,
)

from supervisor.health.specs import InOrder
from supervisor.health.testing import RecordingControl
from supervisor.plugin import NoOptions, RecoveryContext, RecoveryRef, RecoverySkipped


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def context() -> RecoveryContext:
    return RecoveryContext(bot="api", instance=0, pid=1, state="RUNNING",
                           logger=logging.getLogger("test"), control=RecordingControl())


def ref(cls) -> RecoveryRef:
    return RecoveryRef(cls.name, lambda: cls(NoOptions()))


def methods(ctx: RecoveryContext) -> list[str]:
    return [m for m, _ in ctx.control.calls]  # type: ignore[attr-defined]


def test_circuit_breaker_opens_after_max_in_window_then_half_opens_after_cooldown():
    clock, ctx = Clock(), context()
    breaker = CircuitBreaker(CircuitBreakerOptions(recover=ref(Restart), max=2, window=60.0, cooldown=30.0), clock)

    async def fail(dt: float) -> bool:
        """True when the breaker skipped the recovery."""
        clock.now += dt
        try:
            await breaker.recover(ctx, "down")
        except RecoverySkipped as e:
            assert "circuit open" in str(e) or "circuit opened" in str(e)
            return True
        return False

    async def go():
        assert not await fail(0)
        assert not await fail(10)
        assert methods(ctx) == ["restart", "restart"]
        assert await fail(10)  # third within the window: open, degraded, no restart
        assert breaker.state == "open" and methods(ctx)[-1] == "mark_degraded"
        assert await fail(10)  # still cooling down: nothing at all
        assert methods(ctx) == ["restart", "restart", "mark_degraded"]
        assert not await fail(25)  # cool-down over: half-open, one try
        assert breaker.state == "half-open" and methods(ctx)[-1] == "restart"
        assert await fail(5)  # failed again soon after the try: open again
        assert breaker.state == "open" and methods(ctx)[-1] == "mark_degraded"
        await fail(31)  # half-open try ...
        await fail(61)  # ... which held for a window: closed again (DEGRADED cleared), restarts resume
        assert breaker.state == "closed"

    asyncio.run(go())
    assert methods(ctx) == ["restart", "restart", "mark_degraded", "restart", "mark_degraded", "restart",
                            "clear_degraded", "restart"]


def test_passing_checks_close_the_circuit_only_after_the_cooldown():
    clock, ctx = Clock(), context()
    breaker = CircuitBreaker(CircuitBreakerOptions(recover=ref(Restart), max=1, window=60.0, cooldown=30.0), clock)

    async def go():
        await breaker.recover(ctx, "down")
        with pytest.raises(RecoverySkipped):
            await breaker.recover(ctx, "down")  # open

    asyncio.run(go())
    for _ in range(3):
        clock.now += 5
        breaker.check_passed(ctx)  # passes while open: DEGRADED stays
    assert breaker.state == "open" and methods(ctx) == ["restart", "mark_degraded"]
    clock.now += 30
    breaker.check_passed(ctx)
    assert breaker.state == "closed" and methods(ctx)[-1] == "clear_degraded"


def test_circuit_breaker_forgets_attempts_older_than_the_window():
    clock, ctx = Clock(), context()
    breaker = CircuitBreaker(CircuitBreakerOptions(recover=ref(Restart), max=1, window=10.0, cooldown=5.0), clock)

    async def go():
        for _ in range(3):
            await breaker.recover(ctx, "down")
            clock.now += 11

    asyncio.run(go())
    assert methods(ctx) == ["restart"] * 3 and breaker.state == "closed"


def test_escalate_runs_steps_in_order_repeats_the_last_and_resets_after_quiet():
    clock, ctx = Clock(), context()
    last = RecoveryRef("stop + restart", lambda: InOrder([Stop(NoOptions()), Restart(NoOptions())]))
    escalate = Escalate(EscalateOptions(steps=[ref(Restart), ref(RestartDependents), last], reset_after=300.0), clock)

    async def go():
        for _ in range(4):
            await escalate.recover(ctx, "down")
            clock.now += 10
        clock.now += 301
        await escalate.recover(ctx, "down")

    asyncio.run(go())
    assert methods(ctx) == ["restart", "restart_dependents", "stop", "restart", "stop", "restart", "restart"]


def test_in_order_runs_every_part_even_after_one_fails():
    ctx = context()

    class Fails(Stop):
        async def recover(self, ctx: RecoveryContext, failure: str) -> None:
            raise OSError("gone")

    async def go():
        try:
            await InOrder([Fails(NoOptions()), Restart(NoOptions())]).recover(ctx, "down")
        except RuntimeError as e:
            return str(e)
        return None

    assert asyncio.run(go()) == "stop: OSError: gone"
    assert methods(ctx) == ["restart"]
