"""`supctl ls`: every master of this user, found in the registry, each asked for its counts."""

from __future__ import annotations

import argparse
import time

from ..config import registry
from ..control.client import Client
from ..control.protocol import Summary, SummaryRequest
from ..control.render import duration, table
from ..control.views import MasterRow
from ..core.errors import ControlError
from .locate import OK, print_json


def row(entry: registry.Entry) -> MasterRow:
    """What one master says about itself; a registered master that does not answer is shown as such."""
    try:
        with Client(entry.control_socket, timeout=2.0) as client:
            reply = client.call(SummaryRequest())
    except ControlError:
        reply = None
    if not isinstance(reply, Summary) or reply.master.procfile != entry.procfile:
        return MasterRow(procfile=entry.procfile, state="not answering", pid=entry.pid, state_dir=entry.state_dir,
                         version=entry.version)
    m = reply.master
    return MasterRow(procfile=m.procfile, state="running", pid=m.pid, state_dir=m.state_dir, version=m.version,
                     uptime_s=round(time.time() - m.started_at, 3), bots=reply.bots, instances=reply.instances,
                     running=reply.running, fatal=reply.fatal, unhealthy=reply.unhealthy,
                     kill_switch=f"{reply.kill_switch.reason} ({reply.kill_switch.by})" if reply.kill_switch else None,
                     nats=reply.nats)


def cmd_ls(args: argparse.Namespace) -> int:
    rows = [row(e) for e in registry.entries()]
    if args.json:
        print_json(rows)
        return OK
    if not rows:
        print(f"no masters running (registry: {registry.masters_dir()})")
        return OK
    nats = any(r.nats for r in rows)
    cells = [[r.procfile, r.state if r.state != "running" else str(r.pid), duration(r.uptime_s),
              f"{r.running}/{r.instances}" if r.instances is not None else "-", str(r.fatal if r.fatal is not None else "-"),
              str(r.unhealthy if r.unhealthy is not None else "-"), r.version,
              f"ON: {r.kill_switch}" if r.kill_switch else "-", *([r.nats or "-"] if nats else [])] for r in rows]
    print(table(("PROCFILE", "PID", "UPTIME", "RUNNING", "FATAL", "UNHEALTHY", "VERSION", "KILL SWITCH",
                 *(["NATS"] if nats else [])), cells))
    return OK
