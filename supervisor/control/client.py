"""The small blocking client every `supctl` verb uses to talk to its master over control.sock.

Imports stay light (msgspec and the stdlib) because every `supctl` verb loads this module.
"""

from __future__ import annotations

import os
import socket
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
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
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
        """Talk only to a master of our own user: a socket someone else swapped in is refused (SO_PEERCRED)."""
        _pid, uid, _gid = struct.unpack("3i", self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
        if uid != os.geteuid():
            self._sock.close()
            raise ControlError(f"control socket {self.sock_path} is served by uid {uid}, not by this user "
                               f"(uid {os.geteuid()}); refusing to talk to it")

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

    def wait_closed(self) -> None:
        """Block until the master closes this connection, which it does by exiting after `shutdown`."""
        self._sock.settimeout(None)
        while self._sock.recv(4096):
            pass

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
