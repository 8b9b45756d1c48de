"""One client connection inside the broker: frame splitting, the outgoing queue, drops, fair turns.

A read whose frames cost more than `TURN` units of work (a Sub's retained replay counts one per
message) hands the rest to a later loop iteration with reading paused, so no client's frames hold
the loop for long and every other client gets its turn in between.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import msgspec

from supervisor.bus import frames as f
from supervisor.core.errors import BusError

if TYPE_CHECKING:
    from supervisor.bus.access import Access
    from supervisor.bus.broker import Broker

HELLO_MAX = 4096
"""Largest frame before the Welcome: a Hello is a version and a token."""
TURN = 20_000


class Connection(asyncio.Protocol):
    """One client connection; everything it sends is handled inside data_received."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.transport: asyncio.Transport | None = None
        self.splitter = f.FrameSplitter(HELLO_MAX, broker.budget)
        self.identity: tuple[str, int] | None = None
        self.access: Access | None = None
        """This bot's allow lists (None: open)."""
        self.work = 0
        self.out: list[bytes | bytearray] = []
        self.paused = False
        self.closing = False
        self.msgs_in = self.msgs_out = self.dropped = self.streak = 0
        self.subs: dict[int, str] = {}
        self.serves: dict[str, int] = {}
        self.asked: dict[int, int] = {}
        """Requests this client is waiting on: its request id -> broker id."""
        self.answering: set[int] = set()
        """Broker ids of requests routed to this client and not answered yet."""
        self.hello_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.set_write_buffer_limits(high=self.broker.max_queue)  # type: ignore[attr-defined]
        self.broker.conns.add(self)
        self.broker.limits.arrived(self)
        if not self.closing:
            self.hello_timer = asyncio.get_running_loop().call_later(self.broker.hello_timeout, self.fail, "no hello in time")

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        try:
            frames = self.splitter.feed(data)
        except f.FrameError as exc:
            self.fail(str(exc))
            return
        self._handle(frames, 0)

    def _handle(self, frames: list[memoryview], start: int) -> bool:
        """Handle frames[start:]; True when the rest was put off to a later loop iteration."""
        broker = self.broker
        later = False
        broker.reading = True
        self.work = 0
        try:
            decode = broker.decoder.decode
            for i in range(start, len(frames)):
                frame = decode(frames[i])
                if type(frame) is f.Pub:
                    broker.route(self, frame.items)
                elif self.identity is None:
                    broker.hello(self, frame)
                else:
                    broker.handle(self, frame)
                if self.closing:
                    break
                if self.work > TURN and i + 1 < len(frames):
                    later = True
                    self._later(frames, i + 1)
                    break
        except (msgspec.DecodeError, RecursionError) as exc:
            self.fail(f"malformed frame: {exc}")
        except BusError as exc:
            self.fail(str(exc))
        finally:
            broker.reading = False
        broker.flush()
        return later

    def _later(self, frames: list[memoryview], start: int) -> None:
        """Give the loop back; the rest of this read runs in a later iteration, reading paused meanwhile."""
        assert self.transport is not None
        self.transport.pause_reading()
        asyncio.get_running_loop().call_soon(self._resume, frames, start)

    def _resume(self, frames: list[memoryview], start: int) -> None:
        if self.closing or self.transport is None:
            return
        if not self._handle(frames, start) and not self.closing:
            self.transport.resume_reading()

    def send(self, frame: bytes | bytearray, count: int = 0) -> None:
        """Queue bytes for the next flush, or drop them while the client is not reading."""
        if self.paused:
            self.dropped += count
            self.streak += count
            if self.streak > self.broker.max_drops:
                self.fail("slow consumer: too many messages dropped")
            return
        if not self.out:
            self.broker.dirty.append(self)
        self.out.append(frame)
        self.msgs_out += count

    def fail(self, message: str) -> None:
        """Tell the client why, then close: the rest of the bus goes on."""
        if self.closing or self.transport is None:
            return
        self.closing = True
        self.out.clear()
        self.broker.limits.closed(self, message)
        if not self.paused:
            self.transport.write(f.pack(self.broker.encoder, f.Error(message, fatal=True)))
            self.transport.close()
        else:
            self.transport.abort()
        self.broker.forget(self)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self.streak = 0

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        if self.hello_timer is not None:
            self.hello_timer.cancel()
        self.splitter.release()
        self.broker.forget(self)
