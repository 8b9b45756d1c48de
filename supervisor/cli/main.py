"""supctl: parse arguments, ask the right piece, print. Heavy modules load only in the verbs that need them."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable


def _import_msgspec_lean() -> None:
    """msgspec imports typing_extensions (and with it inspect and ast) only for type-hint helpers that our
    Structs never need; hiding it while msgspec loads takes ~10 ms off every `supctl` call. Later imports of
    typing_extensions (by other libraries) work as usual."""
    if "msgspec" in sys.modules or "typing_extensions" in sys.modules:
        return
    sys.modules["typing_extensions"] = None  # type: ignore[assignment]
    try:
        import msgspec  # noqa: F401
    finally:
        del sys.modules["typing_extensions"]


_import_msgspec_lean()

import msgspec  # noqa: E402

from ..config import paths  # noqa: E402
from ..control.client import Client, NoMaster  # noqa: E402
from ..control.protocol import (  # noqa: E402
    Action,
    ActionReply,
    Error,
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
    TasksReply,
    TasksRequest,
    status_json,
)
from ..errors import ConfigError, ConfigErrors, ControlError  # noqa: E402

DEFAULT_PROCFILE = "procfile.toml"
OK, FAILED, USAGE = 0, 1, 2


class CliError(Exception):
    """A one-line message for the person and an exit status."""

    def __init__(self, message: str, code: int = FAILED) -> None:
        super().__init__(message)
        self.code = code


def procfile_path(args: argparse.Namespace) -> str:
    return getattr(args, "procfile", None) or args.config or os.environ.get("SUPCTL_PROCFILE") or DEFAULT_PROCFILE


def state_dir(args: argparse.Namespace) -> str:
    try:
        return paths.state_dir_of(procfile_path(args))
    except ConfigError as e:
        raise CliError(str(e)) from None


def connect(args: argparse.Namespace) -> Client:
    path = procfile_path(args)
    try:
        return Client(paths.control_socket(state_dir(args)))
    except NoMaster:
        raise CliError(f"no master is running for {path}; start one with: supctl start {path}") from None
    except ControlError as e:
        raise CliError(str(e)) from None


def ask(args: argparse.Namespace, request: msgspec.Struct) -> object:
    with connect(args) as client:
        try:
            reply = client.call(request)
        except ControlError as e:
            raise CliError(str(e)) from None
    if isinstance(reply, Error):
        raise CliError(reply.message)
    return reply


def print_json(obj: object) -> None:
    sys.stdout.write(msgspec.json.encode(obj).decode() + "\n")


def print_config_errors(path: str, e: ConfigErrors) -> None:
    for err in e.errors:
        print(err, file=sys.stderr)
    print(f"{path}: {len(e.errors)} error{'s' if len(e.errors) != 1 else ''}", file=sys.stderr)


def cmd_validate(args: argparse.Namespace) -> int:
    from ..health import setup as plugin_setup

    path = procfile_path(args)
    try:
        procfile, _ = plugin_setup.load(path)
    except ConfigErrors as e:
        print_config_errors(path, e)
        return FAILED
    n = sum(b.instances for b in procfile.bots.values())
    print(f"{path}: ok, {len(procfile.bots)} bots, {n} instances")
    return OK


def looks_like_procfile(arg: str | None) -> bool:
    return arg is None or arg.endswith(".toml") or os.path.isfile(arg)


def cmd_start(args: argparse.Namespace) -> int:
    if not looks_like_procfile(args.target):
        return act(args, "start")
    args.procfile = args.target
    return start_master(args)


def start_master(args: argparse.Namespace) -> int:
    from .. import daemon
    from ..health import setup as plugin_setup
    from ..master import run_daemon, run_foreground

    path = procfile_path(args)
    sdir = state_dir(args)
    try:
        with Client(paths.control_socket(sdir)) as client:
            print(f"a master is already running for {path} (pid {client.welcome.master_pid}); nothing changed")
            return OK
    except ControlError:
        pass
    live = daemon.live_master_pid(sdir)
    if live is not None:
        raise CliError(f"master pid {live} for {path} is alive but does not answer on {paths.control_socket(sdir)}; stop it with: kill {live}")
    try:
        procfile, plugins = plugin_setup.load(path)
    except ConfigErrors as e:
        print_config_errors(path, e)
        return FAILED
    removed = daemon.clean_stale(sdir) if os.path.isdir(sdir) else []
    if removed:
        print(f"removed stale {', '.join(removed)} left by a master that is gone", file=sys.stderr)
    if args.foreground:
        return run_foreground(procfile, plugins)
    from ..master import make_state_dir

    make_state_dir(procfile.state_dir)
    if daemon.daemonize(lambda ready: run_daemon(procfile, plugins, ready), paths.master_log(sdir)) != OK:
        from ..output.rotating import tail_lines

        print(f"the master for {path} did not start; the end of {paths.master_log(sdir)}:", file=sys.stderr)
        print("\n".join(tail_lines(paths.master_log(sdir), 20)), file=sys.stderr)
        return FAILED
    with Client(paths.control_socket(sdir)) as client:
        n = sum(b.instances for b in procfile.bots.values())
        print(f"started master pid {client.welcome.master_pid} for {path}: {len(procfile.bots)} bots, {n} instances")
    return OK


def act(args: argparse.Namespace, verb: str) -> int:
    reply = ask(args, Action(verb=verb, target=args.target))  # type: ignore[arg-type]
    assert isinstance(reply, ActionReply)
    print_json(reply) if args.json else print(reply.message)
    return OK if reply.ok else FAILED


def cmd_status(args: argparse.Namespace) -> int:
    from ..control.render import bridge_line, status_table, tasks_table

    if args.tasks:
        tasks = ask(args, TasksRequest())
        assert isinstance(tasks, TasksReply)
        print_json(tasks.tasks) if args.json else print(tasks_table(tasks.tasks))
        return OK
    reply = ask(args, StatusRequest(target=args.target))
    assert isinstance(reply, StatusReply)
    if args.json:
        print_json(status_json(reply))
        return OK
    if reply.kill_switch is not None and reply.kill_switch.active:
        from .kill_switch import kill_switch_line

        print(kill_switch_line(reply.kill_switch))
    print(status_table(reply.instances))
    if reply.bridge is not None:
        print(bridge_line(reply.bridge, time.time()))
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


def cmd_systemd(args: argparse.Namespace) -> int:
    from ..config import procfile as config
    from ..systemd import unit as systemd
    from ..systemd.options import unit_options

    path = procfile_path(args)
    try:
        procfile = config.load(path)
    except ConfigErrors as e:
        print_config_errors(path, e)
        return FAILED
    opts, warning = unit_options(procfile, args.name, args.user)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    text = systemd.render_unit(opts)
    if not args.install:
        sys.stdout.write(text)
        return OK
    target = systemd.unit_install_path(opts.name, opts.user_mode)
    todo = systemd.install_unit(text, target, opts.user_mode)
    print(f"wrote {target}")
    if todo:
        print("now run:\n" + "\n".join(f"  {c}" for c in todo))
    return OK


def cmd_health(args: argparse.Namespace) -> int:
    from ..control.render import health_report

    reply = ask(args, HealthRequest(target=args.target))
    assert isinstance(reply, HealthReply)
    print_json(reply.instances) if args.json else print(health_report(reply.instances))
    return OK


def cmd_fleet(args: argparse.Namespace) -> int:
    from . import fleet as fleet_cli

    try:
        return fleet_cli.run(args, procfile_path(args))
    except ConfigErrors as e:
        print_config_errors(procfile_path(args), e)
        return FAILED
    except (LookupError, ValueError, TimeoutError, OSError) as e:
        raise CliError(str(e)) from None


def cmd_bus(args: argparse.Namespace) -> int:
    from ..errors import BusError
    from . import bus as bus_cli

    try:
        return bus_cli.run(args, state_dir(args))
    except BusError as e:
        raise CliError(str(e)) from None
    except KeyboardInterrupt:
        return OK


def cmd_signal(args: argparse.Namespace) -> int:
    reply = ask(args, SignalRequest(signal=args.signal, target=args.target))
    assert isinstance(reply, ActionReply)
    print(reply.message)
    return OK if reply.ok else FAILED


def cmd_reload(args: argparse.Namespace) -> int:
    reply = ask(args, Reload())
    assert isinstance(reply, ReloadReply)
    if args.json:
        print_json(reply)
    else:
        for label in ("added", "removed", "restarted", "kept"):
            print(f"{label + ':':10} {', '.join(getattr(reply, label)) or '-'}")
        if reply.needs_restart:
            print(f"{', '.join(reply.needs_restart)} changed: restart the master (supctl shutdown, then start) to apply it fully")
    return OK


def cmd_shutdown(args: argparse.Namespace) -> int:
    with connect(args) as client:
        try:
            reply = client.call(Shutdown())
            client.wait_closed()
        except (ControlError, OSError) as e:
            raise CliError(f"shutdown did not complete: {e}") from None
        if isinstance(reply, Error):
            raise CliError(reply.message)
    print(f"master pid {client.welcome.master_pid} stopped")
    return OK


def cmd_logs(args: argparse.Namespace) -> int:
    from ..output.tail import follow, last_lines, log_files

    logs = paths.logs_dir(state_dir(args))
    files = log_files(logs, args.target)
    if not files:
        raise CliError(f"no log files for {args.target or 'any bot'} in {logs}")
    colour = sys.stdout.isatty()
    for line in last_lines(files, args.lines, colour):
        print(line)
    sys.stdout.flush()
    if args.follow:
        try:
            follow(logs, args.target, colour)
        except KeyboardInterrupt:
            pass
    return OK


def _untranslated_argparse() -> None:
    """argparse runs every built-in string through gettext, which searches the disk for a catalogue each time
    (~60 lookups, 4 ms a call for our 20 verbs) and finds none: supctl speaks English, so skip the search."""
    argparse._ = str  # type: ignore[attr-defined]


def build_parser() -> argparse.ArgumentParser:
    _untranslated_argparse()
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-c", "--config", default=argparse.SUPPRESS, help="procfile (default: $SUPCTL_PROCFILE or ./procfile.toml)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
    p = argparse.ArgumentParser(prog="supctl", description="Process supervisor for long-running bots.")
    p.add_argument("-c", "--config", dest="global_config", help=argparse.SUPPRESS)
    p.add_argument("--json", dest="global_json", action="store_true", help=argparse.SUPPRESS)
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name: str, func: Callable[[argparse.Namespace], int], help: str, target: str | None = None) -> argparse.ArgumentParser:  # noqa: A002
        s = sub.add_parser(name, help=help, parents=[common])
        if target:
            s.add_argument("target", nargs="?" if target.startswith("[") else None, metavar=target)
        s.set_defaults(func=func)
        return s

    verb("validate", cmd_validate, "check a procfile and print every error").add_argument("procfile", nargs="?")
    verb("start", cmd_start, "start the master for PROCFILE (background; -f to stay attached), or start a bot", "[PROCFILE|NAME]") \
        .add_argument("-f", "--foreground", action="store_true", help="run the master attached (systemd, containers)")
    verb("stop", lambda a: act(a, "stop"), "stop a bot, NAME:k or all", "NAME")
    verb("restart", lambda a: act(a, "restart"), "restart a bot, NAME:k or all", "NAME")
    verb("status", cmd_status, "table of every instance", "[NAME]").add_argument(
        "--tasks", action="store_true", help="scheduled tasks: schedule, next run, last runs")
    verb("health", cmd_health, "last health-check results and recoveries of a bot, with times", "NAME")
    verb("run", cmd_run, "run a scheduled task now and wait for it").add_argument("task", metavar="TASK")
    sd = verb("systemd", cmd_systemd, "print (or --install) a systemd unit that runs this procfile at boot")
    sd.add_argument("--user", action="store_true", help="a per-user unit (systemctl --user) instead of a system one")
    sd.add_argument("--name", default="supctl", help="unit name (default: supctl)")
    sd.add_argument("--install", action="store_true", help="write the unit, daemon-reload and enable it")
    s = verb("signal", cmd_signal, "send a signal to a bot's process groups")
    s.add_argument("signal", metavar="SIG")
    s.add_argument("target", metavar="NAME")
    logs = verb("logs", cmd_logs, "show (and follow) bot logs", "[NAME[:k]]")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.add_argument("-n", "--lines", type=int, default=20)
    from .bus import add_parser as add_bus_parser

    add_bus_parser(sub, [common]).set_defaults(func=cmd_bus)
    from . import kill_switch
    from .kill_switch import add_parser as add_kill_switch_parser

    add_kill_switch_parser(verb, lambda a: kill_switch.run(a, ask, print_json))

    from .fleet import add_parser as add_fleet_parser

    add_fleet_parser(sub, [common]).set_defaults(func=cmd_fleet)
    verb("reload", cmd_reload, "re-read the procfile; touch only bots whose config changed")
    verb("shutdown", cmd_shutdown, "stop every bot, then the master")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.config = getattr(args, "config", None) or args.global_config
    args.json = getattr(args, "json", False) or args.global_json
    try:
        return args.func(args)
    except CliError as e:
        print(f"supctl: {e}", file=sys.stderr)
        return e.code
    except BrokenPipeError:  # `supctl bus sub ... | head`: the reader left, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return OK


if __name__ == "__main__":
    sys.exit(main())
