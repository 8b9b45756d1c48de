"""Per-instance health runner: schedules checks, counts failure streaks, fires recoveries.

One runner per bot instance. Every plugin call is bounded by its timeout and run
in a thread if it blocks, so a plugin can fail, hang or raise and the loop goes on.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Sequence
from typing import Literal, Protocol

import msgspec

from ..core.states import State
from ..plugin import (
    BotControl,
    CheckContext,
    HealthCheck,
    Recovery,
    RecoveryContext,
    Result,
)
from .contain import Guarded, describe
from .specs import HealthSpec

log = logging.getLogger("supctl.health")

HealthState = Literal["healthy", "unhealthy", "unknown"]
CHECKED_STATES = frozenset({State.STARTING.value, State.RUNNING.value})
"""Only a live process is checked; in other states results are unknown, not failures."""


class InstanceTarget(Protocol):
    """What the master gives a runner for one instance."""

    def context(self) -> CheckContext:
        """A fresh snapshot (pid, state, psutil.Process, lines, bus) for the next plugin call."""
        ...

    def control(self) -> BotControl: ...

    def on_result(self, index: int, result: Result, when: float) -> None:
        """Told after each check of spec `index` (wall-clock `when`); read runner.status() for the aggregate."""
        ...


class CheckStatus(msgspec.Struct, frozen=True, kw_only=True):
    index: int
    check: str
    key: str
    state: HealthState
    reason: str
    streak: int
    """Consecutive failures so far in the current streak."""
    last: float | None


class HealthStatus(msgspec.Struct, frozen=True, kw_only=True):
    state: HealthState
    reason: str
    checks: list[CheckStatus]


class _Slot:
    """Mutable per-check state owned by the runner."""

    def __init__(self, spec: HealthSpec) -> None:
        self.spec = spec
        self.plugin: HealthCheck = spec.create()
        self.call = Guarded(self.plugin.check, type(self.plugin).blocking)
        self.recovery: Recovery | None = spec.recover.create() if spec.recover else None
        self.result: Result | None = None
        self.when: float | None = None
        self.streak = 0


class Record(msgspec.Struct, frozen=True, kw_only=True):
    """One check result or the recovery it triggered, as `supctl health` later shows it (control/ makes the wire row)."""

    kind: Literal["check", "recovery"]
    index: int
    name: str
    ok: bool
    reason: str
    time: float
    duration: float


class HealthRunner:
    """Runs one instance's checks, each on its own `every`, and fires recoveries on failure streaks."""

    def __init__(self, specs: Sequence[HealthSpec], target: InstanceTarget, *, history: int = 50,
                 clock: Callable[[], float] = time.time) -> None:
        self._slots = [_Slot(s) for s in specs]
        self._target = target
        self._clock = clock
        self._history: collections.deque[Record] = collections.deque(maxlen=history)
        self._tasks: list[asyncio.Task[None]] = []
        self._recovering: asyncio.Task[None] | None = None
        self._healthy = asyncio.Event()
        self._stopped = False
        if not self._slots:
            self._healthy.set()

    def start(self) -> None:
        """Begin checking: each check runs at once, then every `every` seconds."""
        if self._tasks or self._stopped:
            return
        self._tasks = [asyncio.create_task(self._loop(slot), name=f"health:{slot.spec.key}") for slot in self._slots]

    async def stop(self) -> None:
        """Stop checking and close check plugins.

        A recovery in flight is left to finish (it is bounded by its own timeout): a restart
        recovery usually causes the master to stop this very runner, and cancelling it then
        would abort the restart halfway.
        """
        self._stopped = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for slot in self._slots:
            await _close(slot.plugin)
        if self._recovering is None or self._recovering.done():
            await self._close_recoveries()

    async def wait_healthy(self, timeout: float) -> bool:
        """True once every check's latest result is healthy (at once if there are no checks)."""
        if self._healthy.is_set():
            return True
        try:
            await asyncio.wait_for(self._healthy.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def status(self) -> HealthStatus:
        checks = [CheckStatus(index=s.spec.index, check=s.spec.check, key=s.spec.key, state=_state(s.result),
                              reason=s.result.reason if s.result else "no result yet", streak=s.streak, last=s.when)
                  for s in self._slots]
        failing = [f"{c.check}: {c.reason}" for c in checks if c.state == "unhealthy"]
        if failing:
            return HealthStatus(state="unhealthy", reason="; ".join(failing), checks=checks)
        waiting = [c.check for c in checks if c.state == "unknown"]
        if waiting:
            return HealthStatus(state="unknown", reason=f"waiting for {', '.join(waiting)}", checks=checks)
        return HealthStatus(state="healthy", reason="all checks pass" if checks else "no checks", checks=checks)

    def history(self) -> list[Record]:
        """The last results and recoveries, oldest first."""
        return list(self._history)

    async def _loop(self, slot: _Slot) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            try:
                await self._round(slot)
            except Exception:  # noqa: BLE001 -- a bug in the target must not end the checking
                log.exception("health round for %s failed", slot.spec.key)
            due += slot.spec.every
            now = loop.time()
            if due <= now:  # a slow round: skip the missed ticks rather than burst
                due = now + slot.spec.every
            await asyncio.sleep(due - now)

    async def _round(self, slot: _Slot) -> None:
        ctx = self._target.context()
        if ctx.pid is None or ctx.state not in CHECKED_STATES:
            slot.result, slot.when, slot.streak = None, None, 0
            self._update()
            return
        spec = slot.spec
        started = time.monotonic()
        try:
            result = await slot.call(ctx, timeout=spec.timeout)
            if not isinstance(result, Result):
                result = Result.fail(f"plugin returned {type(result).__name__}, expected Result")
        except Exception as e:  # noqa: BLE001 -- a raising plugin is an unhealthy result, not a crash
            result = Result.fail(describe(e))
            ctx.logger.warning("health check %s (%s) failed: %s", spec.check, spec.key, result.reason)
        when = self._clock()
        slot.result, slot.when = result, when
        slot.streak = 0 if result.healthy else slot.streak + 1
        self._history.append(Record(kind="check", index=spec.index, name=spec.check, ok=result.healthy,
                                          reason=result.reason, time=when, duration=time.monotonic() - started))
        self._update()
        try:
            self._target.on_result(spec.index, result, when)
        except Exception:  # noqa: BLE001
            log.exception("on_result for %s failed", spec.key)
        if slot.streak >= spec.failures:
            slot.streak = 0
            self._trigger(slot, ctx, f"{spec.check} check failed {spec.failures} times in a row: {result.reason}")

    def _trigger(self, slot: _Slot, ctx: CheckContext, failure: str) -> None:
        if slot.recovery is None:
            return
        if self._recovering is not None and not self._recovering.done():
            ctx.logger.warning("not recovering %s again: a recovery is still running (%s)", ctx.bot, failure)
            return
        rctx = RecoveryContext(**msgspec.structs.asdict(ctx), control=self._target.control())
        self._recovering = asyncio.create_task(self._recover(slot, slot.recovery, rctx, failure),
                                               name=f"recover:{slot.spec.key}")

    async def _recover(self, slot: _Slot, recovery: Recovery, ctx: RecoveryContext, failure: str) -> None:
        spec = slot.spec.recover
        assert spec is not None
        ctx.logger.warning("recovering %s:%d with %s: %s", ctx.bot, ctx.instance, spec.label, failure)
        started = time.monotonic()
        ok, reason = True, failure
        try:
            await Guarded(recovery.recover, False)(ctx, failure, timeout=spec.timeout)
        except Exception as e:  # noqa: BLE001 -- reported in history and the log
            ok, reason = False, f"{describe(e)} (while handling: {failure})"
            ctx.logger.error("recovery %s for %s:%d failed: %s", spec.label, ctx.bot, ctx.instance, describe(e))
        self._history.append(Record(kind="recovery", index=slot.spec.index, name=spec.label, ok=ok,
                                          reason=reason, time=self._clock(), duration=time.monotonic() - started))
        if self._stopped:
            await self._close_recoveries()

    async def _close_recoveries(self) -> None:
        for slot in self._slots:
            if slot.recovery is not None:
                await _close(slot.recovery)

    def _update(self) -> None:
        if self.status().state == "healthy":
            self._healthy.set()
        else:
            self._healthy.clear()


def _state(result: Result | None) -> HealthState:
    if result is None:
        return "unknown"
    return "healthy" if result.healthy else "unhealthy"


async def _close(plugin: HealthCheck | Recovery) -> None:
    try:
        await asyncio.wait_for(plugin.close(), 5)
    except Exception:  # noqa: BLE001 -- closing is best effort
        log.exception("closing plugin %s failed", type(plugin).__name__)
