"""The bus's retained values that outlive the master: `[bus] persist` (docs/bus.md, "Persisted retained values").

A retained value whose topic matches a persist pattern is kept in state_dir/retained/, one file per topic named by the
SHA-256 of the topic, in the checkpoints' envelope (engine/checkpoints.py: msgpack, a checksum verified on load),
written whole or not at all (the master's `write_atomic`). Writes are coalesced: a topic that changes is written at
most once per `every` seconds, with its latest value, in a thread, so a burst costs one write and the loop never waits
for the disk; a cleared value's file is removed; shutdown writes what is left. At start every file is read back into the
broker's retained store under its publisher's name and within the store's bounds; a file that fails its checksum, no
longer matches a pattern or passes a bound is said in the log and not restored. Values from other hosts (NATS) are
theirs to keep (bridge/kv.py), not persisted here.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

import msgspec
from msgspec import Raw

from ..bus import frames as f
from ..bus.retained import RetainedStore
from ..bus.topics import TopicIndex
from ..engine.checkpoints import SUFFIX, seal, unseal

EVERY = 0.25
"""Seconds between two writes of one topic: a burst of publishes is one write of the last value."""


class Kept(msgspec.Struct, array_like=True):
    """One persisted value: the topic, its publisher and the message bytes, verbatim."""

    topic: str
    bot: str
    instance: int
    data: bytes


def file_name(topic: str) -> str:
    """A topic may hold any character a path cannot (`/`), so the file is named by its hash."""
    import hashlib  # here: a master without [bus] persist never pays for it

    return hashlib.sha256(topic.encode()).hexdigest() + SUFFIX


class RetainedDisk:
    def __init__(self, root: Path, patterns: list[str], store: RetainedStore, write: Callable[[Path, bytes], None],
                 log: logging.Logger, every: float = EVERY) -> None:
        self.root = root
        self._store = store
        self._write = write
        self._log = log
        self._every = every
        self._any = bool(patterns)
        """Without a pattern nothing is followed; files left from an older procfile are still dropped at start."""
        self._patterns: TopicIndex[int] = TopicIndex()
        for i, pattern in enumerate(patterns):
            self._patterns.add(pattern, i)
        self._enc = msgspec.msgpack.Encoder()
        self._dec = msgspec.msgpack.Decoder(Kept)
        self._dirty: dict[str, None] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._writing: asyncio.Task[None] | None = None

    def persists(self, topic: str) -> bool:
        return bool(self._patterns.match(topic))

    async def restore(self) -> int:
        """Read every file back into the store (before the bus listens), then follow the store's changes."""
        kept = await asyncio.to_thread(self.load)
        for k in kept:
            why = self._store.put((k.bot, k.instance), f.Msg(k.topic, Raw(k.data), True))
            if why is not None:
                self._log.warning("bus: persisted retained value of %r not restored: %s", k.topic, why)
                self._dirty[k.topic] = None
        if kept:
            self._log.info("bus: restored %d persisted retained values from %s", len(kept) - len(self._dirty), self.root)
        self._store.changed = self._changed if self._any else None
        if self._dirty:
            self._soon()
        return len(kept)

    def load(self) -> list[Kept]:
        """Every good file whose topic still matches a pattern; the others are logged, and removed when unmatched."""
        try:
            names = sorted(n for n in os.listdir(self.root) if n.endswith(SUFFIX) and not n.startswith("."))
        except FileNotFoundError:
            return []
        out: list[Kept] = []
        for name in names:
            path = self.root / name
            try:
                kept = self._dec.decode(unseal(path.read_bytes()).data)
                if file_name(kept.topic) != name:
                    raise ValueError(f"holds topic {kept.topic!r}, which is not its name")
            except (OSError, ValueError, msgspec.DecodeError) as e:
                self._log.warning("bus: persisted retained value %s refused, not restored: %s", path, e)
                continue
            if self.persists(kept.topic):
                out.append(kept)
            else:
                self._log.info("bus: %r matches no [bus] persist pattern any more: its persisted value is dropped", kept.topic)
                path.unlink(missing_ok=True)
        return out

    async def close(self) -> None:
        """Write what is still pending (shutdown): after this the disk holds the store's last word."""
        self._store.changed = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._writing is not None:
            await self._writing
        if self._dirty:
            await self._flush()

    def _changed(self, topic: str) -> None:
        if topic in self._dirty or not self._patterns.match(topic):
            return
        self._dirty[topic] = None
        if self._timer is None and self._writing is None:
            self._soon()

    def _soon(self) -> None:
        self._timer = asyncio.get_running_loop().call_later(self._every, self._begin)

    def _begin(self) -> None:
        self._timer = None
        self._writing = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        """Snapshot the dirty topics' values on the loop, write them in a thread; more changes meanwhile wait `every`."""
        batch: list[tuple[str, bytes | None]] = []
        for topic in self._dirty:
            kept = self._store.get(topic)
            if kept is None or kept.host:
                batch.append((topic, None))
            else:
                batch.append((topic, seal(0, self._enc.encode(Kept(topic, kept.bot, kept.instance, bytes(kept.msg.data))))))
        self._dirty = {}
        try:
            await asyncio.to_thread(self._save, batch)
        finally:
            self._writing = None
            if self._dirty and self._store.changed is not None:
                self._soon()

    def _save(self, batch: list[tuple[str, bytes | None]]) -> None:
        for topic, raw in batch:
            path = self.root / file_name(topic)
            try:
                if raw is None:
                    path.unlink(missing_ok=True)
                else:
                    self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
                    self._write(path, raw)
            except OSError as e:
                self._log.error("bus: persisted retained value of %r not written: %s", topic, e.strerror or e)
