"""The bundled `host` check: the machine's memory, disk and CPU against percent limits, read from this host."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from supervisor.plugins.resources import HostCheck, HostOptions

from supervisor.core.errors import ConfigErrors
from supervisor.health.loader import load_registry, parse_health
from supervisor.health.testing import FakeTarget, bundled_entry_points
from supervisor.plugin import Result


def checks(check: HostCheck, n: int, between=lambda: None) -> list[Result]:
    async def go() -> list[Result]:
        ctx = await FakeTarget(pid=os.getpid()).context()
        found = []
        for _ in range(n):
            found.append(await check.check(ctx))
            between()
        return found

    return asyncio.run(go())


def burn() -> None:
    """Keep one CPU busy long enough for the host's counters to move (they tick every 10 ms)."""
    end = time.process_time() + 0.1
    while time.process_time() < end:
        pass


def test_limits_far_above_pass_and_name_what_was_seen(tmp_path: Path) -> None:
    first, second = checks(HostCheck(HostOptions(max_memory_percent=100, max_disk_percent=100, max_cpu_percent=100,
                                                 path=str(tmp_path))), 2, burn)
    assert first.healthy and first.reason.endswith("cpu measuring") and first.reason.startswith("memory ")
    assert second.healthy and f"disk {tmp_path} " in second.reason and "cpu measuring" not in second.reason


def test_each_limit_exceeded_fails_with_the_figure() -> None:
    (memory,) = checks(HostCheck(HostOptions(max_memory_percent=0.001)), 1)
    assert not memory.healthy and memory.reason.startswith("memory ") and memory.reason.endswith("% > max 0.001%")
    (disk,) = checks(HostCheck(HostOptions(max_disk_percent=0.001, path="/")), 1)
    assert not disk.healthy and disk.reason.startswith("disk / ")
    _, cpu = checks(HostCheck(HostOptions(max_cpu_percent=0.001)), 2, burn)
    assert not cpu.healthy and cpu.reason.startswith("cpu ") and cpu.reason.endswith("> max 0.001%")


def test_a_missing_path_fails_naming_it(tmp_path: Path) -> None:
    (gone,) = checks(HostCheck(HostOptions(max_disk_percent=80, path=str(tmp_path / "gone"))), 1)
    assert not gone.healthy and gone.reason.startswith(f"{tmp_path / 'gone'}: ")


@pytest.mark.parametrize(("table", "key", "text"), [
    ({}, "bots.api.health[0]", "needs at least one limit"),
    ({"max_memory_percent": 0}, "bots.api.health[0].max_memory_percent", "above 0 and at most 100, found 0"),
    ({"max_cpu_percent": 180}, "bots.api.health[0].max_cpu_percent", "found 180"),
    ({"max_disk_percent": "80%"}, "bots.api.health[0].max_disk_percent", "expected"),
])
def test_the_procfile_names_the_bad_key(table: dict, key: str, text: str) -> None:
    registry = load_registry([], Path("."), entry_points=bundled_entry_points())
    with pytest.raises(ConfigErrors) as info:
        parse_health("procfile.toml", "api", [{"check": "host", **table}], registry)
    e = info.value.errors[0]
    assert e.key == key and text in e.message, (e.key, e.message)


def test_the_procfile_takes_it() -> None:
    registry = load_registry([], Path("."), entry_points=bundled_entry_points())
    (spec,) = parse_health("procfile.toml", "api", [{"check": "host", "max_memory_percent": 80, "max_disk_percent": 80.5,
                                                     "every": "5m", "recover": "restart"}], registry)
    assert spec.every == 300
