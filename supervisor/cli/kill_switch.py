"""`supctl kill-switch on --reason ... | off | status`: parse, ask the master, print."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import msgspec

from ..control.protocol import KillSwitchReply, KillSwitchRequest, KillSwitchStatus


def kill_switch_line(ks: KillSwitchStatus) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ks.since))
    head = "KILL SWITCH ACTIVE" if ks.active else "kill switch off"
    if not ks.since:
        return "kill switch off (never set)"
    return f"{head} since {when}, set by {ks.by}" + (f": {ks.reason}" if ks.reason and ks.active else "")


def run(args: argparse.Namespace, ask: Callable[[argparse.Namespace, msgspec.Struct], object],
        print_json: Callable[[object], None]) -> int:
    """main.py hands in its `ask` and `print_json` (this module never imports main: it may run as __main__)."""
    activate = {"on": True, "off": False, "status": None}[args.switch]
    if activate and not args.reason:
        print("supctl: kill-switch on needs --reason (whoever releases it wants to know why)", file=sys.stderr)
        return 2
    reply = ask(args, KillSwitchRequest(activate=activate, reason=args.reason or "", by="cli"))
    assert isinstance(reply, KillSwitchReply)
    if args.json:
        print_json(reply.state)
        return 0
    print(kill_switch_line(reply.state))
    if reply.stopped:
        print(f"stopped: {', '.join(reply.stopped)}")
    if activate is False:
        print("bots stay as they are; start them with: supctl start all")
    return 0


def add_parser(verb: Callable[..., argparse.ArgumentParser], func: Callable[[argparse.Namespace], int]) -> None:
    ks = verb("kill-switch", func, "stop every bot with kill_switch = true and keep it stopped (on), "
              "release it (off), or show it (status)")
    ks.add_argument("switch", choices=["on", "off", "status"], help="on (stop every bot and start none), off, or status")
    ks.add_argument("--reason", help="why (required with on; shown in status, /health and /metrics)")
