"""Bus wire format: 4-byte big-endian length + msgpack body, one msgspec Struct per frame.

Frames are array-like tagged Structs so they stay small and decode in one C call.
Payloads travel as `msgspec.Raw`: the broker routes their bytes and never decodes them.
"""

from __future__ import annotations

import struct
from typing import Any, Union

import msgspec
from msgspec import Raw

from supervisor.errors import BusError

PROTOCOL_VERSION = 1
MAX_FRAME = 1 << 20
"""Largest frame body, in bytes, either side accepts by default."""

_HEADER = struct.Struct(">I")


class _Frame(msgspec.Struct, array_like=True, tag=True, gc=False):
    pass


class Hello(_Frame, tag=1):
    """First client frame; the token alone decides who the client is."""

    version: int
    token: str


class Welcome(_Frame, tag=2):
    bot: str
    instance: int
    version: int
    max_frame: int


class Error(_Frame, tag=3):
    """Something the peer sent was refused; `fatal` means the connection is closing."""

    message: str
    fatal: bool = False


class Msg(msgspec.Struct, array_like=True, gc=False):
    """One published message inside a Pub or Deliver frame."""

    topic: str
    data: Raw
    retain: bool = False


class Pub(_Frame, tag=4):
    """Client -> broker: a batch of messages, decoded by the broker in one call."""

    items: list[Msg]


class Deliver(_Frame, tag=5):
    """Broker -> subscriber: messages from one sender, stamped by the broker.

    Encoded once and written to every subscriber it matches. `sid` is 0 for live
    traffic and names one subscription for a retained replay.
    """

    bot: str
    instance: int
    items: list[Msg]
    sid: int = 0


class Sub(_Frame, tag=6):
    sid: int
    pattern: str


class SubAck(_Frame, tag=7):
    """Sent after the retained replay for `sid`: the subscription is live."""

    sid: int


class Unsub(_Frame, tag=8):
    sid: int


class Serve(_Frame, tag=9):
    pattern: str


class Unserve(_Frame, tag=10):
    pattern: str


class Request(_Frame, tag=11):
    """Client -> broker (sender fields empty), then broker -> responder (stamped)."""

    rid: int
    topic: str
    data: Raw
    bot: str = ""
    instance: int = 0


class Reply(_Frame, tag=12):
    """Responder -> broker -> requester; a non-empty `error` means no useful data."""

    rid: int
    data: Raw = Raw(b"\xc0")
    error: str = ""
    bot: str = ""
    instance: int = 0


class Cancel(_Frame, tag=13):
    """The requester gave up on `rid`; the broker forgets it."""

    rid: int


class Ping(_Frame, tag=14):
    n: int


class Pong(_Frame, tag=15):
    n: int


class PeersQuery(_Frame, tag=16):
    n: int


class Peers(_Frame, tag=17):
    n: int
    peers: list[tuple[str, int]]


Frame = Union[
    Hello, Welcome, Error, Pub, Deliver, Sub, SubAck, Unsub, Serve, Unserve,
    Request, Reply, Cancel, Ping, Pong, PeersQuery, Peers,
]


class Presence(msgspec.Struct, frozen=True):
    """Payload on `supctl.presence.<bot>.<instance>`: retained while the peer is online."""

    bot: str
    instance: int
    online: bool


class BusStats(msgspec.Struct):
    """Per-identity counters the master shows in `supctl status`."""

    connected: bool = False
    msgs_in: int = 0
    msgs_out: int = 0
    dropped: int = 0


def pack(encoder: msgspec.msgpack.Encoder, frame: Any) -> bytearray:
    """One frame with its length prefix, encoded in place (no copy of the body)."""
    buf = bytearray(4)
    encoder.encode_into(frame, buf, 4)
    _HEADER.pack_into(buf, 0, len(buf) - 4)
    return buf


def pack_into(encoder: msgspec.msgpack.Encoder, frame: Any, buf: bytearray) -> None:
    """Append one framed message to `buf` without an intermediate bytes object."""
    start = len(buf)
    buf += b"\0\0\0\0"
    encoder.encode_into(frame, buf, start + 4)
    _HEADER.pack_into(buf, start, len(buf) - start - 4)


class FrameSplitter:
    """Cuts a byte stream into frame bodies; keeps at most one partial frame.

    Complete frames come back as memoryviews into the chunk (no copy); only a
    frame split across reads is joined.
    """

    __slots__ = ("max_frame", "_pending", "_have", "_need")

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._pending: list[bytes] = []
        self._have = 0
        self._need = 0

    def feed(self, data: bytes) -> list[memoryview]:
        """Every frame body completed by `data`.

        Raises BusError for a frame longer than `max_frame`; the stream is then unusable.
        """
        if not self._pending and len(data) >= 4:
            (size,) = _HEADER.unpack_from(data)
            if size + 4 == len(data) and size <= self.max_frame:
                return [memoryview(data)[4:]]  # the common case: exactly one whole frame
        frames: list[memoryview] = []
        view = memoryview(data)
        off = 0
        if self._pending:
            if self._have < 4:
                self._pending.append(data)
                self._have += len(data)
                if self._have < 4:
                    return frames
                data = b"".join(self._pending)
                view = memoryview(data)
                self._pending = []
            else:
                take = self._need - self._have
                if len(data) < take:
                    self._pending.append(data)
                    self._have += len(data)
                    return frames
                self._pending.append(data[:take])
                joined = b"".join(self._pending)
                self._pending = []
                frames.append(memoryview(joined)[4:])
                off = take
        n = len(data)
        unpack = _HEADER.unpack_from
        limit = self.max_frame
        while n - off >= 4:
            (size,) = unpack(data, off)
            if size > limit:
                raise BusError(f"frame of {size} bytes exceeds the limit of {limit}")
            end = off + 4 + size
            if end > n:
                break
            frames.append(view[off + 4 : end])
            off = end
        if off < n:
            rest = data[off:]
            self._pending = [rest]
            self._have = len(rest)
            self._need = unpack(rest)[0] + 4 if len(rest) >= 4 else 4
        return frames
