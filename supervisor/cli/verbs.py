"""The verbs that ask a running master: one request, one reply, printed for a person or as JSON."""

from __future__ import annotations

import argparse
import os
import sys
import time

from ..control.protocol import (
    Action,
    ActionReply,
    BusTokenReply,
    BusTokenRequest,
    DescribeReply,
    DescribeRequest,
    Error,
    Flush,
    HealthReply,
    HealthRequest,
    Reload,
    ReloadReply,
    RunReply,
    RunTask,
    Shutdown,
    SignalRequest,
    StatusReply,
    StatusRequest,
    StopPlan,
    StopPlanRequest,
    TasksReply,
    TasksRequest,
    status_json,
)
from ..core.errors import ControlError
from .locate import FAILED, OK, CliError, ask, connect, print_json, procfile_path


def announce_waits(args: argparse.Namespace, target: str | None) -> None:
    """Before a stop, restart or shutdown: what it will wait for, on stderr (stdout stays the result)."""
    if args.json:
        return
    from ..control.render import wait_lines

    plan = ask(args, StopPlanRequest(target=target))
    assert isinstance(plan, StopPlan)
    for line in wait_lines(plan.waits):
        print(line, file=sys.stderr, flush=True)


def print_action(args: argparse.Namespace, reply: ActionReply) -> None:
    if args.json:
        from ..control.views import action_view  # --json only: the views cost every other call ~1 ms

        print_json(action_view(reply))
        return
    print(reply.message)
    for name in reply.killed:
        print(f"{name}: did not stop within stop_timeout; SIGKILL was needed")


def act(args: argparse.Namespace, verb: str) -> int:
    if verb in ("stop", "restart"):
        announce_waits(args, args.target)
    reply = ask(args, Action(verb=verb, target=args.target))  # type: ignore[arg-type]
    assert isinstance(reply, ActionReply)
    print_action(args, reply)
    return OK if reply.ok else FAILED


def cmd_status(args: argparse.Namespace) -> int:
    if args.tasks:
        from ..control.render import tasks_table

        tasks = ask(args, TasksRequest())
        assert isinstance(tasks, TasksReply)
        print_json(tasks.tasks) if args.json else print(tasks_table(tasks.tasks))
        return OK
    reply = ask(args, StatusRequest(target=args.target))
    assert isinstance(reply, StatusReply)
    if args.json:
        print_json(status_json(reply))
        return OK
    from ..control.render import bridge_line, degradation_line, fds_warning, status_table  # not for --json (~1 ms)

    if reply.kill_switch is not None and reply.kill_switch.active:
        from .kill_switch import kill_switch_line

        print(kill_switch_line(reply.kill_switch))
    tty = sys.stdout.isatty()
    width = os.get_terminal_size(sys.stdout.fileno()).columns if tty else None
    print(status_table(reply.instances, time.time(), width, tty and not os.environ.get("NO_COLOR")))
    if reply.degradation is not None:
        print(degradation_line(reply.degradation, time.time()))
    if reply.bridge is not None:
        print(bridge_line(reply.bridge, time.time()))
    if warning := fds_warning(reply.fds):
        print(warning, file=sys.stderr)
    return OK


def cmd_run(args: argparse.Namespace) -> int:
    reply = ask(args, RunTask(name=args.task))
    assert isinstance(reply, RunReply)
    run = reply.run
    if args.json:
        print_json(run)
    else:
        how = f"exit code {run.exit_code}" if run.exit_code is not None else run.error or run.outcome
        print(f"{reply.name}: {run.outcome}, {how}, {run.duration:.2f}s (output: supctl logs {reply.name})")
    return OK if run.outcome == "exited" and run.exit_code == 0 else FAILED


def cmd_health(args: argparse.Namespace) -> int:
    from ..control.render import health_report

    reply = ask(args, HealthRequest(target=args.target))
    assert isinstance(reply, HealthReply)
    print_json(reply.instances) if args.json else print(health_report(reply.instances))
    return OK


def cmd_fleet(args: argparse.Namespace) -> int:
    from ..core.errors import ConfigErrors
    from . import fleet as fleet_cli
    from .start import print_config_errors

    try:
        return fleet_cli.run(args, procfile_path(args))
    except ConfigErrors as e:
        print_config_errors(procfile_path(args), e)
        return FAILED
    except (LookupError, ValueError, TimeoutError, OSError) as e:
        raise CliError(str(e)) from None


def cmd_bus(args: argparse.Namespace) -> int:
    from ..core.errors import BusError
    from . import bus as bus_cli

    reply = ask(args, BusTokenRequest())
    assert isinstance(reply, BusTokenReply)
    try:
        return bus_cli.run(args, reply.path, reply.token)
    except BusError as e:
        raise CliError(str(e)) from None
    except KeyboardInterrupt:
        return OK


def cmd_signal(args: argparse.Namespace) -> int:
    reply = ask(args, SignalRequest(signal=args.signal, target=args.target))
    assert isinstance(reply, ActionReply)
    print_action(args, reply)
    return OK if reply.ok else FAILED


def cmd_reload(args: argparse.Namespace) -> int:
    reply = ask(args, Reload())
    assert isinstance(reply, ReloadReply)
    if args.json:
        from ..control.views import reload_view

        print_json(reload_view(reply))
    else:
        for label in ("added", "removed", "restarted", "kept"):
            print(f"{label + ':':10} {', '.join(getattr(reply, label)) or '-'}")
        if reply.needs_restart:
            print(f"{', '.join(reply.needs_restart)} changed: restart the master (supctl shutdown, then start) to apply it fully")
    return OK


def cmd_shutdown(args: argparse.Namespace) -> int:
    with connect(args) as client:
        if not args.json:
            print(f"stopping every bot of master pid {client.welcome.master_pid} in reverse dependency order", file=sys.stderr)
        announce_waits(args, None)
        try:
            reply = client.call(Shutdown())
            client.wait_closed()
        except (ControlError, OSError) as e:
            raise CliError(f"shutdown did not complete: {e}") from None
        if isinstance(reply, Error):
            raise CliError(reply.message)
    assert isinstance(reply, ActionReply)
    if args.json:
        from ..control.views import action_view  # --json only: the views cost every other call ~1 ms

        print_json(action_view(reply))
        return OK
    print(f"master pid {client.welcome.master_pid} stopped")
    for name in reply.killed:
        print(f"{name}: did not stop within stop_timeout; SIGKILL was needed")
    return OK


def cmd_flush(args: argparse.Namespace) -> int:
    reply = ask(args, Flush(target=args.target))
    assert isinstance(reply, ActionReply)
    print_action(args, reply)
    return OK


def cmd_describe(args: argparse.Namespace) -> int:
    from ..control.render import describe_text

    reply = ask(args, DescribeRequest(target=args.target))
    assert isinstance(reply, DescribeReply)
    if args.json:
        print_json(reply.description)
    else:
        print(describe_text(reply.description, time.time()))
    return OK
