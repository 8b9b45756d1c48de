"""`supctl fleet status|restart|stop|start`: every master of this procfile's NATS fleet ([bus.nats]).

Parsing and printing only; talking to the fleet is supervisor.bridge.fleet_rpc.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

import msgspec

from ..control.protocol import ActionReply, Error, StatusReply
from ..control.views import FleetHostView, fleet_host_view

if TYPE_CHECKING:
    from ..bridge.fleet_rpc import FleetReply


def add_parser(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    fleet = sub.add_parser("fleet", help="status of every master in the NATS fleet; act on HOST:BOT", parents=parents)
    verbs = fleet.add_subparsers(dest="fleet_verb", required=True, metavar="FLEET_VERB")
    st = verbs.add_parser("status", help="one table of every master's bots, with a HOST column", parents=parents)
    st.add_argument("--timeout", type=float, default=1.0, help="how long to collect answers (default 1s)")
    for verb in ("restart", "stop", "start"):
        a = verbs.add_parser(verb, help=f"{verb} BOT (BOT:k or all) on HOST's master", parents=parents)
        a.add_argument("target", metavar="HOST:BOT", help="a host of the fleet and a bot, BOT:k or all on it")
        a.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for that master (default 30)")
    return fleet


def run(args: argparse.Namespace, procfile: str) -> int:
    """Exit status 0, or 1 when no master answered or an action failed; ValueError/LookupError/... go to the caller."""
    import asyncio  # here: every verb builds this module's parser, and asyncio costs `supctl status` ~35 ms

    from ..bridge.fleet_rpc import fleet_act, fleet_status
    from ..config.procfile import load

    loaded = load(procfile)
    cfg = loaded.bus.nats
    if cfg is None:
        raise LookupError(f"{procfile} has no [bus.nats] section: this master is not in a fleet")
    if args.fleet_verb == "status":
        replies = asyncio.run(fleet_status(cfg, loaded.base_dir, args.timeout))
        if args.json:
            sys.stdout.write(msgspec.json.encode([_view(r) for r in replies]).decode() + "\n")
        else:
            _print_status(replies)
        if not replies:
            print(f"no master of fleet {cfg.fleet!r} answered within {args.timeout}s", file=sys.stderr)
        return 0 if replies else 1
    host, sep, target = args.target.partition(":")
    if not sep or not host or not target:
        raise ValueError(f"expected HOST:BOT (or HOST:BOT:k, HOST:all), found {args.target!r}")
    reply = asyncio.run(fleet_act(cfg, loaded.base_dir, args.fleet_verb, host, target, args.timeout))
    if args.json:
        sys.stdout.write(msgspec.json.encode(_view(reply)).decode() + "\n")
    elif isinstance(reply.reply, ActionReply):
        print(f"{reply.host}: {reply.reply.message}")
    else:
        print(f"{reply.host}: {reply.error or (reply.reply.message if isinstance(reply.reply, Error) else reply.reply)}",
              file=sys.stderr)
    return 0 if isinstance(reply.reply, ActionReply) and reply.reply.ok else 1


def _print_status(replies: list[FleetReply]) -> None:
    from ..control.render import bridge_line, fleet_table

    hosts = [(r.host, r.reply.instances) for r in replies if isinstance(r.reply, StatusReply)]
    print(fleet_table(hosts) if hosts else "no masters answered")
    now = time.time()
    for r in replies:
        print(f"{r.host}: supctl {r.version}, pid {r.pid}, {r.procfile}")
        if isinstance(r.reply, StatusReply) and r.reply.bridge is not None:
            print("  " + bridge_line(r.reply.bridge, now))
        elif not isinstance(r.reply, StatusReply):
            print(f"  error: {r.error or r.reply}")


def _view(r: FleetReply) -> FleetHostView:
    return fleet_host_view(r.host, r.procfile, r.version, r.pid, r.reply, r.error)
