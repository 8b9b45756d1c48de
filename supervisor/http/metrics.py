"""GET /metrics: a prometheus-client collector that reads the master's state at scrape time (no sampling loop)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry

from ..bus.frames import BusStats
from ..core.states import ALIVE, State
from ..engine.fleet import Fleet
from ..engine.kill_switch import KillSwitch
from ..health.target import HealthBoard
from ..jobs.tasks import ScheduledTask

_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
STATES = [s.value for s in State]


def proc_stat(pid: int) -> tuple[float, int] | None:
    """(CPU seconds of the process and its reaped children, resident bytes) from one read of /proc/PID/stat: a
    psutil.Process per instance per scrape would cost most of the 5 ms a 100-bot scrape may take."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2:].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime + cutime + cstime) / _TICK, int(fields[21]) * _PAGE


class FleetCollector(Collector):
    """Every metric of docs/http.md, built from the live objects each time Prometheus asks."""

    def __init__(self, fleet: Fleet, health: HealthBoard, tasks: Mapping[str, ScheduledTask],
                 bus_stats: Callable[[], dict[tuple[str, int], BusStats]], kill_switch: KillSwitch) -> None:
        self._fleet, self._health, self._tasks, self._bus_stats, self._ks = fleet, health, tasks, bus_stats, kill_switch

    def collect(self) -> Iterator[Metric]:
        yield from self._instances()
        yield from self._checks()
        yield from self._bus()
        yield from self._task_metrics()
        yield from self._kill_switch()

    def _instances(self) -> tuple[Metric, ...]:
        labels = ["bot", "instance"]
        up = GaugeMetricFamily("supctl_instance_up", "1 when the instance is RUNNING", labels=labels)
        state = GaugeMetricFamily("supctl_instance_state", "1 for the instance's current state, 0 for the others",
                                  labels=[*labels, "state"])
        restarts = CounterMetricFamily("supctl_instance_restarts", "Restarts after an exit, since the master started",
                                       labels=[*labels, "reason"])
        cpu = CounterMetricFamily("supctl_instance_cpu_seconds", "CPU time of the instance's process and its reaped "
                                  "children (resets when the process restarts)", labels=labels)
        rss = GaugeMetricFamily("supctl_instance_resident_memory_bytes", "Resident memory of the instance's process",
                                labels=labels)
        started = GaugeMetricFamily("supctl_instance_start_time_seconds", "When the running process started, "
                                    "seconds since the epoch", labels=labels)
        for inst in self._fleet.instances():
            key = [inst.bot, str(inst.index)]
            up.add_metric(key, 1.0 if inst.state == State.RUNNING else 0.0)
            for s in STATES:
                state.add_metric([*key, s], 1.0 if inst.state.value == s else 0.0)
            restarts.add_metric([*key, "exit"], inst.restarts)
            if inst.state in ALIVE and inst.pid is not None:
                usage = proc_stat(inst.pid)
                if usage is not None:
                    cpu.add_metric(key, usage[0])
                    rss.add_metric(key, usage[1])
                if inst.started_at is not None:
                    started.add_metric(key, inst.started_at)
        return up, state, restarts, cpu, rss, started

    def _checks(self) -> tuple[Metric, ...]:
        labels = ["bot", "instance", "check"]
        healthy = GaugeMetricFamily("supctl_check_healthy", "1 healthy, 0 unhealthy, absent before the first result",
                                    labels=labels)
        duration = GaugeMetricFamily("supctl_check_duration_seconds", "How long the check's last run took",
                                     labels=labels)
        for inst in self._fleet.instances():
            checks = self._health.of(inst)
            if checks is None:
                continue
            last: dict[int, float] = {}
            for record in checks.runner.history():
                if record.kind == "check":
                    last[record.index] = record.duration
            for c in checks.runner.status().checks:
                key = [inst.bot, str(inst.index), c.key]
                if c.last is not None:  # a result of the current process (a failing warn check reports 0 too)
                    healthy.add_metric(key, 1.0 if c.state == "healthy" else 0.0)
                if c.index in last:
                    duration.add_metric(key, last[c.index])
        return healthy, duration

    def _bus(self) -> tuple[Metric, ...]:
        msgs = CounterMetricFamily("supctl_bus_messages", "Bus messages the bots published (in) and were delivered "
                                   "(out)", labels=["direction"])
        dropped = CounterMetricFamily("supctl_bus_dropped", "Bus messages dropped for slow subscribers")
        conns = GaugeMetricFamily("supctl_bus_connections", "Bot instances connected to the bus")
        stats = self._bus_stats().values()
        msgs.add_metric(["in"], sum(s.msgs_in for s in stats))
        msgs.add_metric(["out"], sum(s.msgs_out for s in stats))
        dropped.add_metric([], sum(s.dropped for s in stats))
        conns.add_metric([], sum(1 for s in stats if s.connected))
        return msgs, dropped, conns

    def _task_metrics(self) -> tuple[Metric, ...]:
        runs = CounterMetricFamily("supctl_task_runs", "Finished runs of a scheduled task by result (success, "
                                   "failure, timeout, error, cancelled)", labels=["task", "result"])
        success = GaugeMetricFamily("supctl_task_last_success_timestamp_seconds", "When the task's last successful "
                                    "run started, seconds since the epoch", labels=["task"])
        skipped = CounterMetricFamily("supctl_task_skipped", "Runs skipped because the previous one was still going",
                                      labels=["task"])
        for name, task in self._tasks.items():
            for result, n in task.runner.totals.items():
                runs.add_metric([name, result], n)
            if task.runner.last_success is not None:
                success.add_metric([name], task.runner.last_success.timestamp())
            skipped.add_metric([name], task.runner.skipped)
        return runs, success, skipped

    def _kill_switch(self) -> tuple[Metric, ...]:
        state = self._ks.state
        active = GaugeMetricFamily("supctl_kill_switch_active", "1 while the kill switch holds its bots stopped")
        active.add_metric([], 1.0 if state.active else 0.0)
        info = InfoMetricFamily("supctl_kill_switch", "Who set the kill switch last, why, and whether it is active")
        info.add_metric([], {"active": str(state.active).lower(), "by": state.by, "reason": state.reason})
        since = GaugeMetricFamily("supctl_kill_switch_changed_timestamp_seconds", "When the kill switch last "
                                  "changed, seconds since the epoch (0: never)")
        since.add_metric([], state.since)
        return active, info, since


def registry(collector: FleetCollector) -> CollectorRegistry:
    """A registry of our own with the master's process_* metrics (one /proc read), not the default's GC and
    platform collectors."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(collector)
    ProcessCollector(registry=reg)
    return reg
