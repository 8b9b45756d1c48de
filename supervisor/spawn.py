"""Start one OS process the way supctl needs it: own session, stdin /dev/null, pipes, death signal."""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from .errors import SpawnError
from .logs import STDERR_TAG, LineSplitter, RotatingLog

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent(parent: int) -> Callable[[], None]:
    """Runs in the child before exec: SIGKILL us if the master dies (and if it already did, go now)."""

    def preexec() -> None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            os._exit(1)

    return preexec


class ChildProtocol(asyncio.SubprocessProtocol):
    """Feeds stdout/stderr into the instance's log; resolves `exited` when the kernel reports the exit."""

    def __init__(self, log: RotatingLog) -> None:
        loop = asyncio.get_running_loop()
        self.exited: asyncio.Future[int] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self._streams = {1: LineSplitter(log), 2: LineSplitter(log, STDERR_TAG)}
        self.transport: asyncio.SubprocessTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self._streams[fd].feed(data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        self._streams[fd].close()

    def process_exited(self) -> None:
        assert self.transport is not None
        if not self.exited.done():
            self.exited.set_result(self.transport.get_returncode())

    def connection_lost(self, exc: Exception | None) -> None:
        for s in self._streams.values():
            s.close()
        if not self.closed.done():
            self.closed.set_result(None)


async def spawn(argv: list[str], cwd: Path, env: dict[str, str], log: RotatingLog) -> tuple[int, ChildProtocol]:
    """Start argv in a new session; returns (pid, protocol). Raises SpawnError with the OS reason."""
    loop = asyncio.get_running_loop()
    try:
        transport, proto = await loop.subprocess_exec(
            lambda: ChildProtocol(log), *argv, cwd=str(cwd), env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            start_new_session=True, preexec_fn=_die_with_parent(os.getpid()),
        )
    except (OSError, ValueError, subprocess.SubprocessError) as e:
        raise SpawnError(f"cannot start {argv[0]!r} in {cwd}: {getattr(e, 'strerror', None) or e}") from None
    return transport.get_pid(), proto


def kill_group(pgid: int, sig: int) -> bool:
    """Signal a whole process group; False when nothing is left in it."""
    try:
        os.killpg(pgid, sig)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return False


def group_alive(pgid: int) -> bool:
    return kill_group(pgid, 0)
