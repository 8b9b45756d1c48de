"""What the NATS bridge (supervisor.bridge) plugs into the broker, so the broker never imports it.

A `Tap` sits in the subscriber index like a Connection and hands the Deliver frames routed to it
to a callback; a `Port` asks local responders on behalf of remote bots; `Outside` is what the
broker asks about requests nobody here serves and tells about patterns served here. A `Desk` answers
requests inside the master (checkpoints, the degradation level).
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, Protocol

import msgspec

from supervisor.bus import frames as f
from supervisor.core.errors import BusError


class Tap:
    """A subscriber inside the master: gets the same framed Deliver bytes a client would."""

    __slots__ = ("sink",)

    def __init__(self, sink: Callable[[bytes | bytearray], None]) -> None:
        self.sink = sink

    def send(self, frame: bytes | bytearray, count: int = 0) -> None:
        self.sink(frame)


class Port:
    """The requester for requests that came from NATS: each reply frame goes to `on_reply`."""

    def __init__(self, on_reply: Callable[[f.Reply], None]) -> None:
        self.identity: tuple[str, int] = ("supctl", 0)
        self.asked: dict[int, int] = {}
        self.msgs_in = 0
        self._on_reply = on_reply
        self._decode = msgspec.msgpack.Decoder(f.Reply).decode

    def send(self, frame: bytes | bytearray, count: int = 0) -> None:
        self._on_reply(self._decode(memoryview(frame)[4:]))


class Outside(Protocol):
    """The far side of the broker: the NATS bridge."""

    def wants(self, topic: str) -> bool:
        """May a request on `topic` nobody serves here go out (an export pattern matches)?"""

    def ask(self, bid: int, frame: f.Request, sender: tuple[str, int]) -> None:
        """Send the request out; answer later with `Broker.answer_outside(bid, ...)`."""

    def cancel(self, bid: int) -> None:
        """The requester gave up or went away."""

    def served(self, pattern: str, delta: int) -> None:
        """A local client started (+1) or stopped (-1) serving `pattern`."""

    def peers(self) -> list[tuple[str, int, str]]:
        """Bots connected on other hosts: (bot, instance, host)."""


Answer = Callable[[f.Request], Awaitable[bytes]]


class Desk:
    """A responder inside the master: the broker routes requests to it as to a client that serves their topic.

    Each request is answered by `answer` in its own task (checkpoint writes must not hold the loop); a BusError it
    raises is the reply's error. `identity` marks its replies as the master's."""

    def __init__(self, flush: Callable[[], None], reply: Callable[[Desk, f.Reply], None], answer: Answer) -> None:
        self.identity: tuple[str, int] = ("supctl", 0)
        self.serves: dict[str, int] = {}
        self.answering: set[int] = set()
        self.msgs_in = 0
        self._flush = flush
        self._reply = reply
        self._answer = answer
        self._decode = msgspec.msgpack.Decoder(f.Request).decode
        self._tasks: set[asyncio.Task[None]] = set()

    def send(self, frame: bytes | bytearray, count: int = 0) -> None:
        task = asyncio.get_running_loop().create_task(self._handle(self._decode(memoryview(frame)[4:])))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, req: f.Request) -> None:
        try:
            reply = f.Reply(req.rid, msgspec.Raw(await self._answer(req)))
        except BusError as e:
            reply = f.Reply(req.rid, error=str(e))
        self._reply(self, reply)
        self._flush()
