"""Per-instance health runner: checks one process at a time, counts failure streaks, fires recoveries.

One runner per bot instance. Health belongs to one process: `begin()` on every spawn forgets the
previous process's results and checks the new one at once (or after `initial_delay`); `halt()`
when it stops or exits. Every plugin call is bounded by its timeout and run in a thread if it
blocks, so a plugin can fail, hang or raise and the loop goes on.
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
    RecoverySkipped,
    Result,
)
from .contain import Guarded, describe
from .specs import HealthSpec

log = logging.getLogger("supctl.health")

HealthState = Literal["healthy", "unhealthy", "starting", "unknown"]
CheckState = Literal["healthy", "unhealthy", "starting", "warning", "unknown"]
CHECKED_STATES = frozenset({State.STARTING.value, State.RUNNING.value})
"""Only a live process is checked; in other states results are unknown, not failures."""


class InstanceTarget(Protocol):
    """What the master gives a runner for one instance."""

    async def context(self) -> CheckContext:
        """A fresh snapshot (pid, state, process tree, lines, bus) for the next plugin call."""
        ...

    def control(self) -> BotControl: ...

    def on_result(self, index: int, result: Result, when: float) -> None:
        """Told after each check of spec `index` (wall-clock `when`)."""
        ...

    def on_status(self, status: HealthStatus) -> None:
        """Told whenever the aggregate state or the set of warnings changes (a new process, a result)."""
        ...


class CheckStatus(msgspec.Struct, frozen=True, kw_only=True):
    index: int
    check: str
    key: str
    state: CheckState
    reason: str
    streak: int
    """Consecutive failures so far in the current streak (failures inside start_period do not count)."""
    last: float | None
    severity: Literal["error", "warn"] = "error"


class HealthStatus(msgspec.Struct, frozen=True, kw_only=True):
    state: HealthState
    reason: str
    checks: list[CheckStatus]
    warnings: list[str] = []
    """Failing checks with severity = "warn", as "check: reason"; they never make the state unhealthy."""


class _Slot:
    """Mutable per-check state owned by the runner; reset for every new process."""

    def __init__(self, spec: HealthSpec) -> None:
        self.spec = spec
        self.plugin: HealthCheck = spec.create()
        self.call = Guarded(self.plugin.check, type(self.plugin).blocking)
        self.recovery: Recovery | None = spec.recover.create() if spec.recover else None
        self.skipping = False
        """The last recovery was skipped (circuit open): the next ones are not announced in the log again."""
        self.reset()

    def reset(self) -> None:
        self.result: Result | None = None
        self.when: float | None = None
        self.streak = 0
        self.passed = False
        """This process passed this check once: its start period is over."""
        self.counted = False
        """The last failure counted (it came after the start period)."""

    def state(self, armed: bool) -> CheckState:
        if not armed:
            return "unknown"
        if self.result is None:
            return "starting"
        if self.result.healthy:
            return "healthy"
        if self.spec.severity == "warn":
            return "warning"
        return "unhealthy" if self.counted else "starting"

    def reason(self, armed: bool) -> str:
        if not armed:
            return "no process to check"
        if self.result is None:
            return "waiting for the first check"
        if not self.result.healthy and not self.counted and self.spec.severity == "error":
            return f"{self.result.reason} (in start_period {self.spec.start_period:g}s)"
        return self.result.reason


class Record(msgspec.Struct, frozen=True, kw_only=True):
    """One check result or the recovery it triggered, as `supctl health` later shows it (control/ makes the wire row)."""

    kind: Literal["check", "recovery"]
    index: int
    name: str
    ok: bool
    reason: str
    time: float
    duration: float
    skipped: bool = False
    """A recovery that chose to do nothing (circuit open)."""


class HealthRunner:
    """Runs one instance's checks against its current process, each on its own `every`."""

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
        self._armed = False
        self._spawned_at = 0.0
        self._generation = 0
        self._told: tuple[str, tuple[str, ...]] | None = None
        if not self._slots:
            self._healthy.set()

    def begin(self) -> None:
        """A new process runs: forget the previous one's results; the first check runs after `initial_delay`."""
        if self._stopped:
            return
        self._cancel()
        self._armed = True
        self._spawned_at = asyncio.get_running_loop().time()
        self._tasks = [asyncio.create_task(self._loop(slot, self._generation), name=f"health:{slot.spec.key}")
                       for slot in self._slots]
        self._update()

    def halt(self) -> None:
        """The process stopped or exited: its results go with it; unknown until the next `begin()`."""
        self._cancel()
        self._armed = False
        self._update()

    def _cancel(self) -> None:
        """Drop the loops and every result; a check still in flight belongs to an old generation and is discarded."""
        self._generation += 1
        for task in self._tasks:
            task.cancel()
        self._tasks = []
        for slot in self._slots:
            slot.reset()

    def start(self) -> None:
        """Begin checking the target's current process (tests and plugin authors; the master calls begin() per spawn)."""
        if not self._tasks:
            self.begin()

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
        """True once every check passes for the current process (at once if there are no checks)."""
        if self._healthy.is_set():
            return True
        try:
            await asyncio.wait_for(self._healthy.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def status(self) -> HealthStatus:
        armed = self._armed
        checks = [CheckStatus(index=s.spec.index, check=s.spec.check, key=s.spec.key, state=s.state(armed),
                              reason=s.reason(armed), streak=s.streak, last=s.when, severity=s.spec.severity)
                  for s in self._slots]
        warnings = [f"{c.check}: {c.reason}" for c in checks if c.state == "warning"]
        failing = [f"{c.check}: {c.reason}" for c in checks if c.state == "unhealthy"]
        if failing:
            return HealthStatus(state="unhealthy", reason="; ".join(failing), checks=checks, warnings=warnings)
        if checks and not armed:
            return HealthStatus(state="unknown", reason="no process to check", checks=checks)
        starting = [f"{c.check}: {c.reason}" for c in checks if c.state == "starting"]
        if starting:
            return HealthStatus(state="starting", reason="; ".join(starting), checks=checks, warnings=warnings)
        if warnings:
            return HealthStatus(state="healthy", reason="warn: " + "; ".join(warnings), checks=checks, warnings=warnings)
        return HealthStatus(state="healthy", reason="all checks pass" if checks else "no checks", checks=checks)

    def history(self) -> list[Record]:
        """The last results and recoveries, oldest first."""
        return list(self._history)

    async def _loop(self, slot: _Slot, generation: int) -> None:
        loop = asyncio.get_running_loop()
        due = self._spawned_at + slot.spec.initial_delay
        while True:
            now = loop.time()
            if due > now:
                await asyncio.sleep(due - now)
            try:
                await self._round(slot, generation)
            except Exception:  # noqa: BLE001 -- a bug in the target must not end the checking
                log.exception("health round for %s failed", slot.spec.key)
            due += slot.spec.every
            if due <= loop.time():  # a slow round: skip the missed ticks rather than burst
                due = loop.time() + slot.spec.every

    async def _round(self, slot: _Slot, generation: int) -> None:
        ctx = await self._target.context()
        if generation != self._generation or ctx.pid is None or ctx.state not in CHECKED_STATES:
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
        if generation != self._generation:  # the process changed while the check ran: not its result
            return
        when = self._clock()
        log.debug("health: %s ran on pid %s: %s (%.3fs)", spec.key, ctx.pid,
                  "pass" if result.healthy else f"fail: {result.reason}", time.monotonic() - started)
        self._score(slot, result)
        slot.result, slot.when = result, when
        self._history.append(Record(kind="check", index=spec.index, name=spec.check, ok=result.healthy,
                                    reason=result.reason, time=when, duration=time.monotonic() - started))
        self._update()
        try:
            self._target.on_result(spec.index, result, when)
        except Exception:  # noqa: BLE001
            log.exception("on_result for %s failed", spec.key)
        if result.healthy:
            self._passed(slot, ctx)
        elif slot.streak >= spec.failures and spec.severity == "error":
            slot.streak = 0
            self._trigger(slot, ctx, f"{spec.check}: {result.reason}")

    def _score(self, slot: _Slot, result: Result) -> None:
        """Docker's start period: until the first pass, failures within start_period do not count."""
        if result.healthy:
            slot.passed, slot.streak, slot.counted = True, 0, False
            return
        in_start = not slot.passed and asyncio.get_running_loop().time() - self._spawned_at < slot.spec.start_period
        slot.counted = not in_start
        if slot.counted:
            slot.streak += 1

    def _passed(self, slot: _Slot, ctx: CheckContext) -> None:
        if slot.recovery is None:
            return
        try:
            slot.recovery.check_passed(RecoveryContext(**msgspec.structs.asdict(ctx), control=self._target.control()))
        except Exception:  # noqa: BLE001 -- a broken policy must not end the checking
            log.exception("check_passed of %s failed", slot.spec.recover.label if slot.spec.recover else "?")

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
        if not slot.skipping:
            ctx.logger.warning("recovering %s:%d with %s: %s", ctx.bot, ctx.instance, spec.label, failure)
        started = time.monotonic()
        ok, skipped, reason = True, False, failure
        try:
            await Guarded(recovery.recover, False)(ctx, failure, timeout=spec.timeout)
        except RecoverySkipped as e:
            skipped, reason = True, f"{e} ({failure})"
            if not slot.skipping:
                ctx.logger.info("%s:%d: %s skipped: %s (said once; supctl health lists each)", ctx.bot, ctx.instance,
                                spec.label, reason)
        except Exception as e:  # noqa: BLE001 -- reported in history and the log
            ok, reason = False, f"{describe(e)} (while handling: {failure})"
            ctx.logger.error("recovery %s for %s:%d failed: %s", spec.label, ctx.bot, ctx.instance, describe(e))
        slot.skipping = skipped
        self._history.append(Record(kind="recovery", index=slot.spec.index, name=spec.label, ok=ok, skipped=skipped,
                                    reason=reason, time=self._clock(), duration=time.monotonic() - started))
        if self._stopped:
            await self._close_recoveries()

    async def _close_recoveries(self) -> None:
        for slot in self._slots:
            if slot.recovery is not None:
                await _close(slot.recovery)

    def _update(self) -> None:
        status = self.status()
        if status.state == "healthy":
            self._healthy.set()
        else:
            self._healthy.clear()
        told = (status.state, tuple(c.key for c in status.checks if c.state == "warning"))
        if told != self._told and not self._stopped:
            self._told = told
            try:
                self._target.on_status(status)
            except Exception:  # noqa: BLE001
                log.exception("on_status failed")


async def _close(plugin: HealthCheck | Recovery) -> None:
    try:
        await asyncio.wait_for(plugin.close(), 5)
    except Exception:  # noqa: BLE001 -- closing is best effort
        log.exception("closing plugin %s failed", type(plugin).__name__)
