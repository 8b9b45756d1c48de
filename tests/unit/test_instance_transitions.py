"""One instance driven through every edge of the transition table with fake processes (the engine's seams).

A FakeOS and a FakeBox stand in for spawn, kill_group and the instance's box, backoff sleeps return at once and are recorded,
and each scenario waits on the instance's own transitions. The last test proves the table and the
engine agree: every edge of core/states.TRANSITIONS is taken by some engine path, and the engine
takes no edge the table lacks (check_transition would raise).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from supervisor.config.procfile import BackoffConfig, BotConfig, RestartLimit
from supervisor.core.errors import SpawnError
from supervisor.core.states import TRANSITIONS, State
from supervisor.core.units import Duration
from supervisor.engine.instance import Instance, Launch, Transition

S = State
WAIT = 5.0
FAKE_PIDS = itertools.count(4_000_000_000)
"""Far above any real pid (pid_max is at most 2^22): a fake can never name a real process."""


class FakeChild:
    def __init__(self) -> None:
        self.pid = next(FAKE_PIDS)
        self.exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def exit(self, code: int) -> None:
        if not self.exited.done():
            self.exited.set_result(code)


class FakeOS:
    """Children that exit when told (or at once, per `script`), and honour the stop signal unless stubborn."""

    def __init__(self, script: list[int | None] | None = None, stubborn: bool = False, fail: bool = False) -> None:
        self.script = list(script or [])
        """Per spawn: an exit code to exit with at once, or None to keep running until told."""
        self.stubborn = stubborn
        self.fail = fail
        self.children: list[FakeChild] = []
        self.signals: list[int] = []

    async def spawn(self, argv, cwd, env, log, announce=None, box=None) -> FakeChild:  # type: ignore[no-untyped-def]
        if self.fail:
            raise SpawnError(f"cannot start {argv[0]!r}: fake failure")
        child = FakeChild()
        self.children.append(child)
        code = self.script.pop(0) if self.script else None
        if code is not None:
            asyncio.get_running_loop().call_soon(child.exit, code)
        return child

    def _child(self, pgid: int) -> FakeChild | None:
        return next((c for c in self.children if c.pid == pgid and not c.exited.done()), None)

    def kill_group(self, pgid: int, sig: int) -> bool:
        child = self._child(pgid)
        if child is None:
            return False
        self.signals.append(sig)
        if sig == signal.SIGKILL or (sig not in (0, signal.SIGCONT) and not self.stubborn):
            child.exit(-sig)
        return True


class FakeBox:
    """The instance's box (cgroup or tracked descendants in the real engine) over the FakeOS's children."""

    def __init__(self, os: FakeOS) -> None:
        self.os = os

    def started(self, pid: int) -> None:
        pass

    def members(self) -> list[int]:
        return [c.pid for c in self.os.children if not c.exited.done()]

    def signal(self, sig: int) -> None:
        pass

    def kill(self) -> None:
        for pid in self.members():
            self.os.kill_group(pid, signal.SIGKILL)

    async def wait_empty(self, timeout: float | None) -> bool:
        pending = [c.exited for c in self.os.children if not c.exited.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout)
        return not self.members()


class Rig:
    """One Instance on a FakeOS; `edges` is every transition it made."""

    def __init__(self, os: FakeOS, sleep: Callable[[float], Awaitable[object]] | None = None, **config: object) -> None:
        fields = {"cmd": "fake-bot", "start_grace": Duration("50ms"), "stop_timeout": Duration("200ms"),
                  "backoff": BackoffConfig(initial=Duration("10ms"), max=Duration("1s"), jitter=0.0),
                  "restart_limit": RestartLimit(count=5, window=Duration("1m")), **config}
        self.os = os
        self.edges: list[tuple[State, State]] = []
        self.delays: list[float] = []
        self._changed = asyncio.Event()
        self.inst = Instance("bot", 0, BotConfig(**fields), Launch(["fake-bot"], Path("."), {}, {}), None,  # type: ignore[arg-type]
                             self._on, logging.getLogger("test.instance"), FakeBox(os), rng=random.Random(0),
                             processes=os, sleep=sleep or self._sleep)

    def _on(self, t: Transition) -> None:
        self.edges.append((S(t.old), S(t.new)))
        self._changed.set()

    async def _sleep(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)

    async def reach(self, state: State, count: int = 1) -> None:
        """Wait until the instance has entered `state` `count` times."""
        async def entered() -> None:
            while sum(new == state for _, new in self.edges) < count:
                self._changed.clear()
                await self._changed.wait()
        await asyncio.wait_for(entered(), WAIT)

    @property
    def child(self) -> FakeChild:
        return self.os.children[-1]


async def running_then_stopped() -> Rig:
    rig = Rig(FakeOS())
    rig.inst.start()
    await rig.reach(S.RUNNING)
    await rig.inst.stop()
    assert rig.inst.state == S.STOPPED and rig.os.signals[0] == signal.SIGTERM
    return rig


async def crash_before_grace_backoff_then_fatal() -> Rig:
    rig = Rig(FakeOS(script=[1, 1, 1]), restart_limit=RestartLimit(count=2, window=Duration("1m")))
    rig.inst.start()
    await rig.reach(S.FATAL)
    assert rig.delays == [0.01, 0.02] and rig.inst.restarts == 2
    assert rig.inst.attempt == 2  # what `supctl describe` turns into the next backoff (0.04s)
    return rig


async def never_restart_exits_before_grace() -> Rig:
    rig = Rig(FakeOS(script=[0]), restart="never")
    rig.inst.start()
    await rig.reach(S.EXITED)
    return rig


async def running_crash_backoff_then_running_fatal() -> Rig:
    rig = Rig(FakeOS(), restart_limit=RestartLimit(count=1, window=Duration("1m")))
    rig.inst.start()
    await rig.reach(S.RUNNING)
    rig.child.exit(1)
    await rig.reach(S.RUNNING, count=2)  # RUNNING -> BACKOFF -> STARTING -> RUNNING
    rig.child.exit(1)
    await rig.reach(S.FATAL)  # RUNNING -> FATAL: the budget of one restart is spent
    return rig


async def clean_exit_while_running() -> Rig:
    rig = Rig(FakeOS())
    rig.inst.start()
    await rig.reach(S.RUNNING)
    rig.child.exit(0)
    await rig.reach(S.EXITED)
    rig.inst.start()  # EXITED -> STARTING
    await rig.reach(S.RUNNING, count=2)
    await rig.inst.stop()
    return rig


async def stop_during_start_grace() -> Rig:
    rig = Rig(FakeOS(), start_grace=Duration("10s"))
    rig.inst.start()
    await rig.reach(S.STARTING)
    await rig.inst.stop()
    assert rig.edges[-2:] == [(S.STARTING, S.STOPPING), (S.STOPPING, S.STOPPED)]
    return rig


async def stop_during_backoff() -> Rig:
    never = asyncio.Event()

    async def held(delay: float) -> None:
        await never.wait()

    rig = Rig(FakeOS(script=[1]), sleep=held)
    rig.inst.start()
    await rig.reach(S.BACKOFF)
    await rig.inst.stop()
    assert rig.edges[-1] == (S.BACKOFF, S.STOPPED) and len(rig.os.children) == 1
    return rig


async def stubborn_child_gets_sigkill_after_stop_timeout() -> Rig:
    rig = Rig(FakeOS(stubborn=True))
    rig.inst.start()
    await rig.reach(S.RUNNING)
    await rig.inst.stop()
    assert rig.os.signals[0] == signal.SIGTERM and signal.SIGKILL in rig.os.signals
    return rig


async def health_restart_recycles_then_fatal() -> Rig:
    rig = Rig(FakeOS(), restart_limit=RestartLimit(count=1, window=Duration("1m")))
    rig.inst.start()
    await rig.reach(S.RUNNING)
    assert await rig.inst.recycle("health: memory 612MiB > 500MiB")
    await rig.reach(S.RUNNING, count=2)  # STOPPING -> BACKOFF -> STARTING -> RUNNING
    assert await rig.inst.recycle("health: memory 700MiB > 500MiB")
    await rig.reach(S.FATAL)  # STOPPING -> FATAL: health restarts spend the same budget
    assert rig.inst.restarts == 1 and "health: memory 700MiB" in rig.inst.last_exit.describe()
    rig.inst.start()  # FATAL -> STARTING
    await rig.reach(S.RUNNING, count=3)
    await rig.inst.stop()
    return rig


async def spawn_failure_is_a_failed_start() -> Rig:
    rig = Rig(FakeOS(fail=True), restart_limit=RestartLimit(count=0, window=Duration("1m")))
    rig.inst.start()
    await rig.reach(S.FATAL)
    assert rig.edges == [(S.STOPPED, S.STARTING), (S.STARTING, S.FATAL)]
    assert "fake failure" in rig.inst.last_exit.describe()
    return rig


SCENARIOS = [running_then_stopped, crash_before_grace_backoff_then_fatal, never_restart_exits_before_grace,
             running_crash_backoff_then_running_fatal, clean_exit_while_running, stop_during_start_grace,
             stop_during_backoff, stubborn_child_gets_sigkill_after_stop_timeout, health_restart_recycles_then_fatal,
             spawn_failure_is_a_failed_start]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_scenario(scenario: Callable[[], Awaitable[Rig]]) -> None:
    asyncio.run(scenario())


def test_the_table_and_the_engine_agree() -> None:
    """Every edge of the table is taken by some engine path; the engine took no other (check_transition)."""
    async def all_edges() -> set[tuple[State, State]]:
        taken: set[tuple[State, State]] = set()
        for scenario in SCENARIOS:
            taken |= set((await scenario()).edges)
        return taken

    taken = asyncio.run(all_edges())
    table = {(old, new) for old, news in TRANSITIONS.items() for new in news}
    assert taken <= table
    assert table - taken == set(), f"edges no engine path takes: {sorted((a.value, b.value) for a, b in table - taken)}"
