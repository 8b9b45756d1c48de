"""`supctl validate`, `supctl start` (the master: locks first, then the procfile) and `supctl systemd`."""

from __future__ import annotations

import argparse
import os
import stat
import sys

from ..config import paths, registry
from ..core import fds
from ..core.errors import ConfigError, ConfigErrors
from .locate import FAILED, OK, CliError, print_json, procfile_path


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
        if args.json:
            from ..control.views import ConfigProblem, ValidateView

            problems = [ConfigProblem(file=x.file, key=x.key, message=x.message, line=x.line, col=x.col) for x in e.errors]
            print_json(ValidateView(ok=False, file=path, errors=problems))
        else:
            print_config_errors(path, e)
        return FAILED
    n = sum(b.instances for b in procfile.bots.values())
    if args.json:
        from ..control.views import ValidateView

        print_json(ValidateView(ok=True, file=path, errors=[], bots=len(procfile.bots), instances=n))
    else:
        print(f"{path}: ok, {len(procfile.bots)} bots, {n} instances")
    limit = fds.report(n)
    if limit.short:
        print(f"warning: {limit.describe()}", file=sys.stderr)
    return OK


def already_running(path: str, taken: registry.Taken) -> int:
    """A second `start`: nothing changes; refused outright when the procfile now names another state_dir."""
    holder = taken.holder
    if holder is None:
        print(f"a master for {path} is starting right now; nothing changed")
        return OK
    try:
        wanted = paths.state_dir_of(path)
    except ConfigError:
        wanted = holder.state_dir
    if wanted != holder.state_dir:
        raise CliError(f"master pid {holder.pid} already runs {holder.procfile} with state_dir {holder.state_dir}, "
                       f"and the procfile now names {wanted}: refusing a second master; to move it, run "
                       f"supctl shutdown, then supctl start")
    print(f"a master is already running for {path} (pid {holder.pid}); nothing changed")
    return OK


def start_master(args: argparse.Namespace) -> int:
    from ..health import setup as plugin_setup
    from ..master import daemon
    from ..master.root import run_master

    path = procfile_path(args)
    try:
        claim = registry.Claim(path)
    except registry.Taken as e:
        return already_running(path, e)
    except (ConfigError, OSError) as e:
        raise CliError(f"cannot use the supctl runtime directory {registry.runtime_dir()}: {e}") from None
    try:
        procfile, plugins = plugin_setup.load(path)
    except ConfigErrors as e:
        print_config_errors(path, e)
        return FAILED
    sdir = str(procfile.state_dir)
    try:
        daemon.make_state_dir(procfile.state_dir, procfile.file)  # before anything in it is opened or removed
    except ConfigErrors as e:
        print_config_errors(path, e)
        return FAILED
    try:
        claim.lock_state_dir(sdir)
    except registry.Taken as e:
        raise CliError(str(e)) from None
    removed = daemon.clean_stale(sdir)
    if removed:
        print(f"removed stale {', '.join(removed)} left by a master that is gone", file=sys.stderr)
    if args.foreground:
        from ..output.echo import Echo

        echo = None if args.quiet or _stdout_is_devnull() else Echo(colour=sys.stdout.isatty() and not os.environ.get("NO_COLOR"))
        return run_master(procfile, plugins, claim, echo=echo)
    outcome = daemon.daemonize(lambda ready: run_master(procfile, plugins, claim, ready), paths.master_log(sdir))
    if outcome != "ready":
        from ..output.rotating import tail_lines

        print(f"the master for {path} did not start: {outcome}; the end of {paths.master_log(sdir)}:", file=sys.stderr)
        print("\n".join(tail_lines(paths.master_log(sdir), 20)), file=sys.stderr)
        return FAILED
    claim.release()  # the daemon holds the same locks through the descriptors it inherited
    from ..control.client import Client

    with Client(paths.control_socket(sdir)) as client:
        n = sum(b.instances for b in procfile.bots.values())
        print(f"started master pid {client.welcome.master_pid} for {path}: {len(procfile.bots)} bots, {n} instances")
    return OK


def looks_like_procfile(arg: str | None) -> bool:
    return arg is None or arg.endswith(".toml") or os.path.isfile(arg)


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
    try:
        opts, warning = unit_options(procfile, args.name, args.user, args.run_as)
    except ValueError as e:
        raise CliError(str(e)) from None
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


def _stdout_is_devnull() -> bool:
    """`start -f > /dev/null` (a service manager that drops stdout, a benchmark): nobody can read the copy of every bot
    line, and making it cost a 200 MiB flood a third of its throughput. The log files have every line either way."""
    try:
        out, null = os.fstat(sys.stdout.fileno()), os.stat(os.devnull)
    except (OSError, ValueError, AttributeError):
        return False
    return stat.S_ISCHR(out.st_mode) and out.st_rdev == null.st_rdev
