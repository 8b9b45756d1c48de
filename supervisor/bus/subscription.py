"""What a subscriber holds: Messages and the bounded async iterator that yields them."""

from __future__ import annotations

import asyncio
import collections
import datetime
import decimal
import logging
import uuid
from typing import Any, Callable

import msgspec

from supervisor.bus import frames as f
from supervisor.core.errors import BusError

log = logging.getLogger(__name__)

_KEEP = (bytes, bytearray, memoryview, datetime.datetime, datetime.date, datetime.time, decimal.Decimal, uuid.UUID)


class BusTimeout(BusError, TimeoutError):
    """A bus wait ran out of time; catch it as BusError or as TimeoutError."""


class Peer(tuple[str, int]):
    """A connected (bot, instance): still the 2-tuple bots compare and unpack, with the peer's `host` beside it
    (empty on this master)."""

    host: str

    def __new__(cls, bot: str, instance: int, host: str = "") -> Peer:
        peer = super().__new__(cls, (bot, instance))
        peer.host = host
        return peer

    def __repr__(self) -> str:
        return f"Peer({self[0]!r}, {self[1]}, host={self.host!r})" if self.host else repr((self[0], self[1]))


class Message(msgspec.Struct, gc=False):
    """One delivered message; `bot`/`instance` were stamped by the broker, not the sender.

    `host` is empty when the sender runs under this master, else the host of the master it came from (NATS bridge)."""

    topic: str
    data: Any
    bot: str
    instance: int
    retained: bool = False
    host: str = ""

    def decode(self, type: Any) -> Any:
        """`data` converted to `type` (a Struct, dataclass, dict, ...), validated by msgspec."""
        return msgspec.convert(msgspec.to_builtins(self.data, builtin_types=_KEEP), type)


class Subscription:
    """Async iterator of Messages for one pattern; read it from one task at a time.

    Holds at most `max_pending` undelivered messages; past that the oldest is
    dropped and counted in `dropped`, so a slow reader never grows memory.
    """

    def __init__(
        self,
        sid: int,
        pattern: str,
        type: Any,
        max_pending: int,
        unsubscribe: Callable[[Subscription], None],
    ) -> None:
        self.sid = sid
        self.pattern = pattern
        self.dropped = 0
        self.invalid = 0
        self._decode = msgspec.msgpack.Decoder(type).decode if type is not None else msgspec.msgpack.decode
        self._queue: collections.deque[Message] = collections.deque(maxlen=max_pending)
        self._waiter: asyncio.Future[None] | None = None
        self._ready = asyncio.Event()
        self._end: BaseException | None = None
        self._unsubscribe = unsubscribe

    def push(self, msgs: list[f.Msg], bot: str, instance: int, host: str = "") -> None:
        """Queue messages the client routed here; the oldest fall out past `max_pending`."""
        decode = self._decode
        queue = self._queue
        before = len(queue)
        for msg in msgs:
            try:
                data = decode(msg.data)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                self.invalid += 1
                before -= 1
                log.warning("bus: dropped a message on %s from %s:%s: %s", msg.topic, bot, instance, exc)
                continue
            queue.append(Message(msg.topic, data, bot, instance, msg.retain, host))
        lost = before + len(msgs) - len(queue)
        if lost > 0:
            self.dropped += lost
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def acked(self, refused: str = "") -> None:
        """The broker has the subscription, or refused it: then it ends with that error."""
        if refused:
            self.close()
            self._end = BusError(f"bus refused the subscription to {self.pattern!r}: {refused}")
        self._ready.set()

    def unacked(self) -> None:
        self._ready.clear()

    def end(self, error: BaseException | None = None) -> None:
        """No more messages: iteration stops after the queue drains (raising `error` if given)."""
        if self._end is None:
            self._end = error or StopAsyncIteration()
        self._ready.set()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def ready(self, timeout: float | None = 10.0) -> None:
        """Wait until the broker has the subscription (and sent the retained values)."""
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            raise BusError(f"subscription to {self.pattern!r} not acknowledged within {timeout}s") from None
        if isinstance(self._end, BusError):
            raise self._end

    def close(self) -> None:
        """Unsubscribe; messages already queued can still be read."""
        if self._end is None:
            self._unsubscribe(self)
            self.end()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Message:
        while True:
            if self._queue:
                return self._queue.popleft()
            if self._end is not None:
                if isinstance(self._end, StopAsyncIteration):
                    raise StopAsyncIteration
                raise self._end
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None

    async def get(self, timeout: float | None = None) -> Message:
        """The next message, or BusTimeout after `timeout` seconds."""
        try:
            return await asyncio.wait_for(self.__anext__(), timeout)
        except TimeoutError:
            raise BusTimeout(f"no message on {self.pattern!r} within {timeout}s") from None
