"""The client's sending side: batch publishes into Pub frames, hold them while offline.

Publishes made in one loop iteration go out as one Pub frame (or one per 64 KiB),
so a publish costs one payload encode and a list append. While the connection
is down or the broker is not reading, publishes wait in a buffer of at most
`max_buffer` messages; past it the oldest are dropped and counted in `dropped`.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import msgspec

from supervisor.bus import frames as f

FLUSH_AT = 64 << 10


class Outbox:
    def __init__(self, max_buffer: int) -> None:
        self.max_buffer = max_buffer
        self.dropped = 0
        self.live = False
        """Welcomed by the broker: control frames can go out."""
        self.writable = False
        """Live and the broker keeps up: publishes go straight into the batch."""
        self.can_write = asyncio.Event()
        self.frame_limit = f.MAX_FRAME - 64
        """Largest Pub body to build; set from the broker's Welcome."""
        self._enc = msgspec.msgpack.Encoder()
        self._transport: asyncio.Transport | None = None
        self._batch: list[f.Msg] = []
        self._batch_size = 0
        self._out = bytearray()
        self._flush_handle: asyncio.Handle | None = None
        self._offline: collections.deque[f.Msg] = collections.deque()

    def attach(self, transport: asyncio.Transport) -> None:
        """The broker welcomed us: control frames may go out (publishes after `set_writable`)."""
        self._transport = transport
        self.live = True

    def detach(self) -> None:
        """The connection is gone: unsent publishes move back to the bounded buffer."""
        self._transport = None
        self.live = self.writable = False
        self.can_write.clear()
        self._out.clear()
        self._offline.extendleft(reversed(self._batch))
        self._batch = []
        self._batch_size = 0
        excess = len(self._offline) - self.max_buffer
        for _ in range(excess):
            self._offline.popleft()
        self.dropped += max(excess, 0)

    def set_writable(self, writable: bool) -> None:
        self.writable = writable and self.live
        if not self.writable:
            self.can_write.clear()
            return
        self.can_write.set()
        while self._offline and self.writable:
            msg = self._offline.popleft()
            self.add(msg, len(msg.data) + len(msg.topic) + 8)
        self._schedule()

    def add(self, msg: f.Msg, size: int) -> None:
        """Queue one message; `size` bounds its encoded size (the client checked it fits a frame)."""
        if self.writable:
            if self._batch_size + size > self.frame_limit:
                self._seal()
            self._batch.append(msg)
            self._batch_size += size
            if self._batch_size >= FLUSH_AT:
                self.flush()
            elif self._flush_handle is None:
                self._schedule()
            return
        self._offline.append(msg)
        if len(self._offline) > self.max_buffer:
            self._offline.popleft()
            self.dropped += 1

    def frame(self, frame: Any) -> None:
        """A control frame, after the publishes before it; dropped while not live, since
        (re)connecting rebuilds all subscriptions and serves anyway."""
        if not self.live:
            return
        self._seal()
        f.pack_into(self._enc, frame, self._out)
        self._schedule()

    def send(self, frame: Any) -> None:
        """A control frame written now (request, reply): no flush callback, no extra copy."""
        if self._batch or self._out or self._transport is None:
            self.frame(frame)
            self.flush()
        else:
            self._transport.write(f.pack(self._enc, frame))

    def flush(self) -> None:
        """Write everything queued now instead of at the end of the loop iteration."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._seal()
        if self._out and self._transport is not None:
            out, self._out = self._out, bytearray()
            self._transport.write(out)
        else:
            self._out.clear()

    def _seal(self) -> None:
        if self._batch:
            f.pack_into(self._enc, f.Pub(self._batch), self._out)
            self._batch = []
            self._batch_size = 0

    def _schedule(self) -> None:
        if self._flush_handle is None and (self._batch or self._out):
            self._flush_handle = asyncio.get_running_loop().call_soon(self.flush)
