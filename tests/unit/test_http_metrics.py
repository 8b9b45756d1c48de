"""The metrics writer: byte for byte what prometheus-client's generate_latest writes, for the families we make."""

from __future__ import annotations

import os
import subprocess
import time
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry

from supervisor.bus.frames import BusTotals
from supervisor.core.procstat import HeldStats
from supervisor.core.states import State
from supervisor.engine.kill_switch import KillSwitchState
from supervisor.health.runner import CheckStatus, HealthStatus, Record
from supervisor.http.metrics import Exposition, FleetCollector, MasterProcess, check_labels, registry, usage


def fleet_registry(pid: int, insts: list[SimpleNamespace]):
    states = list(State)
    insts[:] = [SimpleNamespace(bot=f"bot{i % 7}", index=i, state=states[i % len(states)], restarts=i, pid=pid,
                                restarts_by={"exit": i, "manual": i % 2}, started_at=time.time()) for i in range(40)]
    runner = SimpleNamespace(
        history=lambda: [Record(kind="check", index=0, name="http", ok=True, reason="", time=1.0, duration=0.25)],
        status=lambda: HealthStatus(state="healthy", reason="", checks=[
            CheckStatus(index=0, check="http", key="http", state="healthy", reason="ok", streak=0, last=1.0),
            CheckStatus(index=1, check="tcp", key="tcp#2", state="unknown", reason="", streak=0, last=None)]))
    health = SimpleNamespace(of=lambda inst: SimpleNamespace(runner=runner) if inst.index % 3 == 0 else None)
    task = SimpleNamespace(runner=SimpleNamespace(totals={"success": 3, "failure": 1}, skipped=2,
                                                  last_success=datetime(2026, 1, 2, tzinfo=timezone.utc)))
    ks = SimpleNamespace(state=KillSwitchState(active=True, by="http 127.0.0.1", since=1.5,
                                               reason='a "quoted" \\ reason\non two lines'))
    bus = BusTotals(connections=1, msgs_in=5, msgs_out=7, dropped=1)
    return registry(FleetCollector(SimpleNamespace(instances=lambda: insts), health, {"backup": task}, lambda: bus, ks))


def test_exposition_is_generate_latest_byte_for_byte() -> None:
    """Scrape after scrape, while states, restarts and values change and instances go (what the label and value
    caches must follow)."""
    insts: list[SimpleNamespace] = []
    fleet = fleet_registry(os.getpid(), insts)
    families: list = []

    class Fixed(Collector):
        def collect(self):
            return families  # one scrape's values, written both ways

    reg = CollectorRegistry(auto_describe=False)
    reg.register(Fixed())
    writer = Exposition(reg)
    for scrape in range(4):
        families[:] = list(fleet.collect())
        ours = writer.render()
        assert ours == generate_latest(reg), scrape
        insts[scrape].state = State.FATAL
        insts[scrape + 1].restarts_by = {"exit": 2, "health": 1, "watch": 3}
        insts[scrape + 2].started_at = -0.0
        del insts[-1]
    assert 'reason="a \\"quoted\\" \\\\ reason\\non two lines"' in ours.decode()
    assert b'supctl_check_healthy{bot="bot0",check="http",instance="0"} 1.0' in ours
    assert b'check="tcp"' not in ours.split(b"supctl_check_duration")[0].split(b"supctl_check_healthy")[1]
    assert b'supctl_instance_restarts_total{bot="bot3",instance="3",reason="watch"} 3.0' in ours
    assert b'supctl_instance_start_time_seconds{bot="bot4",instance="4"} -0.0' in ours


def test_check_labels_number_repeats() -> None:
    assert check_labels(["http", "tcp", "http", "http"]) == ["http", "tcp", "http#2", "http#3"]


def test_usage_reads_cpu_and_rss_of_a_live_process() -> None:
    cpu, rss = usage(HeldStats().fields(os.getpid()))
    assert cpu > 0 and rss > 10 * 1024 * 1024
    assert HeldStats().fields(2 ** 22 + 12345) is None


def test_held_stats_follow_the_process_not_its_number() -> None:
    """A held /proc/PID/stat reads the live process; once it is reaped the read fails and the descriptor is closed,
    so a reused pid is never read through the old one."""
    held = HeldStats()
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert held.fields(child.pid) is not None
        fd = held._fds[child.pid]
        assert held.fields(child.pid) is not None and held._fds[child.pid] == fd  # the same descriptor, read again
    finally:
        child.kill()
        child.wait()
    assert held.fields(child.pid) is None and child.pid not in held._fds
    with pytest.raises(OSError):
        os.fstat(fd)
    held.fields(os.getpid())
    held.keep_only(set())
    assert held._fds == {}


def test_master_process_metrics_are_those_of_prometheus_clients_collector() -> None:
    """The same process_* names, types and help as ProcessCollector, values within what a few ms changes."""
    ours = {m.name: m for m in MasterProcess().collect()}
    theirs = {m.name: m for m in ProcessCollector(registry=None).collect()}
    assert list(ours) == list(theirs)
    for name, m in theirs.items():
        assert (ours[name].type, ours[name].documentation) == (m.type, m.documentation), name
        assert ours[name].samples[0].name == m.samples[0].name
    assert abs(ours["process_start_time_seconds"].samples[0].value - theirs["process_start_time_seconds"].samples[0].value) < 0.05
    assert ours["process_max_fds"].samples[0].value == theirs["process_max_fds"].samples[0].value
    assert abs(ours["process_open_fds"].samples[0].value - theirs["process_open_fds"].samples[0].value) <= 1
