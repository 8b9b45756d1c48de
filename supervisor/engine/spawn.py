"""Start one OS process the way supctl needs it: own session, stdin /dev/null, pipes to its log.

Speed matters here (it is most of crash-to-restart latency): children are started with
subprocess.Popen, which uses vfork as long as no Python code has to run in the child, and their
exit is watched through a pidfd. That rules out a preexec_fn setting PR_SET_PDEATHSIG (a full
fork of the master costs 2-3 ms); the guardian (guardian.sh) kills what a dead master owned
instead: the groups, and the cgroups or tracked orphans of boxes.py, which also catch a descendant
that left its group. The box is told of the child at once (see cgroups.py for how it gets inside).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from ..core.errors import SpawnError
from ..output.rotating import STDERR_TAG, LineSplitter, RotatingLog
from .boxes import Box


class _PipeReader(asyncio.Protocol):
    def __init__(self, splitter: LineSplitter) -> None:
        self._splitter = splitter

    def data_received(self, data: bytes) -> None:
        self._splitter.feed(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._splitter.close()


class Child:
    """A started process: `exited` resolves with its return code (negative signal) once it is reaped."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self.pid = popen.pid
        self._popen = popen
        self._loop = asyncio.get_running_loop()
        self.exited: asyncio.Future[int] = self._loop.create_future()
        self._pidfd = os.pidfd_open(popen.pid)
        self._loop.add_reader(self._pidfd, self._reap)

    def _reap(self) -> None:
        code = self._popen.poll()
        if code is None:
            return
        self._loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self.exited.set_result(code)

    async def attach_pipes(self, log: RotatingLog) -> None:
        """Feed stdout and stderr (tagged) into the log; each pipe flushes its partial last line at EOF."""
        for pipe, tag in ((self._popen.stdout, b""), (self._popen.stderr, STDERR_TAG)):
            splitter = LineSplitter(log, tag)
            await self._loop.connect_read_pipe(lambda s=splitter: _PipeReader(s), pipe)  # type: ignore[misc]


async def spawn(argv: list[str], cwd: Path, env: dict[str, str], log: RotatingLog,
                announce: Callable[[int, bool], None] | None = None, box: Box | None = None) -> Child:
    """Start argv in a new session (inside `box`) with its output going to log. Raises SpawnError with the OS reason.

    `announce(pid, True)` (the guard) runs before anything else can happen on the loop.
    """
    try:
        popen = subprocess.Popen(argv, bufsize=0, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, start_new_session=True)  # bufsize 0: the loop reads the fds, no 8 KiB buffers
    except (OSError, ValueError, subprocess.SubprocessError) as e:
        raise SpawnError(f"cannot start {argv[0]!r} in {cwd}: {getattr(e, 'strerror', None) or e}") from None
    if box is not None:
        box.started(popen.pid)
    if announce is not None:
        announce(popen.pid, True)
    child = Child(popen)
    await child.attach_pipes(log)
    return child


def kill_group(pgid: int, sig: int) -> bool:
    """Signal a whole process group; False when nothing is left in it."""
    try:
        os.killpg(pgid, sig)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return False



class Processes(Protocol):
    """What an Instance asks of the OS besides its box: the seam unit tests fill with fakes."""

    async def spawn(self, argv: list[str], cwd: Path, env: dict[str, str], log: RotatingLog,
                    announce: Callable[[int, bool], None] | None = None, box: Box | None = None) -> Child: ...

    def kill_group(self, pgid: int, sig: int) -> bool: ...


class OsProcesses:
    """The real thing: the functions above."""

    spawn = staticmethod(spawn)
    kill_group = staticmethod(kill_group)


OS_PROCESSES: Processes = OsProcesses()
