"""The one length-prefixed frame codec: a 4-byte big-endian length, then the body.

The control protocol and the bus both speak it. Stdlib only, so `supctl status` stays light.
Bodies are encoded in place after a reserved header (no copy), and a `FrameSplitter` cuts a
byte stream into bodies, returning memoryviews into the chunk it was fed (no copy either).
"""

from __future__ import annotations

import struct
from typing import Any, Protocol

HEADER = struct.Struct(">I")


class FrameError(ValueError):
    """The stream cannot go on: a frame over the limit, or more bytes held than the budget allows."""


class Encoder(Protocol):
    def encode_into(self, obj: Any, buffer: bytearray, offset: int = 0, /) -> None: ...


def pack(encoder: Encoder, obj: Any) -> bytearray:
    """One frame with its length prefix, encoded in place (no copy of the body)."""
    buf = bytearray(4)
    encoder.encode_into(obj, buf, 4)
    HEADER.pack_into(buf, 0, len(buf) - 4)
    return buf


def pack_into(encoder: Encoder, obj: Any, buf: bytearray) -> None:
    """Append one framed message to `buf` without an intermediate bytes object."""
    start = len(buf)
    buf += b"\0\0\0\0"
    encoder.encode_into(obj, buf, start + 4)
    HEADER.pack_into(buf, start, len(buf) - start - 4)


class Budget:
    """Bytes of partial frames that every connection of one server may hold together."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0


class FrameSplitter:
    """Cuts a byte stream into frame bodies; keeps at most one partial frame.

    Complete frames come back as memoryviews into the chunk (no copy); only a frame split
    across reads is joined. A partial frame is held against `budget`, if one is given, and
    given back by the next feed or by `release()`.
    """

    __slots__ = ("max_frame", "budget", "_pending", "_have", "_need", "_held")

    def __init__(self, max_frame: int, budget: Budget | None = None) -> None:
        self.max_frame = max_frame
        self.budget = budget
        self._pending: list[bytes] = []
        self._have = 0
        self._need = 0
        self._held = 0

    @property
    def buffered(self) -> int:
        """Bytes of the partial frame held until the rest arrives."""
        return self._have

    def release(self) -> None:
        """Drop the partial frame (the connection closed) and give its bytes back to the budget."""
        self._pending = []
        self._have = 0
        self._hold(0)

    def feed(self, data: bytes) -> list[memoryview]:
        """Every frame body completed by `data`.

        Raises FrameError for a frame longer than `max_frame` or a partial frame the budget
        cannot hold; the stream is then unusable.
        """
        if not self._pending and len(data) >= 4:
            (size,) = HEADER.unpack_from(data)
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
                    self._hold(self._have)
                    return frames
                data = b"".join(self._pending)
                view = memoryview(data)
                self._pending = []
                self._have = 0
            else:
                take = self._need - self._have
                if len(data) < take:
                    self._pending.append(data)
                    self._have += len(data)
                    self._hold(self._have)
                    return frames
                self._pending.append(data[:take])
                joined = b"".join(self._pending)
                self._pending = []
                self._have = 0
                frames.append(memoryview(joined)[4:])
                off = take
        n = len(data)
        unpack = HEADER.unpack_from
        limit = self.max_frame
        while n - off >= 4:
            (size,) = unpack(data, off)
            if size > limit:
                raise FrameError(f"frame of {size} bytes exceeds the limit of {limit}")
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
        self._hold(self._have)
        return frames

    def _hold(self, n: int) -> None:
        budget = self.budget
        if budget is None or n == self._held:
            return
        budget.used += n - self._held
        self._held = n
        if n and budget.used > budget.limit:
            self.release()
            raise FrameError(f"partial frames of all connections would hold more than {budget.limit} bytes")
