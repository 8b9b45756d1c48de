"""The broker's last value per topic, bounded by count and by bytes (oldest out first)."""

from __future__ import annotations

from typing import Iterator

import msgspec
from msgspec import Raw

from supervisor.bus import frames as f
from supervisor.bus.topics import matches

_NIL = b"\xc0"


class Retained(msgspec.Struct, gc=False):
    bot: str
    instance: int
    msg: f.Msg
    host: str = ""


class RetainedStore:
    def __init__(self, max_topics: int, max_bytes: int) -> None:
        self.max_topics = max_topics
        self.max_bytes = max_bytes
        self._items: dict[str, Retained] = {}
        self._bytes = 0

    def put(self, sender: tuple[str, int], msg: f.Msg, host: str = "") -> None:
        """Keep a copy (the frame buffer it points into is not ours); nil data clears."""
        self.clear(msg.topic)
        if len(msg.data) == 1 and bytes(msg.data) == _NIL:
            return
        kept = f.Msg(msg.topic, Raw(bytes(msg.data)), True)
        self._items[msg.topic] = Retained(sender[0], sender[1], kept, host)
        self._bytes += len(kept.data)
        while len(self._items) > self.max_topics or self._bytes > self.max_bytes:
            self.clear(next(iter(self._items)))

    def clear(self, topic: str) -> None:
        old = self._items.pop(topic, None)
        if old is not None:
            self._bytes -= len(old.msg.data)

    def get(self, topic: str) -> Retained | None:
        return self._items.get(topic)

    def matching(self, pattern: str) -> Iterator[Retained]:
        for topic, kept in self._items.items():
            if matches(pattern, topic):
                yield kept
