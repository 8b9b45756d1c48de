"""supctl: parse arguments, ask the right piece, print. Heavy modules load only in the verbs that need them."""

from __future__ import annotations

import argparse
import os
import sys
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

from .locate import OK, CliError  # noqa: E402


class _Version(argparse.Action):
    """`supctl -V`: the installed version, looked up only when asked (it scans sys.path)."""

    def __init__(self, option_strings: list[str], dest: str, **kw: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *a: object) -> None:
        from .. import __version__

        print(f"supctl {__version__}")
        parser.exit()


def _untranslated_argparse() -> None:
    """argparse runs every built-in string through gettext, which searches the disk for a catalogue each time
    (~60 lookups, 4 ms a call for our 20 verbs) and finds none: supctl speaks English, so skip the search."""
    argparse._ = str  # type: ignore[attr-defined]


def build_parser() -> argparse.ArgumentParser:
    from .locate import ask, print_json
    from .ls import cmd_ls
    from .start import cmd_systemd, cmd_validate, looks_like_procfile, start_master
    from .verbs import act, cmd_bus, cmd_fleet, cmd_health, cmd_logs, cmd_reload, cmd_run, cmd_shutdown, cmd_signal, cmd_status

    def cmd_start(args: argparse.Namespace) -> int:
        if not looks_like_procfile(args.target):
            return act(args, "start")
        args.procfile = args.target
        return start_master(args)

    _untranslated_argparse()
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-c", "--config", default=argparse.SUPPRESS, help="procfile (default: $SUPCTL_PROCFILE or ./procfile.toml)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
    p = argparse.ArgumentParser(prog="supctl", description="Process supervisor for long-running bots.")
    p.add_argument("-c", "--config", dest="global_config", help=argparse.SUPPRESS)
    p.add_argument("--json", dest="global_json", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("-V", "--version", action=_Version)
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name: str, func: Callable[[argparse.Namespace], int], help: str, target: str | None = None,  # noqa: A002
             aliases: tuple[str, ...] = ()) -> argparse.ArgumentParser:
        s = sub.add_parser(name, help=help, parents=[common], aliases=list(aliases))
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
    verb("ls", cmd_ls, "every running master of this user: procfile, pid, uptime, bots running, FATAL, unhealthy",
         aliases=("list",))
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
