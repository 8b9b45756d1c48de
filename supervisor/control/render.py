"""How replies look to a person: tables, durations, sizes. Pure string functions, no I/O."""

from __future__ import annotations

from collections.abc import Sequence

from ..core.units import format_size
from .protocol import BridgeStatus, DegradationStatus, FdUsage, HealthRow, InstanceStatus, TaskRow


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60}m"
    return f"{s // 86400}d{s % 86400 // 3600}h"


def size(n: int | None) -> str:
    return "-" if n is None else format_size(n)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(headers), *(line(r) for r in rows)])


STATUS_HEADERS = ("BOT", "INST", "STATE", "PID", "UPTIME", "RESTARTS", "CPU", "MEM", "LAST EXIT")
EXTRA_HEADERS = {"health": "HEALTH", "bus": "BUS IN/OUT/DROP", "log_lost": "LOG LOST"}


def fds_warning(fds: FdUsage | None) -> str | None:
    """One line under the status table, only when the fleet needs more descriptors than the master may open."""
    if fds is None or fds.needed <= fds.soft:
        return None
    return f"warning: the fleet needs about {fds.needed} file descriptors, the master's limit is {fds.soft} ({fds.open} open)"


def status_table(rows: list[InstanceStatus]) -> str:
    return fleet_table([("", rows)])


def fleet_table(hosts: list[tuple[str, list[InstanceStatus]]]) -> str:
    """One table for several masters, with a HOST column (the status table when the only host is "")."""
    with_host = any(h for h, _ in hosts)
    every = [r for _, rows in hosts for r in rows]
    extra = [h for h in EXTRA_HEADERS if any(getattr(r, h) for r in every)]
    cells = [
        [*([host] if with_host else []), r.bot, str(r.instance), r.state, str(r.pid or "-"), duration(r.uptime),
         str(r.restarts), "-" if r.cpu is None else f"{r.cpu:.0f}%", size(r.rss), r.last_exit or "-",
         *(size(r.log_lost) if h == "log_lost" else getattr(r, h) or "-" for h in extra)]
        for host, rows in hosts for r in rows
    ]
    return table([*(["HOST"] if with_host else []), *STATUS_HEADERS, *(EXTRA_HEADERS[h] for h in extra)], cells)


def degradation_line(d: DegradationStatus, now: float) -> str:
    """`[fleet.degradation]` in one line under `supctl status`."""
    return (f"fleet degradation: {d.level} for {duration(now - d.since)} "
            f"({d.healthy} of {d.total} instances healthy, {d.share:.0%})")


def bridge_line(b: BridgeStatus, now: float) -> str:
    """The NATS bridge in one line under `supctl status`."""
    where = f"{b.server} " if b.server and b.state == "connected" else ""
    head = f"nats: {b.state} {where}as {b.host} in fleet {b.fleet} for {duration(now - b.since)}"
    if b.error:
        head += f" ({b.error})"
    others = f"{len(b.remote_hosts)} other host(s){': ' + ', '.join(b.remote_hosts) if b.remote_hosts else ''}"
    counts = f"sent {b.sent}, received {b.received}, buffered {b.buffered}, dropped {b.dropped}, invalid {b.invalid}"
    return f"{head}\n      {others}; {counts}; retained: {b.retained or '-'}"


def tasks_table(rows: list[TaskRow]) -> str:
    def last(r: TaskRow) -> str:
        if not r.runs:
            return "-"
        run = r.runs[-1]
        how = f"code {run.exit_code}" if run.exit_code is not None else run.outcome
        return f"{run.started} {how} in {run.duration:.2f}s"

    cells = [[r.name, r.schedule, r.next_run or "-", str(r.running), str(r.skipped), last(r)] for r in rows]
    return table(("TASK", "SCHEDULE", "NEXT RUN", "RUNNING", "SKIPPED", "LAST RUN"), cells)


def health_report(rows: list[HealthRow], last: int = 10) -> str:
    """Per instance: the summary line, then its last results and recoveries with local times."""
    import time

    out = []
    for r in rows:
        out.append(f"{r.bot}:{r.instance}  {r.summary}")
        for e in r.records[-last:]:
            stamp = time.strftime("%H:%M:%S", time.localtime(e.time))
            if e.kind == "check":
                verdict = "ok" if e.ok else "FAIL"
            else:
                verdict = "skipped" if e.skipped else "recovered" if e.ok else "recovery failed"
            took = "-" if e.skipped else f"{e.duration * 1000:.0f}ms"
            out.append(f"  {stamp}  {e.kind:8} {e.name:14} {verdict:15} {took:>8}  {e.reason}")
    return "\n".join(out)
