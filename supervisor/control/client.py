"""The small blocking client every `supctl` verb uses to talk to its master over control.sock.

Imports stay light (msgspec and the stdlib) because every `supctl` verb loads this module: the socket is
`_socket`'s, whose methods are the ones `socket.socket` inherits; `socket` itself builds its enums and loads
selectors and array at import, ~5 ms of every `supctl status`.
"""

from __future__ import annotations

import _socket
import os
import struct
from collections import deque

import msgspec

from ..core.errors import ControlError
from ..core.frames import FrameError, FrameSplitter
from .protocol import (
    MAX_FRAME,
    PROTOCOL_VERSION,
    Error,
    Frame,
    Hello,
    Response,
    Welcome,
    encode,
    response_decoder,
)


class NoMaster(ControlError):
    """Nothing answers on the control socket."""


class Client:
    """Blocking client: one connection, hello first, then request/response pairs."""

    def __init__(self, sock_path: str, timeout: float = 30.0) -> None:
        self.sock_path = sock_path
        self._sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        self._splitter = FrameSplitter(MAX_FRAME)
        self._frames: deque[memoryview] = deque()
        try:
            self._sock.connect(str(sock_path))
        except (FileNotFoundError, ConnectionRefusedError) as e:
            self._sock.close()
            raise NoMaster(f"no master is listening on {sock_path}") from e
        self._check_peer()
        welcome = self.call(Hello(version=PROTOCOL_VERSION))
        if not isinstance(welcome, Welcome):
            raise ControlError(f"unexpected reply to hello: {welcome}")
        self.welcome = welcome

    def _check_peer(self) -> None:
        """Talk only to a master of our own user: a socket someone else swapped in is refused (SO_PEERCRED). Its pid
        is kept as the kernel gives it (right across pid namespaces) for wait_closed."""
        pid, uid, _gid = struct.unpack("3i", self._sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12))
        if uid != os.geteuid():
            self._sock.close()
            raise ControlError(f"control socket {self.sock_path} is served by uid {uid}, not by this user "
                               f"(uid {os.geteuid()}); refusing to talk to it")
        self.peer_pid = pid

    def call(self, request: Frame) -> Response:
        try:
            self._sock.sendall(encode(request))
            while not self._frames:
                chunk = self._sock.recv(1 << 16)
                if not chunk:
                    raise ControlError(f"control socket {self.sock_path}: the master closed the connection")
                self._frames.extend(self._splitter.feed(chunk))
            reply = response_decoder.decode(self._frames.popleft())
        except (OSError, msgspec.DecodeError, RecursionError, FrameError) as e:
            raise ControlError(f"control socket {self.sock_path}: {e}") from e
        if isinstance(reply, Error) and isinstance(request, Hello):
            raise ControlError(reply.message)
        return reply

    def wait_closed(self, timeout: float = 10.0) -> None:
        """Block until the master has exited after `shutdown`: it closes this connection first and still unwinds
        after that, and a `supctl start` right after must not find its locks held."""
        self._sock.settimeout(None)
        while self._sock.recv(4096):
            pass
        try:
            fd = os.pidfd_open(self.peer_pid)
        except OSError:  # gone already (or no pidfd: Linux < 5.3)
            return
        try:
            import select

            if not select.select([fd], [], [], timeout)[0]:
                raise ControlError(f"master pid {self.peer_pid} closed its control socket but still runs after {timeout:.0f} s")
        finally:
            os.close(fd)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
