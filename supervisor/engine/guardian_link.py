"""The master's side of the guardian (guardian.sh): start it, keep it told without ever blocking, restart it at once.

Writes go to a non-blocking pipe; what the pipe cannot take waits in a buffer flushed when the pipe drains
(a stopped guardian never blocks the loop). A buffer past BACKLOG is replaced by the whole current list.
The guardian's pidfd tells the loop the moment it dies; a new one starts with the current list.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
from pathlib import Path

GUARDIAN_SCRIPT = str(Path(__file__).with_name("guardian.sh"))
SH = "/bin/sh"
BACKLOG = 64 * 1024
"""Bytes waiting for a stopped guardian before they are folded into one fresh copy of the list."""


class Guard:
    """Tells the guardian every process group and tracked pid the master owns, its cgroup and its marker."""

    def __init__(self, logger: logging.Logger, status_path: Path | None = None, died_record: bytes = b"") -> None:
        self._logger = logger
        self._argv = [SH, GUARDIAN_SCRIPT, str(status_path or ""), died_record.decode(), str(os.getpid())]
        self._groups: set[int] = set()
        self._pids: set[int] = set()
        self._cgroup: str | None = None
        self._marker: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._pidfd = -1
        self._fd = -1
        self._pending = bytearray()
        self._at_line_start = True
        self._waiting = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def backlog(self) -> int:
        """Bytes the guardian has not taken yet (it is stopped or slow)."""
        return len(self._pending)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SUPCTL_FLEET")}
        self._proc = subprocess.Popen(self._argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, start_new_session=True, env=env)
        assert self._proc.stdin is not None
        self._fd = self._proc.stdin.fileno()
        os.set_blocking(self._fd, False)
        self._pidfd = os.pidfd_open(self._proc.pid)
        self._loop.add_reader(self._pidfd, self._died)
        self._pending, self._at_line_start, self._waiting = bytearray(self._snapshot()), True, False
        self._flush()

    def _snapshot(self) -> bytes:
        lines = [f"c {self._cgroup}"] if self._cgroup else []
        lines += [f"m {self._marker}"] if self._marker else []
        lines += [f"g+ {g}" for g in self._groups] + [f"p+ {p}" for p in self._pids]
        return "".join(f"{line}\n" for line in lines).encode()

    def __call__(self, pgid: int, alive: bool) -> None:
        """A process group started (alive) or ended: spawn.py's `announce`."""
        (self._groups.add if alive else self._groups.discard)(pgid)
        self._send(f"g{'+' if alive else '-'} {pgid}\n")

    def track(self, pid: int, alive: bool) -> None:
        """A process outside the groups (an adopted orphan) appeared or was reaped."""
        (self._pids.add if alive else self._pids.discard)(pid)
        self._send(f"p{'+' if alive else '-'} {pid}\n")

    def cgroup(self, path: str) -> None:
        self._cgroup = path
        self._send(f"c {path}\n")

    def marker(self, assignment: str) -> None:
        self._marker = assignment
        self._send(f"m {assignment}\n")

    def _send(self, text: str) -> None:
        self._pending += text.encode()
        if len(self._pending) > BACKLOG:
            keep = self._pending.find(b"\n") + 1 if not self._at_line_start else 0  # the rest of a half-written line
            self._pending[keep:] = b"=\n" + self._snapshot()
        if not self._waiting:
            self._flush()

    def _flush(self) -> None:
        if self._fd < 0 or not self._pending:
            return
        try:
            n = os.write(self._fd, self._pending)
        except BlockingIOError:
            n = 0
        except OSError:  # EPIPE: it died; _died restarts it with the whole list
            return
        if n:
            self._at_line_start = self._pending[n - 1] == 0x0A
            del self._pending[:n]
        assert self._loop is not None
        if self._pending and not self._waiting:
            self._loop.add_writer(self._fd, self._flush)
        elif not self._pending and self._waiting:
            self._loop.remove_writer(self._fd)
        self._waiting = bool(self._pending)

    def _detach(self) -> int:
        """Forget the current guardian process: stop watching its fds, reap it; returns its exit status."""
        assert self._proc is not None and self._loop is not None
        self._loop.remove_reader(self._pidfd)
        if self._waiting:
            self._loop.remove_writer(self._fd)
        os.close(self._pidfd)
        self._pidfd = self._fd = -1
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        code = self._proc.wait()
        self._proc = None
        return code

    def _died(self) -> None:
        pid = self.pid
        code = self._detach()
        self.restarts += 1
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"code {code}"
        self.start()
        self._logger.warning("guardian pid %s died (%s); started guardian pid %s with %d groups and %d pids",
                             pid, how, self.pid, len(self._groups), len(self._pids))

    def close(self) -> None:
        """Clean exit: "bye", so the guardian leaves the (already stopped) processes and status.json alone."""
        if self._proc is None:
            return
        self._send("bye\n")
        if self._pending:  # a stopped guardian cannot take it: it has nothing left to guard, so end it
            self._proc.kill()
        self._detach()
