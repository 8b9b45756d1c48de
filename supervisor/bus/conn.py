"""One client connection inside the broker: frame splitting, the outgoing queue, drops."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import msgspec

from supervisor.bus import frames as f
from supervisor.errors import BusError

if TYPE_CHECKING:
    from supervisor.bus.broker import Broker


class Connection(asyncio.Protocol):
    """One client connection; everything it sends is handled inside data_received."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.transport: asyncio.Transport | None = None
        self.splitter = f.FrameSplitter(broker.max_frame)
        self.identity: tuple[str, int] | None = None
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
        if len(self.broker.conns) >= self.broker.max_clients:
            self.fail("too many bus clients")
            return
        self.broker.conns.add(self)
        loop = asyncio.get_running_loop()
        self.hello_timer = loop.call_later(self.broker.hello_timeout, self.fail, "no hello in time")

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        broker = self.broker
        broker.reading = True
        try:
            frames = self.splitter.feed(data)
            decode = broker.decoder.decode
            for body in frames:
                frame = decode(body)
                if type(frame) is f.Pub:
                    broker.route(self, frame.items)
                elif self.identity is None:
                    broker.hello(self, frame)
                else:
                    broker.handle(self, frame)
                if self.closing:
                    break
        except (msgspec.DecodeError, RecursionError) as exc:
            self.fail(f"malformed frame: {exc}")
        except (BusError, f.FrameError) as exc:
            self.fail(str(exc))
        finally:
            broker.reading = False
        broker.flush()

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
        self.broker.forget(self)
