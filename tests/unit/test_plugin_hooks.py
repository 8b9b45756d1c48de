"""HookRunner: dispatch never blocks the master; a slow, hanging or raising hook is isolated."""

from __future__ import annotations

import asyncio
import time

import msgspec

from supervisor.hooks import HookRunner
from supervisor.plugin import EventHook, ProcessEvent
from supervisor.plugin_specs import HookSpec


class NoOptions(msgspec.Struct):
    pass


def hook_spec(cls: type[EventHook], events: frozenset[str] | None = None, timeout: float = 0.1) -> HookSpec:
    return HookSpec(name=cls.name, create=lambda: cls(NoOptions()), events=events, timeout=timeout)


def test_dispatch_is_immediate_and_hooks_are_isolated():
    seen: list[str] = []

    class Records(EventHook):
        name = "records"
        Options = NoOptions

        async def on_event(self, event: ProcessEvent) -> None:
            seen.append(event.kind)

    class Hangs(EventHook):
        name = "hangs"
        Options = NoOptions

        async def on_event(self, event: ProcessEvent) -> None:
            await asyncio.Event().wait()

    class Raises(EventHook):
        name = "raises"
        Options = NoOptions

        async def on_event(self, event: ProcessEvent) -> None:
            raise RuntimeError("boom")

    async def go():
        runner = HookRunner([hook_spec(Hangs), hook_spec(Raises), hook_spec(Records, frozenset({"exited", "fatal"}))])
        runner.start()
        started = time.monotonic()
        for kind in ("started", "exited", "backoff", "fatal"):
            runner.dispatch(ProcessEvent(kind=kind, bot="api", instance=0))  # type: ignore[arg-type]
        elapsed = time.monotonic() - started
        drained = await runner.drain(5)
        await runner.stop()
        return elapsed, drained

    elapsed, drained = asyncio.run(go())
    assert elapsed < 0.05 and drained
    assert seen == ["exited", "fatal"]


def test_a_hook_far_behind_keeps_the_newest_events():
    seen: list[int] = []

    class Slow(EventHook):
        name = "slow"
        Options = NoOptions

        async def on_event(self, event: ProcessEvent) -> None:
            seen.append(event.instance)

    async def go():
        runner = HookRunner([hook_spec(Slow)], queue_size=2)
        for i in range(5):  # not started yet: the queue fills up
            runner.dispatch(ProcessEvent(kind="started", bot="api", instance=i))
        runner.start()
        drained = await runner.drain(5)
        await runner.stop()
        return drained

    assert asyncio.run(go())
    assert seen == [3, 4]
