"""The master's side of sd_notify: READY, STATUS, STOPPING and the watchdog ping, without libsystemd."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import sys
from collections.abc import Mapping

# What a child must not inherit: a bot that sees these would speak to systemd for the master.
SYSTEMD_ENV_VARS = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


def child_env(environ: Mapping[str, str]) -> dict[str, str]:
    """What every bot inherits: our environment minus systemd's notify variables, and, when supctl runs from a
    virtualenv, that venv's bin first on PATH (as `activate` would), so `python3` in a cmd can import supervisor.bus."""
    env = {k: v for k, v in environ.items() if k not in SYSTEMD_ENV_VARS}
    if sys.prefix != sys.base_prefix:
        bindir = os.path.dirname(sys.executable)
        path = env.get("PATH", os.defpath).split(os.pathsep)
        if path[0] != bindir:
            env["PATH"] = os.pathsep.join([bindir, *path])
    return env


def _notify_address(value: str) -> str:
    """NOTIFY_SOCKET as Python's AF_UNIX wants it: '@name' is Linux's abstract namespace."""
    return "\0" + value[1:] if value.startswith("@") else value


class Notifier:
    """sd_notify(3) without libsystemd; a no-op outside systemd so the master need not ask.

    Sends are best-effort: a missing or full socket is never a reason for the master to fail.
    """

    def __init__(self, address: str | None) -> None:
        self._address = _notify_address(address) if address else None
        self._sock: socket.socket | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Notifier:
        return cls(environ.get("NOTIFY_SOCKET") or None)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, **fields: object) -> bool:
        """Send KEY=value lines (``notify(READY=1, STATUS="...")``); False when not delivered."""
        if self._address is None or not fields:
            return False
        payload = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.setblocking(False)
        try:
            self._sock.sendto(payload, self._address)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ECONNREFUSED, errno.EAGAIN, errno.ENOBUFS, errno.EPERM):
                raise
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.notify(READY=1, **({"STATUS": status} if status else {}))

    def status(self, text: str) -> bool:
        return self.notify(STATUS=text.replace("\n", " "))

    def watchdog(self) -> bool:
        return self.notify(WATCHDOG=1)

    def stopping(self) -> bool:
        return self.notify(STOPPING=1)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval(environ: Mapping[str, str] = os.environ) -> float | None:
    """Seconds between pings (half of WatchdogSec, as sd_watchdog_enabled(3) advises); None if off or not for us."""
    pid = environ.get("WATCHDOG_PID")
    if pid and pid.strip() != str(os.getpid()):
        return None
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 2_000_000 if usec > 0 else None


async def watchdog_loop(notifier: Notifier, interval: float) -> None:
    """Ping from the event loop itself, so a blocked loop stops the pings and systemd restarts us."""
    while True:
        notifier.watchdog()
        await asyncio.sleep(interval)
