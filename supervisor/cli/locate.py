"""Which procfile a verb means and which master runs it: the registry first, the procfile's state_dir second.

On the path of every `supctl status`, so nothing here parses the procfile unless the registry has no entry.
"""

from __future__ import annotations

import argparse
import os
import sys

import msgspec

from ..config import paths, registry
from ..control.client import Client, NoMaster
from ..control.protocol import Error
from ..core.errors import ConfigError, ControlError

DEFAULT_PROCFILE = "procfile.toml"
OK, FAILED, USAGE = 0, 1, 2


class CliError(Exception):
    """A one-line message for the person and an exit status."""

    def __init__(self, message: str, code: int = FAILED) -> None:
        super().__init__(message)
        self.code = code


def find_upwards(start: str, name: str = DEFAULT_PROCFILE) -> str | None:
    """The nearest `name` in `start` or a parent directory, as git finds .git."""
    here = os.path.abspath(start)
    while True:
        candidate = os.path.join(here, name)
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def procfile_path(args: argparse.Namespace) -> str:
    """A positional PROCFILE, then -c, then $SUPCTL_PROCFILE, then the nearest procfile.toml upwards."""
    given = getattr(args, "procfile", None) or args.config or os.environ.get("SUPCTL_PROCFILE")
    if given:
        return given
    found = find_upwards(os.getcwd())
    if found is None:
        raise CliError(f"no {DEFAULT_PROCFILE} in {os.getcwd()} or any parent directory; name one with -c PATH or "
                       f"SUPCTL_PROCFILE, or list the running masters with: supctl ls")
    return os.path.relpath(found) if found.startswith(os.getcwd() + os.sep) else found


def state_dir(args: argparse.Namespace) -> str:
    """The registered master's state_dir, else the one the procfile names."""
    path = procfile_path(args)
    entry = registry.read(path)
    if entry is not None:
        return entry.state_dir
    try:
        return paths.state_dir_of(path)
    except ConfigError as e:
        raise CliError(str(e)) from None


def _dial(sock: str, procfile: str) -> Client | None:
    """A connection to `sock` if the master there runs this procfile."""
    try:
        client = Client(sock)
    except NoMaster:
        return None
    if client.welcome.procfile != procfile:
        client.close()
        return None
    return client


def connect(args: argparse.Namespace) -> Client:
    path = procfile_path(args)
    real = os.path.realpath(path)
    try:
        entry = registry.read(path)
        client = _dial(entry.control_socket, real) if entry else None
        if client is None:
            try:
                sdir = paths.state_dir_of(path)
            except ConfigError as e:
                raise CliError(f"no master is running for {path}, and {e}") from None
            client = _dial(paths.control_socket(sdir), real)
    except ControlError as e:
        raise CliError(str(e)) from None
    if client is None:
        raise CliError(f"{no_master(sdir, path)}; start one with: supctl start {path}")
    return client


def no_master(sdir: str, path: str) -> str:
    """Why nothing answers: status.json, trusted only once its pid was checked (daemon.read_status)."""
    import time

    from ..master.daemon import read_status

    status = read_status(sdir)
    if status is None or status.state != "died":
        return f"no master is running for {path}"
    when = f" at {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(status.died_at))}" if status.died_at else ""
    return f"the master for {path} (pid {status.pid}) died{when}: {status.last_error}"


def ask(args: argparse.Namespace, request: msgspec.Struct) -> object:
    with connect(args) as client:
        try:
            reply = client.call(request)
        except ControlError as e:
            raise CliError(str(e)) from None
    if isinstance(reply, Error):
        raise CliError(reply.message)
    return reply


_json_encoder = msgspec.json.Encoder()


def print_json(obj: object) -> None:
    sys.stdout.write(_json_encoder.encode(obj).decode() + "\n")


def print_json_error(message: str, code: int) -> None:
    from ..control.views import ErrorView

    sys.stderr.write(_json_encoder.encode(ErrorView(error=message, exit_code=code)).decode() + "\n")
