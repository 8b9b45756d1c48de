"""How replies look to a person: tables, durations, sizes. Pure string functions, no I/O."""

from __future__ import annotations

from collections.abc import Sequence

from ..core.units import format_size
from .protocol import (
    BotDescription,
    BridgeStatus,
    DegradationStatus,
    FdUsage,
    HealthRow,
    HealthState,
    InstanceStatus,
    LastExit,
    StopWait,
    TaskRow,
)


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
    """One format string for every row: a third faster than padding cell by cell at 1,000 rows."""
    widths = [max(map(len, column)) for column in zip(headers, *rows)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*r).rstrip() for r in (headers, *rows)])


STATUS_HEADERS = ("BOT", "INST", "STATE", "PID", "UPTIME", "RESTARTS", "CPU", "MEM", "LAST EXIT")
EXTRA_HEADERS = {"health": "HEALTH", "bus": "BUS IN/OUT/DROP", "log_lost": "LOG LOST"}


def fds_warning(fds: FdUsage | None) -> str | None:
    """One line under the status table, only when the fleet needs more descriptors than the master may open."""
    if fds is None or fds.needed <= fds.soft:
        return None
    return f"warning: the fleet needs about {fds.needed} file descriptors, the master's limit is {fds.soft} ({fds.open} open)"


def exit_text(e: LastExit | None) -> str:
    if e is None:
        return "-"
    if e.reason == "SIGKILL after stop_timeout":
        return "SIGKILL after stop_timeout"
    how = f"signal {e.signal}" if e.signal else f"code {e.code}" if e.code is not None else "not started"
    return f"{how} after {e.after_s:.2f}s" + (f": {e.reason}" if e.reason else "")


def health_text(h: HealthState | None) -> str:
    if h is None:
        return "-"
    if h.state == "degraded":
        return f"DEGRADED: {h.reason}"
    if h.state == "waiting":
        return h.reason
    return h.state if h.reason in ("", "all checks pass") else f"{h.state}: {h.reason}"


def state_text(r: InstanceStatus, now: float) -> str:
    """BACKOFF says when the next try is."""
    if r.state == "BACKOFF" and r.next_try_at is not None:
        return f"BACKOFF (next try in {duration(max(0.0, r.next_try_at - now))})"
    return r.state


STATE_COLOURS = {"RUNNING": "32", "FATAL": "31", "BACKOFF": "33", "STARTING": "36", "STOPPING": "36"}
FLEXIBLE = ("LAST EXIT", "HEALTH")
"""The columns with free text, cut to fit the terminal (the whole text is in `describe` and `health`)."""


def status_table(rows: list[InstanceStatus], now: float = 0.0, width: int | None = None, colour: bool = False) -> str:
    return fleet_table([("", rows)], now, width, colour)


def fleet_table(hosts: list[tuple[str, list[InstanceStatus]]], now: float = 0.0, width: int | None = None,
                colour: bool = False) -> str:
    """One table for several masters, with a HOST column (the status table when the only host is "")."""
    with_host = any(h for h, _ in hosts)
    every = [r for _, rows in hosts for r in rows]
    extra = [h for h in EXTRA_HEADERS if any(getattr(r, h) for r in every)]

    def cell(r: InstanceStatus, h: str) -> str:
        return size(r.log_lost) if h == "log_lost" else health_text(r.health) if h == "health" else getattr(r, h) or "-"

    cells = [
        [*([host] if with_host else []), r.bot, str(r.instance), state_text(r, now), str(r.pid or "-"), duration(r.uptime),
         str(r.restarts), "-" if r.cpu is None else f"{r.cpu:.0f}%", size(r.rss), exit_text(r.last_exit),
         *(cell(r, h) for h in extra)]
        for host, rows in hosts for r in rows
    ]
    headers = [*(["HOST"] if with_host else []), *STATUS_HEADERS, *(EXTRA_HEADERS[h] for h in extra)]
    if width is not None:
        fit(headers, cells, width)
    text = table(headers, cells)
    if not colour:
        return text
    col = headers.index("STATE")
    lines = text.split("\n")
    start = lines[0].index("STATE")
    for i, r in enumerate(cells, start=1):
        code = "33" if "DEGRADED" in " ".join(r) and r[col] == "RUNNING" else STATE_COLOURS.get(r[col].split()[0])
        if code:
            lines[i] = lines[i][:start] + f"\x1b[{code}m{r[col]}\x1b[0m" + lines[i][start + len(r[col]):]
    return "\n".join(lines)


def fit(headers: list[str], cells: list[list[str]], width: int) -> None:
    """Cut the free-text columns (the last first) until the table fits `width`, ending each cut with '…'."""
    for name in reversed(FLEXIBLE):
        if name not in headers:
            continue
        i = headers.index(name)
        widths = [max([len(h), *(len(r[j]) for r in cells)]) for j, h in enumerate(headers)]
        over = sum(widths) + 2 * (len(headers) - 1) - width
        if over <= 0:
            return
        room = max(widths[i] - over, len(name))
        for r in cells:
            if len(r[i]) > room:
                r[i] = r[i][: room - 1] + "…"


def degradation_line(d: DegradationStatus, now: float) -> str:
    """`[fleet.degradation]` under `supctl status`: the fleet's line, then one per group."""
    return "\n".join(f"{f'group {x.group}' if x.group else 'fleet'} degradation: {x.level} for {duration(now - x.since)} "
                     f"({x.healthy} of {x.total} instances healthy, {x.share:.0%})" for x in (d, *d.groups))


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


def describe_text(d: BotDescription, now: float) -> str:
    """`supctl describe`: sections a person reads top to bottom; nothing cut."""
    import json

    out = [f"bot {d.bot}", f"  command      {' '.join(d.argv)}", f"  cwd          {d.cwd}",
           f"  depends on   {', '.join(d.depends_on) or '-'}"]
    out.append("  environment  " + (", ".join(f"{k}={v}" for k, v in d.env.items()) or "-"))
    out.append("configuration (defaults merged)")
    out += [f"  {k:14} {json.dumps(v)}" for k, v in d.config.items()]
    out.append("instances")
    for r, b, log in zip(d.instances, d.budgets, d.logs):
        out.append(f"  {r.bot}:{r.instance}  {state_text(r, now)}  pid {r.pid or '-'}  up {duration(r.uptime)}  "
                   f"restarts {r.restarts}  budget {b.used}/{b.count} used in {b.window} ({b.left} left)  "
                   f"next backoff {duration(b.next_backoff_s)}")
        out.append(f"    last exit  {exit_text(r.last_exit)}")
        out.append(f"    health     {health_text(r.health)}")
        out.append(f"    log        {log}")
    if d.health:
        out.append("health checks")
        out.append(health_report(d.health))
    return "\n".join(out)


def instance_ranges(indexes: list[int]) -> str:
    """[0, 1, 2, 5, 7, 8] -> '0-2,5,7-8'."""
    out: list[str] = []
    start = prev = indexes[0]
    for k in [*indexes[1:], None]:
        if k is not None and k == prev + 1:
            prev = k
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        if k is not None:
            start = prev = k
    return ",".join(out)


def wait_lines(waits: list[StopWait]) -> list[str]:
    """What a stop waits for, one line per bot and signal: 1,000 instances of one bot are one line, not 1,000."""
    groups: dict[tuple[str, str, float], list[int]] = {}
    for w in waits:
        bot, _, k = w.name.rpartition(":")
        groups.setdefault((bot, w.signal, w.timeout_s), []).append(int(k))
    out = []
    for (bot, sig, timeout), ks in groups.items():
        who = f"{bot}:{ks[0]}" if len(ks) == 1 else f"{bot}:{instance_ranges(ks)} ({len(ks)} instances)"
        out.append(f"{who}: sending SIG{sig.removeprefix('SIG')}, SIGKILL in {timeout:g}s if it is still running")
    return out
