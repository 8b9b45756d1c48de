"""Run a master under systemd: the unit that starts it at boot, and the sd_notify side.

The unit runs ``supctl start -f -c PROCFILE`` in the foreground, so systemd is the
master's supervisor the way the master is the bots'. Choices in the unit, and why:

- ``Type=notify`` + ``NotifyAccess=main``: the unit is "started" only once the master
  says ``READY=1``, and only the master (never a bot) may speak for it.
- ``WatchdogSec=``: the master pings from its event loop (:func:`watchdog_loop`), so a
  wedged loop gets the master killed and restarted instead of silently supervising nothing.
- ``Restart=always`` + ``RestartSec=``: a crashed master comes back after a pause.
- ``KillMode=mixed``: on stop, SIGTERM goes to the master alone, so it can stop the bots
  in reverse dependency order; whatever is left when ``TimeoutStopSec=`` runs out gets
  SIGKILL across the whole cgroup, so no bot outlives its master.
- ``Delegate=yes`` (unless the procfile says ``containment = "subreaper"``): the unit's
  cgroup subtree is the master's, so it gives each instance its own cgroup and no
  descendant escapes an instance's stop (docs/lifecycle.md).
- ``TimeoutStopSec=``: the longest bot stop_timeout plus a margin for the master to
  SIGKILL, reap and exit.
- ``NoNewPrivileges=yes``: bots cannot gain privileges through setuid binaries
  (``sudo``, ``su``); a bot that needs them is mis-designed for a service account anyway.
- ``PrivateTmp=yes`` (system units only): bots get their own ``/tmp``, so a bot cannot
  read or plant files in another service's temp files. Costs: sockets in ``/tmp`` shared
  with programs outside the unit are not visible. A user manager cannot set up the mount
  namespace without ``PrivateUsers=``, so user units leave it out.
- ``User=``/``Group=`` (system units): the bots run as a service account, not root: the one named by
  ``--run-as``, else whoever ran ``sudo``, else the procfile's owner.

Nothing stricter (``ProtectSystem=strict``, ``ProtectHome=``) is set: bots write where
their procfile says, and guessing those paths would break them.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shlex
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

import msgspec

from supervisor.core.errors import SupctlError

STOP_MARGIN = 15.0  # seconds past the longest stop_timeout: SIGKILL, reap, exit
_UNIT_NAME = re.compile(r"^[A-Za-z0-9:_.\\-]+$")
_ACCOUNT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_SYSTEMD_BOOTED = Path("/run/systemd/system")


class UnitOptions(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a unit depends on; paths must be absolute because systemd has no cwd."""

    executable: str  # absolute path of the supctl script
    procfile: str  # absolute path of procfile.toml
    working_directory: str
    name: str = "supctl"
    user_mode: bool = False
    user: str | None = None  # system units only
    group: str | None = None  # system units only
    stop_timeout: float = 10.0  # the longest stop_timeout across bots, seconds
    watchdog: float = 30.0  # WatchdogSec; 0 turns the watchdog off
    restart_sec: float = 5.0
    delegate: bool = True  # Delegate=yes, so the master can give each instance its own cgroup

    def __post_init__(self) -> None:
        for key in ("executable", "procfile", "working_directory"):
            value = getattr(self, key)
            if not value.startswith("/"):
                raise ValueError(f"{key} must be an absolute path, found {value!r}")
            _check_printable(key, value)
            if value != value.rstrip():
                raise ValueError(f"{key} must not end in whitespace (systemd strips it), found {value!r}")
        if any(c in self.executable for c in "\"'\\"):
            raise ValueError(f"systemd refuses quotes and backslashes in an executable path, found {self.executable!r}")
        if not _UNIT_NAME.match(self.name):
            raise ValueError(f"name must be a unit name (letters, digits, ':_.-\\'), found {self.name!r}")
        if self.user_mode and (self.user or self.group):
            raise ValueError("user and group apply to system units only; a user unit runs as its owner")
        for key in ("user", "group"):
            value = getattr(self, key)
            if value is not None and not _ACCOUNT.match(value):
                raise ValueError(f"{key} must be an account name, found {value!r}")
        for key in ("stop_timeout", "watchdog", "restart_sec"):
            if getattr(self, key) < 0:
                raise ValueError(f"{key} must not be negative, found {getattr(self, key)!r}")


def _check_printable(key: str, value: str) -> None:
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"{key} must not contain control characters or newlines, found {value!r}")


def _specifiers(value: str) -> str:
    """Escape systemd's %-specifiers, which are expanded in almost every setting."""
    return value.replace("%", "%%")


def _exec_arg(arg: str) -> str:
    """One ExecStart= argument: double-quoted, C-escaped, with % and $ expansion disabled."""
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + _specifiers(escaped).replace("$", "$$") + '"'


def _exec_path(path: str) -> str:
    """ExecStart='s executable: systemd expands no $ in it and refuses quotes and backslashes."""
    return '"' + _specifiers(path) + '"'


def _timespan(seconds: float) -> str:
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{round(seconds * 1000)}ms"


def render_unit(opts: UnitOptions) -> str:
    """The text of NAME.service; pure so `supctl systemd > x.service` and tests see the same."""
    args = ["start", "-f", "-c", opts.procfile]
    unit = [
        "[Unit]",
        f"Description=supctl master for {_specifiers(opts.procfile)}",
    ]
    if not opts.user_mode:
        unit += ["Wants=network-online.target", "After=network-online.target"]
    service = [
        "[Service]",
        "Type=notify",
        "NotifyAccess=main",
        "ExecStart=" + " ".join([_exec_path(opts.executable)] + [_exec_arg(a) for a in args]),
        f"WorkingDirectory={_specifiers(opts.working_directory)}",
        "Restart=always",
        f"RestartSec={_timespan(opts.restart_sec)}",
        f"WatchdogSec={_timespan(opts.watchdog)}",
        "KillMode=mixed",
        *(["Delegate=yes"] if opts.delegate else []),
        f"TimeoutStopSec={_timespan(opts.stop_timeout + STOP_MARGIN)}",
        "NoNewPrivileges=yes",
    ]
    if not opts.user_mode:
        service.append("PrivateTmp=yes")
        if opts.user:
            service.append(f"User={opts.user}")
        if opts.group:
            service.append(f"Group={opts.group}")
    install = ["[Install]", f"WantedBy={'default.target' if opts.user_mode else 'multi-user.target'}"]
    return "\n".join(unit + [""] + service + [""] + install) + "\n"


def default_unit_user(procfile: Path, environ: Mapping[str, str] = os.environ) -> tuple[str, str, str | None]:
    """The account a system unit should run as: whoever ran `sudo supctl systemd`, else the procfile's owner.

    Returns (user, group, warning); the warning is set when that account is root.
    """
    uid: int | None = None
    sudo_user = environ.get("SUDO_USER")
    if sudo_user:
        try:
            uid = pwd.getpwnam(sudo_user).pw_uid
        except KeyError:
            uid = None
    if uid is None:
        uid = procfile.stat().st_uid
    try:
        entry = pwd.getpwuid(uid)
        user, gid = entry.pw_name, entry.pw_gid
    except KeyError:
        user, gid = str(uid), procfile.stat().st_gid
    try:
        group = grp.getgrgid(gid).gr_name
    except KeyError:
        group = str(gid)
    warning = None
    if uid == 0:
        warning = (
            f"the unit would run every bot as root (owner of {procfile}). Create a service "
            "account, e.g. `useradd --system --create-home supctl`, give it the procfile's "
            "directory and name it as the unit's user; or install a per-user unit with --user."
        )
    return user, group, warning


def named_unit_user(spec: str) -> tuple[str, str]:
    """`--run-as USER[:GROUP]`: an account that exists here (systemd refuses to start a unit whose User= does not),
    with its primary group unless one is named."""
    user, _, group = spec.partition(":")
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise ValueError(f"--run-as: no account named {user!r} on this machine; create it first, e.g. "
                         f"`sudo useradd --system --create-home {user}`") from None
    if group:
        try:
            grp.getgrnam(group)
        except KeyError:
            raise ValueError(f"--run-as: no group named {group!r} on this machine") from None
        return user, group
    try:
        return user, grp.getgrgid(entry.pw_gid).gr_name
    except KeyError:
        return user, str(entry.pw_gid)


def unit_install_path(name: str, user_mode: bool, environ: Mapping[str, str] = os.environ) -> Path:
    """Where systemd looks for NAME.service (honouring XDG_CONFIG_HOME for user units, as systemd does)."""
    if not user_mode:
        return Path("/etc/systemd/system") / f"{name}.service"
    config = environ.get("XDG_CONFIG_HOME") or str(Path(environ.get("HOME") or Path.home()) / ".config")
    return Path(config) / "systemd" / "user" / f"{name}.service"


def _run_systemctl(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise SupctlError(f"{shlex.join(argv)} failed: {done.stderr.strip() or f'exit {done.returncode}'}")


def install_unit(
    text: str,
    path: Path,
    user_mode: bool,
    *,
    booted: Path = _SYSTEMD_BOOTED,
    run: Callable[[list[str]], None] = _run_systemctl,
    linger_dir: Path = Path("/var/lib/systemd/linger"),
) -> list[str]:
    """Write the unit; enable it if systemd runs here. Returns the commands the person still has to run."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.chmod(0o644)
    tmp.replace(path)

    systemctl = ["systemctl", "--user"] if user_mode else ["systemctl"]
    name = path.stem
    todo: list[list[str]] = []
    if booted.is_dir():
        run(systemctl + ["daemon-reload"])
        run(systemctl + ["enable", name])
        todo.append(systemctl + ["start", name])
    else:
        todo += [systemctl + ["daemon-reload"], systemctl + ["enable", "--now", name]]
    if user_mode:
        user = pwd.getpwuid(os.getuid()).pw_name
        if not (linger_dir / user).exists():
            # Without lingering a user manager (and the unit) starts at login, not at boot.
            todo.append(["loginctl", "enable-linger", user])
    return [shlex.join(argv) for argv in todo]
