"""GET /metrics: a prometheus-client collector that reads the master's state at scrape time (no sampling loop)."""

from __future__ import annotations

import os
import resource
from collections.abc import Callable, Iterator, Mapping
from math import copysign

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from ..bus.frames import BusTotals
from ..bus.state import FleetDegradation
from ..control.protocol import BridgeStatus
from ..core.fds import open_count
from ..core.procstat import PAGE, TICK, HeldStats
from ..core.states import ALIVE, State
from ..engine.fleet import Fleet
from ..engine.kill_switch import KillSwitch
from ..health.degradation import LEVELS
from ..health.target import HealthBoard
from ..jobs.tasks import ScheduledTask


def usage(fields: list[bytes]) -> tuple[float, int]:
    """(CPU seconds of the process and its reaped children, resident bytes) from its stat fields: a psutil.Process
    per instance per scrape would cost most of the 5 ms a 100-bot scrape may take."""
    return (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / TICK, int(fields[21]) * PAGE


def check_labels(kinds: list[str]) -> list[str]:
    """The `check` label: the check's name, `name#2` for the second check of the same name on one bot."""
    seen: dict[str, int] = {}
    out = []
    for kind in kinds:
        seen[kind] = seen.get(kind, 0) + 1
        out.append(kind if seen[kind] == 1 else f"{kind}#{seen[kind]}")
    return out


SAMPLE_TAIL = tuple(Sample._field_defaults[f] for f in Sample._fields[3:])
"""Sample's fields after name, labels and value (their number depends on prometheus-client's version): a Sample
made with tuple.__new__ skips the namedtuple's Python-level __new__, a third of its cost, 600 times a scrape."""


class Series:
    """One instance's label dicts: the instance's, the current state's, one per restart reason seen."""

    __slots__ = ("key", "reasons", "state", "state_labels")

    def __init__(self, bot: str, index: int) -> None:
        self.key = {"bot": bot, "instance": str(index)}
        self.state, self.state_labels = "", self.key
        self.reasons = {"exit": {**self.key, "reason": "exit"}}


class FleetCollector(Collector):
    """Every metric of docs/http.md, built from the live objects each time Prometheus asks."""

    def __init__(self, fleet: Fleet, health: HealthBoard, tasks: Mapping[str, ScheduledTask],
                 bus_totals: Callable[[], BusTotals], kill_switch: KillSwitch,
                 bridge_status: Callable[[], BridgeStatus | None] = lambda: None,
                 degradation: Callable[[], FleetDegradation | None] = lambda: None, stats: HeldStats | None = None) -> None:
        self._fleet, self._health, self._tasks, self._bus_totals, self._ks = fleet, health, tasks, bus_totals, kill_switch
        self._bridge_status = bridge_status
        self._degradation_now = degradation
        self._stats = stats or HeldStats()
        self._series: dict[tuple[str, int], Series] = {}
        """Each instance's label dicts, the same objects at every scrape while the instance lives, so Exposition
        formats their text once; rebuilt by each scrape from the instances it has (gone ones drop out)."""

    def collect(self) -> Iterator[Metric]:
        yield from self._instances()
        yield from self._checks()
        yield from self._bus()
        yield from self._bridge()
        yield from self._task_metrics()
        yield from self._kill_switch()
        yield from self._degradation()

    def _instances(self) -> tuple[Metric, ...]:
        labels = ["bot", "instance"]
        up = GaugeMetricFamily("supctl_instance_up", "1 when the instance is RUNNING", labels=labels)
        state = GaugeMetricFamily("supctl_instance_state", "The instance's current state (always 1; the state "
                                  "label changes)", labels=[*labels, "state"])
        restarts = CounterMetricFamily("supctl_instance_restarts", "Restarts since the master started, by reason: exit, "
                                       "health, manual, cron, watch", labels=[*labels, "reason"])
        cpu = CounterMetricFamily("supctl_instance_cpu_seconds", "CPU time of the instance's process and its reaped "
                                  "children (resets when the process restarts)", labels=labels)
        rss = GaugeMetricFamily("supctl_instance_resident_memory_bytes", "Resident memory of the instance's process",
                                labels=labels)
        started = GaugeMetricFamily("supctl_instance_start_time_seconds", "When the running process started, "
                                    "seconds since the epoch", labels=labels)
        running, make, tail = State.RUNNING, tuple.__new__, SAMPLE_TAIL
        seen, fresh, stats, pids = self._series, {}, self._stats, set()
        add_up, add_state, add_restarts = up.samples.append, state.samples.append, restarts.samples.append
        add_cpu, add_rss, add_started = cpu.samples.append, rss.samples.append, started.samples.append
        for inst in self._fleet.instances():  # Samples made directly: add_metric's checks and zip cost most here
            bot, index, now = inst.bot, inst.index, inst.state.value
            series = fresh[bot, index] = seen.get((bot, index)) or Series(bot, index)
            key = series.key
            if series.state != now:
                series.state, series.state_labels = now, {**key, "state": now}
            add_up(make(Sample, ("supctl_instance_up", key, 1.0 if inst.state is running else 0.0, *tail)))
            add_state(make(Sample, ("supctl_instance_state", series.state_labels, 1.0, *tail)))
            counted, reasons = inst.restarts_by, series.reasons  # "exit" always, others once they happened (5x the series otherwise)
            add_restarts(make(Sample, ("supctl_instance_restarts_total", reasons["exit"], counted.get("exit", 0), *tail)))
            for cause, n in counted.items():
                if cause != "exit":
                    labels = reasons.get(cause) or reasons.setdefault(cause, {**key, "reason": cause})
                    add_restarts(make(Sample, ("supctl_instance_restarts_total", labels, n, *tail)))
            if inst.state in ALIVE and inst.pid is not None:
                fields = stats.fields(inst.pid)
                if fields is not None:
                    pids.add(inst.pid)
                    seconds, resident = usage(fields)
                    add_cpu(make(Sample, ("supctl_instance_cpu_seconds_total", key, seconds, *tail)))
                    add_rss(make(Sample, ("supctl_instance_resident_memory_bytes", key, resident, *tail)))
                if inst.started_at is not None:
                    add_started(make(Sample, ("supctl_instance_start_time_seconds", key, inst.started_at, *tail)))
        self._series = fresh
        stats.keep_only(pids)
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
            statuses = checks.runner.status().checks
            names = check_labels([c.check for c in statuses])
            for c, name in zip(statuses, names):
                key = [inst.bot, str(inst.index), name]
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
        t = self._bus_totals()
        msgs.add_metric(["in"], t.msgs_in)
        msgs.add_metric(["out"], t.msgs_out)
        dropped.add_metric([], t.dropped)
        conns.add_metric([], t.connections)
        return msgs, dropped, conns

    def _bridge(self) -> tuple[Metric, ...]:
        """The NATS bridge ([bus.nats]; docs/fleet.md), absent without one."""
        b = self._bridge_status()
        if b is None:
            return ()
        up = GaugeMetricFamily("supctl_nats_connected", "1 while the bridge is connected to NATS")
        msgs = CounterMetricFamily("supctl_nats_messages", "Bus messages the bridge sent to (out) and received "
                                   "from (in) NATS", labels=["direction"])
        buffered = GaugeMetricFamily("supctl_nats_buffered", "Outbound messages waiting for NATS to come back")
        dropped = CounterMetricFamily("supctl_nats_dropped", "Outbound messages dropped past the buffer's bound")
        invalid = CounterMetricFamily("supctl_nats_invalid", "Messages from NATS refused as malformed")
        hosts = GaugeMetricFamily("supctl_nats_remote_hosts", "Other hosts of the fleet with bots connected")
        up.add_metric([], 1 if b.state == "connected" else 0)
        msgs.add_metric(["out"], b.sent)
        msgs.add_metric(["in"], b.received)
        buffered.add_metric([], b.buffered)
        dropped.add_metric([], b.dropped)
        invalid.add_metric([], b.invalid)
        hosts.add_metric([], len(b.remote_hosts))
        return up, msgs, buffered, dropped, invalid, hosts

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


    def _degradation(self) -> tuple[Metric, ...]:
        """Only with [fleet.degradation]."""
        level = self._degradation_now()
        if level is None:
            return ()
        gauge = GaugeMetricFamily("supctl_fleet_degradation_level", "The fleet's degradation level: 0 normal, "
                                  "1 reduced, 2 minimal, 3 emergency")
        gauge.add_metric([], float(LEVELS.index(level.level)))
        share = GaugeMetricFamily("supctl_fleet_healthy_share", "Healthy instances over the instances counted")
        share.add_metric([], level.share)
        if not level.groups:
            return gauge, share
        group = GaugeMetricFamily("supctl_group_degradation_level", "A [fleet.degradation.groups] group's level over "
                                  "its bots' instances: 0 normal, 1 reduced, 2 minimal, 3 emergency", labels=["group"])
        group_share = GaugeMetricFamily("supctl_group_healthy_share", "Healthy instances of a group's bots over those "
                                        "counted", labels=["group"])
        for g in level.groups:
            group.add_metric([g.group], float(LEVELS.index(g.level)))
            group_share.add_metric([g.group], g.share)
        return gauge, share, group, group_share


class MasterProcess(Collector):
    """The master's process_* metrics, named and described as prometheus-client's ProcessCollector does, from a
    held /proc/self/stat and one stat() for the fd count (that collector opens stat and limits and lists
    /proc/self/fd, ~5 entries per instance, at every scrape)."""

    def __init__(self) -> None:
        self._stats, self._pid = HeldStats(), os.getpid()
        self._boot = boot_time()

    def collect(self) -> Iterator[Metric]:
        fields = self._stats.fields(self._pid)
        if fields is not None:
            yield GaugeMetricFamily("process_virtual_memory_bytes", "Virtual memory size in bytes.", value=float(fields[20]))
            yield GaugeMetricFamily("process_resident_memory_bytes", "Resident memory size in bytes.",
                                    value=float(fields[21]) * PAGE)
            yield GaugeMetricFamily("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
                                    value=float(fields[19]) / TICK + self._boot)
            yield CounterMetricFamily("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                                      value=(float(fields[11]) + float(fields[12])) / TICK)
        yield GaugeMetricFamily("process_open_fds", "Number of open file descriptors.", value=float(open_count()))
        yield GaugeMetricFamily("process_max_fds", "Maximum number of open file descriptors.",
                                value=float(resource.getrlimit(resource.RLIMIT_NOFILE)[0]))


def boot_time() -> float:
    """Seconds since the epoch at boot (/proc/stat's btime): process start times count ticks from there."""
    with open("/proc/stat", "rb") as f:
        for line in f:
            if line.startswith(b"btime "):
                return float(line.split()[1])
    return 0.0


def registry(collector: FleetCollector) -> CollectorRegistry:
    """A registry of our own with the master's process_* metrics, not the default's GC and platform collectors."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(collector)
    reg.register(MasterProcess())
    return reg


def _value(v: str) -> str:
    return v.replace("\\", r"\\").replace("\n", r"\n").replace('"', r'\"')


class Exposition:
    """Text format 0.0.4, the same bytes as prometheus_client.generate_latest (a test compares them) for the
    families we make: gauges, counters and an info, no timestamps, legacy names. generate_latest re-checks and
    re-escapes every label name of every sample (35 ms for 100 bots on a busy box).

    Label text is kept across scrapes by the labels dict's identity: FleetCollector hands the same dicts every
    scrape, and an entry holds its dict, so the id cannot be reused by another one while it is cached. Value text
    is kept the same way by value. Each scrape keeps only what it used."""

    def __init__(self, reg: CollectorRegistry) -> None:
        self._reg = reg
        self._texts: dict[int, tuple[dict[str, str], str]] = {}
        self._values: dict[float, str] = {}

    def render(self) -> bytes:
        out: list[str] = []
        known_texts, texts = self._texts, {}
        known_values, values = self._values, {}
        for family in self._reg.collect():
            name, kind = family.name, family.type
            if kind == "counter":
                name += "_total"
            elif kind == "info":
                name, kind = name + "_info", "gauge"
            doc = family.documentation.replace("\\", r"\\").replace("\n", r"\n")
            out.append(f"# HELP {name} {doc}\n# TYPE {name} {kind}\n")
            for sample in family.samples:
                value = sample.value
                if value == 0:  # 0.0 and -0.0: one key, two texts
                    shown = "-0.0" if copysign(1.0, value) < 0 else "0.0"
                else:
                    shown = values.get(value) or known_values.get(value) or floatToGoString(value)
                    values[value] = shown
                labels = sample.labels
                if labels:
                    ident = id(labels)
                    held = texts.get(ident) or known_texts.get(ident)
                    if held is None:
                        held = labels, ",".join(f'{k}="{_value(v)}"' for k, v in sorted(labels.items()))
                    texts[ident] = held
                    out.append(f"{sample.name}{{{held[1]}}} {shown}\n")
                else:
                    out.append(f"{sample.name} {shown}\n")
        self._texts, self._values = texts, values
        return "".join(out).encode()
