"""Fan-out of master events to GET /events streams, encoded once per event as one SSE frame."""

from __future__ import annotations

import asyncio
import itertools

import msgspec

QUEUE = 1024
"""Frames a slow client may fall behind by; past that it is dropped (it reconnects and refetches /status)."""


class EventHub:
    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[bytes | None]] = set()
        self._ids = itertools.count(1)
        self._encoder = msgspec.json.Encoder()

    @property
    def listeners(self) -> int:
        return len(self._queues)

    def publish(self, kind: str, obj: object) -> None:
        """Costs nothing without listeners (the dashboard closed, nobody streaming)."""
        if not self._queues:
            return
        frame = b"id: %d\nevent: %s\ndata: %s\n\n" % (next(self._ids), kind.encode(), self._encoder.encode(obj))
        for q in list(self._queues):
            try:
                q.put_nowait(frame)
            except asyncio.QueueFull:
                self._queues.discard(q)
                q.get_nowait()
                q.put_nowait(None)

    def subscribe(self) -> asyncio.Queue[bytes | None]:
        """A queue of frames; None means this listener fell too far behind and is cut off."""
        q: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUE)
        self._queues.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[bytes | None]) -> None:
        self._queues.discard(q)

    def close(self) -> None:
        """Ends every stream (the master is shutting down)."""
        for q in self._queues:
            if q.full():
                q.get_nowait()
            q.put_nowait(None)
        self._queues.clear()
