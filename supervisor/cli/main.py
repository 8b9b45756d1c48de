"""supctl: parse arguments, ask the right piece, print. Heavy modules load only in the verbs that need them."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import NoReturn


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


EXAMPLES: dict[str, tuple[str, ...]] = {
    "validate": ("supctl validate", "supctl validate deploy/procfile.toml --json"),
    "start": ("supctl start                      # the master for ./procfile.toml, in the background",
              "supctl start -f                   # attached, every bot's output on stdout (containers)",
              "supctl start worker:1             # start one instance of a running master"),
    "stop": ("supctl stop worker", "supctl stop worker:1", "supctl stop all"),
    "restart": ("supctl restart worker", "supctl restart all --json"),
    "status": ("supctl status", "supctl status worker --json", "supctl status --tasks"),
    "describe": ("supctl describe worker", "supctl describe worker --json"),
    "health": ("supctl health api", "supctl health api:0 --json"),
    "run": ("supctl run backup",),
    "systemd": ("supctl systemd -c $PWD/procfile.toml", "sudo supctl systemd -c $PWD/procfile.toml --run-as bots --install",
                "supctl systemd --user --install"),
    "signal": ("supctl signal HUP worker", "supctl signal USR1 worker:0"),
    "logs": ("supctl logs worker -n 50", "supctl logs worker:1 -f --err", "supctl logs supervisor -f",
             "supctl logs --json | jq .line"),
    "flush": ("supctl flush", "supctl flush worker"),
    "bus": ("supctl bus sub 'prices.>'", "supctl bus pub risk.halt '{\"why\": \"manual\"}' --retain",
            "supctl bus peers"),
    "kill-switch": ("supctl kill-switch on --reason 'exchange outage'", "supctl kill-switch off"),
    "fleet": ("supctl fleet status", "supctl fleet restart host2:worker"),
    "ls": ("supctl ls", "supctl ls --json"),
    "reload": ("supctl reload", "kill -HUP $(jq .pid .supctl/status.json)"),
    "shutdown": ("supctl shutdown", "supctl -c other/procfile.toml shutdown"),
    "completion": ("supctl completion bash > ~/.local/share/bash-completion/completions/supctl",
                   "supctl completion zsh > ~/.zfunc/_supctl", "supctl completion fish > ~/.config/fish/completions/supctl.fish"),
}
"""Two or three examples end each verb's --help."""


def _columns() -> int:
    """shutil.get_terminal_size without shutil, whose import loads zlib, bz2 and lzma (~3 ms of every call)."""
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return 80


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """argparse builds a formatter for every add_argument; this one is sized without importing shutil."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24, width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position, width if width is not None else _columns() - 2)


class _Unbuilt:
    """What `verb` gives for a verb this call does not run: every argparse call on it does nothing."""

    def __getattr__(self, name: str) -> Callable[..., _Unbuilt]:
        return lambda *a, **k: self


def verb_of(argv: list[str]) -> str | None:
    """The verb this command line runs, when the parser for it alone is enough (not for `supctl -h`, not for a typo,
    whose error lists every verb)."""
    args = iter(argv)
    for arg in args:
        if arg in ("-h", "--help"):
            return None
        if arg in ("-c", "--config"):
            next(args, None)
        elif not arg.startswith("-"):
            return arg if arg in EXAMPLES or arg == "list" else None
    return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Every verb, or with `only` that verb alone: its parser is the same, and the other 20 cost `supctl status`
    ~10 ms of argparse construction."""
    from .locate import ask, print_json
    import importlib

    def lazy(module: str, name: str) -> Callable[[argparse.Namespace], int]:
        """A verb whose module loads only when it runs: `supctl status` never imports logs, ls or start."""
        return lambda args: getattr(importlib.import_module(f"supervisor.cli.{module}"), name)(args)

    cmd_logs, cmd_ls, cmd_systemd, cmd_validate = (lazy("logs", "cmd_logs"), lazy("ls", "cmd_ls"),
                                                   lazy("start", "cmd_systemd"), lazy("start", "cmd_validate"))
    from .verbs import (
        act,
        cmd_bus,
        cmd_describe,
        cmd_fleet,
        cmd_flush,
        cmd_health,
        cmd_reload,
        cmd_run,
        cmd_shutdown,
        cmd_signal,
        cmd_status,
    )

    def cmd_start(args: argparse.Namespace) -> int:
        from .start import looks_like_procfile, start_master

        if not looks_like_procfile(args.target):
            return act(args, "start")
        args.procfile = args.target
        return start_master(args)

    def cmd_completion(args: argparse.Namespace) -> int:
        from .completion import script

        sys.stdout.write(script(args.shell, p if only is None else build_parser()))  # every verb, not this one alone
        return OK

    _untranslated_argparse()
    raw = _Formatter
    common = argparse.ArgumentParser(add_help=False, formatter_class=_Formatter)
    common.add_argument("-c", "--config", default=argparse.SUPPRESS, metavar="PROCFILE",
                        help="the procfile (default: $SUPCTL_PROCFILE, else the nearest procfile.toml upwards)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="machine-readable output (errors as JSON on stderr); schemas in docs/json.md")
    p = argparse.ArgumentParser(prog="supctl", description="Process supervisor for long-running bots.", formatter_class=raw,
                                epilog="the procfile: -c PROCFILE, else $SUPCTL_PROCFILE, else the nearest procfile.toml "
                                       "upwards\nexit status: 0 ok, 1 failed, 2 usage error\n`supctl VERB --help` for each verb")
    p.add_argument("-c", "--config", dest="global_config", metavar="PROCFILE",
                   help="the procfile (default: $SUPCTL_PROCFILE, else the nearest procfile.toml upwards)")
    p.add_argument("--json", dest="global_json", action="store_true", help="machine-readable output for every verb")
    p.add_argument("-V", "--version", action=_Version)
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name: str, func: Callable[[argparse.Namespace], int], help: str, target: str | None = None,  # noqa: A002
             aliases: tuple[str, ...] = (), target_help: str = "a bot, NAME:k for one instance, or all") -> argparse.ArgumentParser:
        if only is not None and only != name and only not in aliases:
            return _Unbuilt()  # type: ignore[return-value]
        s = sub.add_parser(name, help=help, description=help, parents=[common], aliases=list(aliases), formatter_class=raw)
        if target:
            s.add_argument("target", nargs="?" if target.startswith("[") else None, metavar=target, help=target_help)
        s.set_defaults(func=func)
        return s

    verb("validate", cmd_validate, "check a procfile and print every error at once").add_argument(
        "procfile", nargs="?", help="the procfile to check (default: as for every verb)")
    st = verb("start", cmd_start, "start the master for PROCFILE (background; -f to stay attached), or start a bot",
              "[PROCFILE|NAME]", target_help="a procfile (*.toml) to start its master, or a bot, NAME:k or all")
    st.add_argument("-f", "--foreground", "--nodaemonize", action="store_true",
                    help="run the master attached (systemd, containers); every bot line on stdout as 'name-k | line'")
    st.add_argument("-q", "--quiet", action="store_true", help="with -f: do not copy bot output to stdout")
    verb("stop", lambda a: act(a, "stop"), "stop a bot, NAME:k or all (stop_signal, then SIGKILL after stop_timeout)", "NAME")
    verb("restart", lambda a: act(a, "restart"), "restart a bot, NAME:k or all", "NAME")
    verb("status", cmd_status, "table of every instance (the version and master too with --json)", "[NAME]").add_argument(
        "--tasks", action="store_true", help="scheduled tasks: schedule, next run, last runs")
    verb("describe", cmd_describe, "a bot's resolved configuration, command, environment, logs, restart budget, health",
         "NAME", target_help="a bot")
    verb("health", cmd_health, "last health-check results and recoveries of a bot, with times", "NAME")
    verb("run", cmd_run, "run a scheduled task now and wait for it").add_argument("task", metavar="TASK", help="a [tasks.NAME]")
    sd = verb("systemd", cmd_systemd, "print (or --install) a systemd unit that runs this procfile at boot")
    sd.add_argument("--user", action="store_true", help="a per-user unit (systemctl --user) instead of a system one")
    sd.add_argument("--name", default="supctl", help="unit name (default: supctl)")
    sd.add_argument("--run-as", metavar="USER[:GROUP]", help="the account of a system unit (User=, Group=; default: "
                    "whoever ran sudo, else the procfile's owner)")
    sd.add_argument("--install", action="store_true", help="write the unit, daemon-reload and enable it")
    s = verb("signal", cmd_signal, "send a signal to a bot's process groups")
    s.add_argument("signal", metavar="SIG", help="a signal name or number: HUP, USR1, SIGTERM, 15")
    s.add_argument("target", metavar="NAME", help="a bot, NAME:k for one instance, or all")
    logs = verb("logs", cmd_logs, "show (and follow) bot logs, or the master's own (supctl logs supervisor)", "[NAME[:k]]",
                target_help="a bot, NAME:k, a task, or supervisor (default: every bot)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines, across rotation")
    logs.add_argument("-n", "--lines", type=int, default=20, help="how many of the last lines to print (default 20)")
    logs.add_argument("--err", action="store_true", help="stderr lines only")
    verb("flush", cmd_flush, "empty the logs of a bot (default: every bot) and drop their rotated files", "[NAME]",
         target_help="a bot, NAME:k, or all (default)")
    if only in (None, "bus"):
        from .bus import add_parser as add_bus_parser

        add_bus_parser(sub, [common]).set_defaults(func=cmd_bus)
    if only in (None, "kill-switch"):
        from . import kill_switch

        kill_switch.add_parser(verb, lambda a: kill_switch.run(a, ask, print_json))
    if only in (None, "fleet"):
        from .fleet import add_parser as add_fleet_parser

        add_fleet_parser(sub, [common]).set_defaults(func=cmd_fleet)
    verb("ls", cmd_ls, "every running master of this user: procfile, pid, uptime, bots running, FATAL, unhealthy",
         aliases=("list",))
    verb("reload", cmd_reload, "re-read the procfile; touch only bots whose config changed")
    verb("shutdown", cmd_shutdown, "stop every bot in reverse dependency order, then the master")
    verb("completion", cmd_completion, "print a shell completion script").add_argument(
        "shell", choices=("bash", "zsh", "fish"), help="the shell to complete in")
    for name, lines in EXAMPLES.items():
        if name not in sub.choices:
            continue
        parser = sub.choices[name]
        parser.formatter_class = raw
        parser.epilog = "examples:\n" + "\n".join(f"  {line}" for line in lines)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(verb_of(argv)).parse_args(argv)
    args.config = getattr(args, "config", None) or args.global_config
    args.json = getattr(args, "json", False) or args.global_json
    try:
        return args.func(args)
    except CliError as e:
        if args.json:
            from .locate import print_json_error

            print_json_error(str(e), e.code)
        else:
            print(f"supctl: {e}", file=sys.stderr)
        return e.code
    except BrokenPipeError:  # `supctl bus sub ... | head`: the reader left, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return OK


QUICK = frozenset({"status", "describe", "health", "stop", "restart", "signal", "flush", "reload", "run", "shutdown", "ls", "list",
                   "kill-switch"})
"""Verbs that only ask a master (or read the registry) and print: nothing of theirs needs the interpreter's teardown."""


def run() -> NoReturn:
    """The `supctl` command. A quick verb leaves with os._exit once its output is flushed: tearing down the modules
    it loaded (msgspec, typing, argparse) costs ~15 ms here, a sixth of a `supctl status`; no exit handler or
    thread exists on that path to miss it. Every other verb exits as usual (a master, plugins, asyncio may have
    handlers)."""
    code = main()
    if verb_of(sys.argv[1:]) in QUICK:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except OSError:  # the usual exit reports it as Python always does
            sys.exit(code)
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
