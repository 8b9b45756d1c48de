"""The small blocking client every `supctl` verb uses to talk to its master over control.sock.

Imports stay light (msgspec and the stdlib) because every `supctl` verb loads this module.
"""

from __future__ import annotations

import socket

import msgspec

from ..errors import ControlError
from .protocol import (
    HEADER,
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
        try:
            self._sock.connect(str(sock_path))
        except (FileNotFoundError, ConnectionRefusedError) as e:
            self._sock.close()
            raise NoMaster(f"no master is listening on {sock_path}") from e
        welcome = self.call(Hello(version=PROTOCOL_VERSION))
        if not isinstance(welcome, Welcome):
            raise ControlError(f"unexpected reply to hello: {welcome}")
        self.welcome = welcome

    def call(self, request: Frame) -> Response:
        try:
            self._sock.sendall(encode(request))
            (size,) = HEADER.unpack(self._recv(HEADER.size))
            if size > MAX_FRAME:
                raise ControlError(f"reply frame of {size} bytes exceeds {MAX_FRAME}")
            reply = response_decoder.decode(self._recv(size))
        except (OSError, msgspec.DecodeError) as e:
            raise ControlError(f"control socket {self.sock_path}: {e}") from e
        if isinstance(reply, Error) and isinstance(request, Hello):
            raise ControlError(reply.message)
        return reply

    def _recv(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self._sock.recv(n - len(buf))
            if not chunk:
                raise ControlError(f"control socket {self.sock_path}: the master closed the connection")
            buf += chunk
        return bytes(buf)

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
