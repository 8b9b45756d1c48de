"""The master's side of the guardian (guardian.sh): start it, keep it told without ever blocking, restart it at once.

Writes go to a non-blocking pipe; what the pipe cannot take waits in a buffer flushed when the pipe drains
(a stopped guardian never blocks the loop). A buffer past BACKLOG is replaced by the whole current list.
The guardian's pidfd tells the loop the moment it dies; a new one starts with the current list.

The guardian is a fork of the sh the master starts (guardian.sh says why): that sh prints the fork's pid and
exits, so the guardian is not the master's child. The pidfd is opened on the pid printed, then checked to be the
process reading this guardian's pipe, so a pid reused in between is never taken for the guardian.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import signal
import subprocess
from pathlib import Path

GUARDIAN_SCRIPT = str(Path(__file__).with_name("guardian.sh"))
SH = "/bin/sh"
BACKLOG = 64 * 1024
"""Bytes waiting for a stopped guardian before they are folded into one fresh copy of the list."""
LAUNCHES = 3
"""Tries to start a guardian whose fork is found alive (one killed at birth is simply started again)."""
BYE_WAIT = 5.0
"""At a clean exit, how long to wait for the guardian to read "bye" and end."""


def holds(pid: int, pipe: str) -> bool:
    """Whether process `pid` has `pipe` ("pipe:[INODE]") open, as fd 0 or any other (dash moves it on fork)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/fd/{fd}") == pipe:
                return True
    return False


class Guard:
    """Tells the guardian every process group and tracked pid the master owns, its cgroup and its marker."""

    def __init__(self, logger: logging.Logger, status_path: Path | None = None, died_record: bytes = b"") -> None:
        self._logger = logger
        self._argv = [SH, GUARDIAN_SCRIPT, str(status_path or ""), died_record.decode(), str(os.getpid())]
        self._groups: set[int] = set()
        self._pids: set[int] = set()
        self._cgroup: str | None = None
        self._marker: str | None = None
        self._pid: int | None = None
        self._pipe: int | None = None
        """The write end of the guardian's stdin."""
        self._pidfd = -1
        self._fd = -1
        self._pending = bytearray()
        self._at_line_start = True
        self._waiting = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        return self._pid

    @property
    def backlog(self) -> int:
        """Bytes the guardian has not taken yet (it is stopped or slow)."""
        return len(self._pending)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if not any(self._launch() for _ in range(LAUNCHES)):
            raise OSError(f"the guardian did not start ({self._argv[1]} printed no live pid {LAUNCHES} times)")
        self._fd = self._pipe  # type: ignore[assignment]
        os.set_blocking(self._fd, False)
        self._loop.add_reader(self._pidfd, self._died)
        self._pending, self._at_line_start, self._waiting = bytearray(self._snapshot()), True, False
        self._flush()

    def _launch(self) -> bool:
        """Start guardian.sh, which prints its fork's pid and exits (a few ms); hold a pidfd on the fork if that
        pid is a live process holding this guardian's pipe (only the guardian does), else clean up and say no."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SUPCTL_FLEET")}
        pipe_r, pipe_w = os.pipe()
        try:
            launcher = subprocess.Popen(self._argv, stdin=pipe_r, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                        start_new_session=True, env=env)
        finally:
            os.close(pipe_r)
        assert launcher.stdout is not None
        with launcher.stdout:
            printed = launcher.stdout.readline()
        launcher.wait()
        pidfd = -1
        with contextlib.suppress(ValueError, OSError):
            pid = int(printed)
            pidfd = os.pidfd_open(pid)
            if holds(pid, f"pipe:[{os.fstat(pipe_w).st_ino}]"):
                self._pid, self._pidfd, self._pipe = pid, pidfd, pipe_w
                return True
        if pidfd >= 0:
            os.close(pidfd)
        with contextlib.suppress(OSError):  # whatever holds the pipe leaves quietly, it was told nothing yet
            os.write(pipe_w, b"bye\n")
        os.close(pipe_w)
        return False

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

    def _detach(self) -> str:
        """Forget the current guardian process: stop watching its fds, reap it if it is the master's child (a
        subreaper master inherits it; waitid on the pidfd reaps that process and no other); says how it ended."""
        assert self._loop is not None and self._pipe is not None
        self._loop.remove_reader(self._pidfd)
        if self._waiting:
            self._loop.remove_writer(self._fd)
        how = "ended"
        with contextlib.suppress(ChildProcessError):
            end = os.waitid(os.P_PIDFD, self._pidfd, os.WEXITED | os.WNOHANG)
            if end is not None:
                how = f"signal {signal.Signals(end.si_status).name}" if end.si_code != os.CLD_EXITED else f"code {end.si_status}"
        os.close(self._pidfd)
        os.close(self._pipe)
        self._pidfd = self._fd = -1
        self._pid = self._pipe = None
        return how

    def _died(self) -> None:
        pid = self.pid
        how = self._detach()
        self.restarts += 1
        self.start()
        self._logger.warning("guardian pid %s died (%s); started guardian pid %s with %d groups and %d pids",
                             pid, how, self.pid, len(self._groups), len(self._pids))

    def close(self) -> None:
        """Clean exit: "bye", so the guardian leaves the (already stopped) processes and status.json alone."""
        if self._pid is None:
            return
        self._send("bye\n")
        if self._pending:  # a stopped guardian cannot take it: it has nothing left to guard, so end it
            signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
        select.select([self._pidfd], [], [], BYE_WAIT)
        self._detach()
