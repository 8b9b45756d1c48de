"""The client library bots import: `client = await connect()` reads SUPCTL_BUS / SUPCTL_BUS_TOKEN.

When the socket drops the client reconnects with exponential backoff, then
re-subscribes and re-serves; publishes meanwhile wait in the bounded Outbox.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import pathlib
from typing import Any, Awaitable, Callable

import msgspec
from msgspec import Raw

from supervisor.bus import frames as f
from supervisor.bus.eager import start_eagerly
from supervisor.bus.outbox import Outbox
from supervisor.bus.state import MasterCalls
from supervisor.bus.stream import FRAME_SLACK, ClientStream
from supervisor.bus.subscription import BusTimeout, Message, Peer, Subscription
from supervisor.bus.topics import RESERVED_PREFIX, TopicIndex, check_pattern, check_topic
from supervisor.bus.waits import Waits
from supervisor.core.backoff import backoff_delay
from supervisor.core.errors import BusError

log = logging.getLogger(__name__)

ENV_PATH = "SUPCTL_BUS"
ENV_TOKEN = "SUPCTL_BUS_TOKEN"
BACKOFF_START = 0.05
BACKOFF_MAX = 2.0

Handler = Callable[[Message], Awaitable[Any]]
_decode_any = msgspec.msgpack.Decoder().decode


class Client(MasterCalls):
    """One connection to the broker; create it with `connect()`."""

    def __init__(self, path: pathlib.Path, token: str, *, max_buffer: int = 10_000, max_pending: int = 65_536) -> None:
        self.path = path
        self.bot = ""
        self.instance = 0
        self.max_pending = max_pending
        self._token = token
        self._enc = msgspec.msgpack.Encoder()
        self._dec = msgspec.msgpack.Decoder(f.Frame)
        self._transport: asyncio.Transport | None = None
        self._proto: ClientStream | None = None
        self._outbox = Outbox(max_buffer)
        self._topics: set[str] = set()
        self._ids = itertools.count(1)
        self._subs: dict[int, Subscription] = {}
        self._index: TopicIndex[Subscription] = TopicIndex()
        self._serves: dict[str, Handler] = {}
        self._serve_index: TopicIndex[str] = TopicIndex()
        self._waits = Waits()
        self._asked: set[str] = set()
        """Topics already checked for `request`."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._welcome: asyncio.Future[f.Welcome] | None = None
        self._loop: asyncio.AbstractEventLoop  # set by _open, which every Client goes through first
        self._reconnect: asyncio.Task[None] | None = None
        self._closed = False
        self._error: BusError | None = None
        self._max_frame = f.MAX_FRAME
        self._max_payload = f.MAX_FRAME - 64

    # -- connection -----------------------------------------------------------

    async def _open(self, timeout: float = 10.0) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._welcome = loop.create_future()
        try:
            transport, proto = await asyncio.wait_for(
                loop.create_unix_connection(lambda: ClientStream(self), os.fspath(self.path)), timeout
            )
        except (OSError, TimeoutError) as exc:
            raise ConnectionError(f"cannot reach the bus at {self.path}: {exc}") from exc
        self._transport, self._proto = transport, proto
        transport.write(f.pack(self._enc, f.Hello(f.PROTOCOL_VERSION, self._token)))
        try:
            welcome = await asyncio.wait_for(self._welcome, timeout)
        except TimeoutError:
            transport.abort()
            raise ConnectionError(f"no welcome from the bus at {self.path}") from None
        self.bot, self.instance, self._max_frame = welcome.bot, welcome.instance, welcome.max_frame
        self._max_payload = self._outbox.frame_limit = self._max_frame - 64
        proto.splitter.max_frame = self._max_frame + FRAME_SLACK
        self._outbox.attach(transport)
        for sub in self._subs.values():
            self._outbox.frame(f.Sub(sub.sid, sub.pattern))
        for pattern in self._serves:
            self._outbox.frame(f.Serve(pattern))
        self._outbox.set_writable(True)

    def _on_lost(self, proto: ClientStream) -> None:
        if proto is not self._proto:
            return
        self._proto = self._transport = None
        self._outbox.detach()
        for sub in self._subs.values():
            sub.unacked()
        self._waits.fail_all(BusError("bus connection lost"))
        if self._welcome is not None and not self._welcome.done():
            self._welcome.set_exception(ConnectionError("bus connection closed during hello"))
        if not self._closed and self._error is None and self._reconnect is None:
            self._reconnect = asyncio.get_running_loop().create_task(self._reconnect_loop())

    async def _reconnect_loop(self) -> None:
        attempt = 0
        try:
            while not self._closed:
                await asyncio.sleep(backoff_delay(attempt, BACKOFF_START, 2.0, BACKOFF_MAX, 0.2))
                try:
                    await self._open()
                    log.info("bus: reconnected to %s", self.path)
                    return
                except ConnectionError as exc:
                    log.debug("bus: reconnect failed: %s", exc)
                    attempt += 1
                except BusError as exc:
                    self._fail(exc)
                    return
        finally:
            self._reconnect = None

    def _fail(self, error: BusError) -> None:
        """The broker refused us for good (bad token, version): end everything with `error`."""
        log.error("bus: %s", error)
        self._error = error
        for sub in self._subs.values():
            sub.end(error)
        self._outbox.can_write.set()

    # -- sending --------------------------------------------------------------

    def publish_nowait(self, topic: str, obj: Any, retain: bool = False) -> None:
        """Queue a message without waiting; sent at the end of this loop iteration."""
        if topic not in self._topics:
            self._check_topic(topic)
        data = self._enc.encode(obj)
        size = len(data) + len(topic) + 8
        if size > self._max_payload:
            raise BusError(f"message on {topic!r} is {size} bytes; the bus limit is {self._max_frame}")
        if not self._outbox.writable:
            self._check_open()
        self._outbox.add(f.Msg(topic, Raw(data), retain), size)

    def _check_topic(self, topic: str) -> None:
        check_topic(topic)
        if topic.startswith(RESERVED_PREFIX) and self.bot != "supctl":
            raise BusError(f"topic {topic!r} is reserved for the master")
        if len(self._topics) > 10_000:
            self._topics.clear()
        self._topics.add(topic)

    async def publish(self, topic: str, obj: Any, retain: bool = False) -> None:
        """Queue a message; waits only while the broker is not keeping up (backpressure)."""
        if not self._outbox.writable and self._outbox.live:
            await self._outbox.can_write.wait()
        self.publish_nowait(topic, obj, retain)

    @property
    def dropped(self) -> int:
        """Publishes dropped because the offline buffer (`max_buffer`) was full."""
        return self._outbox.dropped

    async def drain(self) -> None:
        """Wait until the broker takes more: call it between bursts of publish_nowait."""
        while not self._outbox.writable:
            self._check_open()
            await self._outbox.can_write.wait()

    async def _ask(
        self, frame_of: Callable[[int], Any], what: str, timeout: float | None, cancel: bool = False
    ) -> Any:
        """Send a frame carrying a fresh id and wait for the answer with that id."""
        loop = self._loop  # asyncio.get_running_loop() costs a getpid() syscall on 3.11
        if not self._outbox.writable:
            deadline = None if timeout is None else loop.time() + timeout
            try:
                await asyncio.wait_for(self.drain(), timeout)
            except TimeoutError:
                raise BusTimeout(f"{what}: bus not reachable within {timeout}s") from None
            if deadline is not None:
                timeout = max(deadline - loop.time(), 0.0)
        n = next(self._ids)
        waiter = self._waits.add(n, loop, timeout, what)
        self._outbox.send(frame_of(n))
        try:
            return await waiter
        finally:
            if self._waits.discard(n) and cancel:
                self._outbox.frame(f.Cancel(n))

    async def flush(self, timeout: float | None = 10.0) -> None:
        """Return once the broker has handled everything sent before this call."""
        await self._ask(f.Ping, "bus flush", timeout)

    async def request(self, topic: str, obj: Any, timeout: float = 5.0, type: Any = None) -> Any:
        """Ask whoever serves `topic`; returns the reply data (decoded as `type` if given)."""
        if self._error is not None or self._closed:
            self._check_open()
        if topic not in self._asked:
            check_topic(topic)
            if len(self._asked) > 10_000:
                self._asked.clear()
            self._asked.add(topic)
        data = Raw(self._enc.encode(obj))
        reply = await self._ask(lambda n: f.Request(n, topic, data), f"request on {topic!r}", timeout, True)
        if reply.error:
            raise BusError(f"request on {topic!r} failed: {reply.error}")
        try:
            if type is None:
                return _decode_any(reply.data)
            return msgspec.msgpack.decode(reply.data, type=type)
        except msgspec.ValidationError as exc:
            raise BusError(f"reply on {topic!r} is not a {type}: {exc}") from exc

    async def peers(self, timeout: float | None = 10.0) -> list[Peer]:
        """Every connected (bot, instance), the master excluded; those on other hosts (NATS) after ours."""
        answer = await self._ask(f.PeersQuery, "bus peers", timeout)
        return [Peer(*p) for p in answer.peers] + [Peer(*p) for p in answer.remote]

    # -- receiving ------------------------------------------------------------

    def subscribe(self, pattern: str, type: Any = None, max_pending: int | None = None) -> Subscription:
        """Messages on `pattern` (`*` one token, `>` the rest); retained values come first."""
        self._check_open()
        check_pattern(pattern)
        sid = next(self._ids)
        sub = Subscription(sid, pattern, type, max_pending or self.max_pending, self._unsubscribe)
        self._subs[sid] = sub
        self._index.add(pattern, sub)
        self._outbox.frame(f.Sub(sid, pattern))
        return sub

    def presence(self) -> Subscription:
        """Every connected peer at once (retained), then joins and leaves, as `Presence` data."""
        return self.subscribe("supctl.presence.>", type=f.Presence)

    def _unsubscribe(self, sub: Subscription) -> None:
        if self._subs.pop(sub.sid, None) is not None:
            self._index.remove(sub.pattern, sub)
            self._outbox.frame(f.Unsub(sub.sid))

    def serve(self, pattern: str, handler: Handler) -> None:
        """Answer requests on `pattern`: `await handler(msg)` is the reply; an exception becomes an error reply."""
        self._check_open()
        check_pattern(pattern)
        if pattern in self._serves:
            raise BusError(f"{pattern!r} is already served by this client")
        self._serves[pattern] = handler
        self._serve_index.add(pattern, pattern)
        self._outbox.frame(f.Serve(pattern))

    def unserve(self, pattern: str) -> None:
        if self._serves.pop(pattern, None) is not None:
            self._serve_index.remove(pattern, pattern)
            self._outbox.frame(f.Unserve(pattern))

    def _on_data(self, proto: ClientStream, data: bytes) -> None:
        try:
            frames = proto.splitter.feed(data)
            decode = self._dec.decode
            for body in frames:
                frame = decode(body)
                if type(frame) is f.Deliver:
                    self._deliver(frame)
                else:
                    self._control(frame)
        except (msgspec.DecodeError, RecursionError, f.FrameError, BusError) as exc:
            log.error("bus: bad frame from the broker: %s", exc)
            if self._transport is not None:
                self._transport.abort()

    def _deliver(self, frame: f.Deliver) -> None:
        """Hand each subscription its share of the frame in one call."""
        bot, instance, host = frame.bot, frame.instance, frame.host
        if frame.sid:
            sub = self._subs.get(frame.sid)
            if sub is not None:
                sub.push(frame.items, bot, instance, host)
            return
        cached = self._index.cached
        shares: dict[int, tuple[tuple[Subscription, ...], list[f.Msg]]] = {}
        last: tuple[Subscription, ...] | None = None
        share: list[f.Msg] = []
        for msg in frame.items:
            subs = cached(msg.topic)
            if subs is None:
                subs = self._index.match(msg.topic)
            if subs is not last:
                entry = shares.get(id(subs))
                if entry is None:
                    entry = shares[id(subs)] = (subs, [])
                last, share = subs, entry[1]
            share.append(msg)
        for subs, msgs in shares.values():
            for sub in subs:
                sub.push(msgs, bot, instance, host)

    def _control(self, frame: Any) -> None:
        kind = type(frame)
        if kind is f.Reply or kind is f.Pong or kind is f.Peers:
            self._waits.resolve(frame.rid if kind is f.Reply else frame.n, frame)
        elif kind is f.Request:
            task = start_eagerly(self._answer(frame))
            if task is not None:
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        elif kind is f.SubAck:
            sub = self._subs.get(frame.sid)
            if sub is not None:
                sub.acked(frame.error)
        elif kind is f.Welcome:
            if self._welcome is not None and not self._welcome.done():
                self._welcome.set_result(frame)
        elif kind is f.Error:
            error = BusError(f"bus refused: {frame.message}")
            if self._welcome is not None and not self._welcome.done():
                self._welcome.set_exception(error)
            else:
                log.error("bus: %s", error)
        else:
            raise BusError(f"unexpected frame {kind.__name__}")

    async def _answer(self, frame: f.Request) -> None:
        patterns = self._serve_index.match(frame.topic)
        handler = self._serves.get(patterns[0]) if patterns else None
        try:
            if handler is None:
                raise BusError(f"not serving {frame.topic!r}")
            data = msgspec.msgpack.decode(frame.data)
            result = await handler(Message(frame.topic, data, frame.bot, frame.instance, host=frame.host))
            reply = f.Reply(frame.rid, Raw(self._enc.encode(result)))
        except Exception as exc:  # noqa: BLE001 - the requester gets the failure instead
            reply = f.Reply(frame.rid, error=f"{type(exc).__name__}: {exc}")
        self._outbox.send(reply)

    # -- lifecycle ------------------------------------------------------------

    def _check_open(self) -> None:
        if self._error is not None:
            raise self._error
        if self._closed:
            raise BusError("bus client is closed")

    async def close(self) -> None:
        """Send what is buffered, then disconnect; subscriptions end."""
        if self._closed:
            return
        self._closed = True
        self._outbox.flush()
        self._waits.close()
        if self._reconnect is not None:
            self._reconnect.cancel()
        for task in list(self._tasks):
            task.cancel()
        for sub in self._subs.values():
            sub.end()
        if self._transport is not None:
            self._transport.close()
        self._outbox.detach()
        self._outbox.can_write.set()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def connect(
    path: str | os.PathLike[str] | None = None, token: str | None = None, *, timeout: float = 10.0, **options: Any
) -> Client:
    """Connect and authenticate; defaults come from SUPCTL_BUS and SUPCTL_BUS_TOKEN."""
    path = path or os.environ.get(ENV_PATH)
    token = token or os.environ.get(ENV_TOKEN)
    if not path or not token:
        raise BusError(f"no bus configured: set {ENV_PATH} and {ENV_TOKEN} (supctl does this for its bots)")
    client = Client(pathlib.Path(path), token, **options)
    try:
        await client._open(timeout)
    except ConnectionError as exc:
        await client.close()
        raise BusError(str(exc)) from exc
    except BaseException:
        await client.close()
        raise
    return client
