"""HookRunner: dispatch never blocks the master; a slow, hanging or raising hook is isolated."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from supervisor.core.errors import ConfigError
from supervisor.health.hooks import HookRunner
from supervisor.health.loader import load_registry, parse_hooks
from supervisor.health.specs import HookSpec
from supervisor.plugin import EventHook, ProcessEvent


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
        for kind in ("started", "exited", "backoff", "fatal"):  # would never return if a hung hook could block it
            runner.dispatch(ProcessEvent(kind=kind, bot="api", instance=0))  # type: ignore[arg-type]
        drained = await runner.drain(5)
        await runner.stop()
        return drained

    assert asyncio.run(go())
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


def test_hooks_from_a_plugin_path_are_parsed_and_validated(tmp_path):
    (tmp_path / "metrics.py").write_text(
        "import msgspec\n"
        "from supervisor.plugin import EventHook\n"
        "class Opts(msgspec.Struct, forbid_unknown_fields=True):\n"
        "    prefix: str = 'supctl'\n"
        "class Metrics(EventHook):\n"
        "    name = 'metrics'\n"
        "    Options = Opts\n"
        "    async def on_event(self, event):\n"
        "        pass\n")
    registry = load_registry(["metrics.py"], tmp_path, entry_points=[])
    [spec] = parse_hooks("p.toml", [{"hook": "metrics", "events": ["fatal"], "prefix": "x"}], registry)
    assert spec.events == frozenset({"fatal"}) and spec.create().options.prefix == "x"
    with pytest.raises(ConfigError) as info:
        parse_hooks("p.toml", [{"hook": "metric"}], registry)
    assert info.value.key == "supervisor.hooks[0].hook" and "did you mean 'metrics'?" in info.value.message
    with pytest.raises(ConfigError) as info:
        parse_hooks("p.toml", [{"hook": "metrics", "prefx": "x"}], registry)
    assert info.value.key == "supervisor.hooks[0].prefx"
    with pytest.raises(ConfigError) as info:
        parse_hooks("p.toml", [{"hook": "metrics", "events": ["fatal", "exitted"]}], registry)
    assert info.value.key == "supervisor.hooks[0].events[1]" and "did you mean 'exited'?" in info.value.message
