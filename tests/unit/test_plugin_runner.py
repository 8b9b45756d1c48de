"""HealthRunner: streaks, recoveries, aggregation and containment of bad plugins."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import msgspec
import psutil
import pytest

from supervisor.health.runner import HealthRunner
from supervisor.health.specs import HealthSpec, RecoverySpec
from supervisor.health.testing import FakeTarget
from supervisor.plugin import (
    CheckContext,
    HealthCheck,
    Recovery,
    RecoveryContext,
    Result,
)


class NoOptions(msgspec.Struct):
    pass


def spec(check: type[HealthCheck], *, every: float = 0.02, timeout: float = 1.0, failures: int = 1,
         recover: type[Recovery] | None = None, index: int = 0, start_period: float = 0.0,
         initial_delay: float = 0.0, severity: str = "error") -> HealthSpec:
    return HealthSpec(index=index, key=f"bots.api.health[{index}]", check=check.name, create=lambda: check(NoOptions()),
                      every=every, timeout=timeout, failures=failures, start_period=start_period,
                      initial_delay=initial_delay, severity=severity,  # type: ignore[arg-type]
                      recover=RecoverySpec(label=recover.name, create=lambda: recover(NoOptions()), timeout=1.0)
                      if recover else None)


def run(coro, timeout: float = 10):
    async def bounded():
        async with asyncio.timeout(timeout):
            return await coro
    return asyncio.run(bounded())


class Script(HealthCheck):
    """Returns the scripted results in order, then keeps returning the last one."""

    name = "script"
    Options = NoOptions
    results: list[Result] = []

    def __init__(self, options: NoOptions) -> None:
        super().__init__(options)
        self.calls = 0

    async def check(self, ctx: CheckContext) -> Result:
        self.calls += 1
        return self.results[min(self.calls, len(self.results)) - 1]


class Raises(HealthCheck):
    name = "raises"
    Options = NoOptions

    async def check(self, ctx: CheckContext) -> Result:
        raise RuntimeError("database gone")


class Hangs(HealthCheck):
    name = "hangs"
    Options = NoOptions

    async def check(self, ctx: CheckContext) -> Result:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


class Blocks(HealthCheck):
    name = "blocks"
    Options = NoOptions
    blocking = True
    threads: set[int] = set()

    def check(self, ctx: CheckContext) -> Result:  # type: ignore[override]
        self.threads.add(threading.get_ident())
        time.sleep(1.0)
        return Result.ok("slept")


class Restart(Recovery):
    name = "restart"
    Options = NoOptions

    async def recover(self, ctx: RecoveryContext, failure: str) -> None:
        await ctx.control.restart(failure)


class Broken(Recovery):
    name = "broken"
    Options = NoOptions

    async def recover(self, ctx: RecoveryContext, failure: str) -> None:
        raise OSError("no route")


async def ticks_while(coro, period: float = 0.01) -> tuple[object, float]:
    """Run coro while a ticker counts; returns coro's result and the worst gap between ticks."""
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    try:
        result = await coro
    finally:
        task.cancel()
    return result, max(gaps)


def test_unknown_without_a_process_starting_until_first_result_then_healthy():
    Script.results = [Result.ok("fine")]

    async def go():
        target = FakeTarget(pid=os.getpid())
        runner = HealthRunner([spec(Script)], target)
        assert runner.status().state == "unknown"
        runner.start()
        assert runner.status().state == "starting"
        assert await runner.wait_healthy(5)
        await runner.stop()
        return runner, target

    runner, target = run(go())
    assert runner.status().state == "healthy"
    assert target.results[0][:2] == (0, Result.ok("fine"))


def test_failure_streak_triggers_recovery_once_per_streak_then_resets():
    Script.results = [Result.fail("a"), Result.fail("b"), Result.fail("c"), Result.ok(), Result.fail("d"),
                      Result.fail("e"), Result.fail("f"), Result.ok()]

    async def go():
        target = FakeTarget(pid=os.getpid())
        runner = HealthRunner([spec(Script, failures=3, recover=Restart)], target)
        runner.start()
        await target.controller.wait_for_calls(2, 5)
        await runner.stop()
        return runner, target

    runner, target = run(go())
    assert [c[0] for c in target.controller.calls] == ["restart", "restart"]
    assert target.controller.calls[0][1] == "script: c"
    assert target.controller.calls[1][1] == "script: f"
    assert [r.kind for r in runner.history()].count("recovery") == 2


def test_raising_plugin_is_an_unhealthy_result_with_the_exception():
    async def go():
        target = FakeTarget(pid=os.getpid())
        runner = HealthRunner([spec(Raises, failures=2, recover=Broken)], target)
        runner.start()
        while not any(r.kind == "recovery" for r in runner.history()):
            await asyncio.sleep(0.01)
        await runner.stop()
        return runner

    runner = run(go())
    status = runner.status()
    assert status.state == "unhealthy" and status.reason == "raises: RuntimeError: database gone"
    failed = [r for r in runner.history() if r.kind == "recovery"][0]
    assert not failed.ok and failed.reason.startswith("OSError: no route")


def test_hanging_plugin_times_out_and_the_loop_keeps_ticking():
    async def go():
        target = FakeTarget(pid=os.getpid())
        runner = HealthRunner([spec(Hangs, timeout=1.0, every=0.05)], target)
        runner.start()

        async def first_result():
            while not target.results:
                await asyncio.sleep(0.01)
        _, gap = await ticks_while(first_result())
        await runner.stop()
        return target, gap

    target, gap = run(go())
    assert target.results[0][1] == Result.fail("timed out after 1s")
    assert gap < 0.5  # a loop stalled by the hang would show a gap of a whole second


def test_blocking_plugin_runs_in_a_thread_without_stalling_the_loop():
    Blocks.threads = set()

    async def go():
        target = FakeTarget(pid=os.getpid())
        runner = HealthRunner([spec(Blocks)], target)
        runner.start()
        healthy, gap = await ticks_while(runner.wait_healthy(5))
        await runner.stop()
        return healthy, gap

    healthy, gap = run(go())
    assert healthy
    assert Blocks.threads and threading.get_ident() not in Blocks.threads
    assert gap < 0.5  # the check slept 1s in its thread; on the loop that would be a 1s gap


def test_hung_blocking_plugin_is_not_called_again_until_it_returns():
    release = threading.Event()

    class Stuck(HealthCheck):
        name = "stuck"
        Options = NoOptions
        blocking = True
        calls = 0

        def check(self, ctx: CheckContext) -> Result:  # type: ignore[override]
            Stuck.calls += 1
            release.wait(5)
            return Result.ok()

    async def go():
        target = FakeTarget(pid=os.getpid())
        runner = HealthRunner([spec(Stuck, timeout=0.05, every=0.01)], target)
        runner.start()
        while len(target.results) < 3:
            await asyncio.sleep(0.01)
        await runner.stop()
        return target

    target = run(go())
    release.set()
    assert Stuck.calls == 1
    assert target.results[1][1].reason == "previous call still running after its timeout"


def test_not_running_instance_is_never_checked_or_recovered():
    Script.results = [Result.fail("down")]

    async def go():
        target = FakeTarget(pid=None, state="BACKOFF")
        runner = HealthRunner([spec(Script, recover=Restart)], target)
        runner.start()
        healthy = await runner.wait_healthy(0.2)
        await runner.stop()
        return runner, target, healthy

    runner, target, healthy = run(go())
    assert not healthy and runner.status().state == "starting"  # waiting for a first check it cannot run
    assert target.controller.calls == [] and target.results == []


def test_aggregate_is_unhealthy_if_any_check_fails_and_no_checks_is_healthy():
    Script.results = [Result.fail("slow")]

    class Fine(HealthCheck):
        name = "fine"
        Options = NoOptions

        async def check(self, ctx: CheckContext) -> Result:
            return Result.ok()

    async def go():
        target = FakeTarget(pid=os.getpid())
        runner = HealthRunner([spec(Fine), spec(Script, index=1)], target)
        runner.start()
        while len({i for i, _, _ in target.results}) < 2:
            await asyncio.sleep(0.01)
        await runner.stop()
        empty = HealthRunner([], target)
        return runner.status(), await empty.wait_healthy(0)

    status, empty_healthy = run(go())
    assert status.state == "unhealthy" and status.reason == "script: slow"
    assert [c.state for c in status.checks] == ["healthy", "unhealthy"]
    assert empty_healthy


@pytest.mark.parametrize("bad", [None, "ok", True])
def test_plugin_returning_a_non_result_is_unhealthy(bad):
    class Wrong(HealthCheck):
        name = "wrong"
        Options = NoOptions

        async def check(self, ctx: CheckContext) -> Result:
            return bad  # type: ignore[return-value]

    async def go():
        target = FakeTarget(pid=os.getpid())
        runner = HealthRunner([spec(Wrong)], target)
        runner.start()
        while not target.results:
            await asyncio.sleep(0.01)
        await runner.stop()
        return target.results[0][1]

    assert run(go()).reason.startswith(f"plugin returned {type(bad).__name__}")


def test_a_new_process_forgets_the_old_results_and_is_starting():
    Script.results = [Result.ok("old process fine")]

    async def go():
        target = FakeTarget(pid=os.getpid())
        runner = HealthRunner([spec(Script, every=3600)], target)
        runner.begin()
        assert await runner.wait_healthy(5)
        runner.halt()  # the process exited
        gone = runner.status()
        runner.begin()  # a new one spawned
        fresh = runner.status()
        assert await runner.wait_healthy(5)  # its own first check runs at once, not an `every` later
        await runner.stop()
        return gone, fresh, target

    gone, fresh, target = run(go())
    assert gone.state == "unknown" and [c.state for c in gone.checks] == ["unknown"]
    assert fresh.state == "starting" and fresh.checks[0].last is None
    assert [s.state for s in target.statuses] == ["starting", "healthy", "unknown", "starting", "healthy"]


def test_failures_inside_the_start_period_do_not_count_and_the_first_pass_ends_it():
    Script.results = [Result.fail("booting")] * 5 + [Result.ok("up"), Result.fail("broke")]

    async def go():
        target = FakeTarget(pid=os.getpid())
        runner = HealthRunner([spec(Script, failures=1, start_period=3600, recover=Restart)], target)
        runner.begin()
        while len(target.results) < 5:
            await asyncio.sleep(0.01)
        booting = runner.status()
        await target.controller.wait_for_calls(1, 5)  # the failure after the pass counts at once
        await runner.stop()
        return booting, target

    booting, target = run(go())
    assert booting.state == "starting" and "in start_period" in booting.reason and booting.checks[0].streak == 0
    assert [m for m, _ in target.controller.calls] == ["restart"]
    assert target.controller.calls[0][1] == "script: broke"


def test_initial_delay_holds_the_first_check():
    Script.results = [Result.ok()]

    async def go():
        target = FakeTarget(pid=os.getpid())
        runner = HealthRunner([spec(Script, initial_delay=3600)], target)
        runner.begin()
        healthy = await runner.wait_healthy(0.3)
        await runner.stop()
        return healthy, target

    healthy, target = run(go())
    assert not healthy and target.results == []


def test_a_failing_warn_check_is_reported_but_never_unhealthy():
    Script.results = [Result.fail("disk 95% full")]

    class Fine(HealthCheck):
        name = "fine"

        async def check(self, ctx: CheckContext) -> Result:
            return Result.ok()

    async def go():
        target = FakeTarget(pid=os.getpid())
        runner = HealthRunner([spec(Fine), spec(Script, index=1, severity="warn")], target)
        runner.begin()
        while len([r for r in target.results if r[0] == 1]) < 3:
            await asyncio.sleep(0.01)
        healthy = await runner.wait_healthy(1)
        await runner.stop()
        return runner.status(), healthy, target

    status, healthy, target = run(go())
    assert healthy and status.state == "healthy"
    assert status.warnings == ["script: disk 95% full"] and status.reason == "warn: script: disk 95% full"
    assert [c.state for c in status.checks] == ["healthy", "warning"]
    assert target.statuses[-1].warnings == ["script: disk 95% full"]


def test_context_carries_a_frozen_snapshot_of_the_process_tree():
    import subprocess
    import sys

    seen: list[CheckContext] = []

    class Looks(HealthCheck):
        name = "looks"

        async def check(self, ctx: CheckContext) -> Result:
            seen.append(ctx)
            return Result.ok()

    parent = subprocess.Popen([sys.executable, "-c", "import subprocess, sys; subprocess.run(['sleep', '30'])"],
                              stdin=subprocess.PIPE)
    try:
        async def go():
            target = FakeTarget(pid=parent.pid)
            runner = HealthRunner([spec(Looks, every=0.05)], target)
            runner.begin()
            while not seen or len(seen[-1].tree()) < 2:  # the grandchild appears once python has forked it
                await asyncio.sleep(0.02)
            await runner.stop()

        run(go())
    finally:
        for p in psutil.Process(parent.pid).children(recursive=True):
            p.kill()
        parent.kill()
        parent.wait()
    ctx = seen[-1]
    assert [p.pid for p in ctx.tree()][0] == parent.pid and ctx.tree()[1].name == "sleep"
    assert ctx.tree_rss() == sum(p.rss for p in ctx.tree()) > 0
    assert not hasattr(ctx, "process")
    with pytest.raises(AttributeError):
        ctx.tree()[0].rss = 1  # type: ignore[misc]
