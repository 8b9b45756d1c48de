"""The bus broker the master hosts: authenticates clients by token and routes bytes.

Payloads are never decoded here. A Pub frame's messages are grouped by the set of
subscribers they match, encoded once per group as a Deliver frame, and the same
bytes are written to every subscriber; writes are batched per loop iteration.
A subscriber whose socket buffer passes `max_queue` bytes gets its messages
dropped (and counted) until it drains, and is cut off past `max_drops`.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import pathlib
import secrets
import socket
import stat

import msgspec
from msgspec import Raw

from supervisor.bus import frames as f
from supervisor.bus.topics import RESERVED_PREFIX, TopicIndex, check_pattern, check_topic, matches
from supervisor.errors import BusError

ADMIN = ("supctl", 0)
PRESENCE = "supctl.presence"
_NONE = b"\xc0"


class _Pending(msgspec.Struct, gc=False):
    requester: "_Conn"
    rid: int
    responder: "_Conn"


class _Retained(msgspec.Struct, gc=False):
    bot: str
    instance: int
    msg: f.Msg


class _Conn(asyncio.Protocol):
    """One client connection; everything it sends is handled inside data_received."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.transport: asyncio.Transport | None = None
        self.splitter = f.FrameSplitter(broker.max_frame)
        self.identity: tuple[str, int] | None = None
        self.out: list[bytes] = []
        self.paused = False
        self.closing = False
        self.msgs_in = self.msgs_out = self.dropped = self.streak = 0
        self.subs: dict[int, str] = {}
        self.serves: dict[str, int] = {}
        self.asked: dict[int, int] = {}
        self.answering: set[int] = set()
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
        try:
            buf, spans = self.splitter.feed(data)
            decode = self.broker.decoder.decode
            for start, end in spans:
                frame = decode(buf[start:end])
                if type(frame) is f.Pub:
                    self.broker.route(self, frame.items)
                elif self.identity is None:
                    self.broker.hello(self, frame)
                else:
                    self.broker.handle(self, frame)
                if self.closing:
                    return
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self.fail(f"malformed frame: {exc}")
        except BusError as exc:
            self.fail(str(exc))
        self.broker.flush()

    def send(self, frame: bytes, count: int = 0) -> None:
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


class Broker:
    """Unix-socket message broker; see docs/bus.md for the protocol and limits."""

    def __init__(
        self,
        path: pathlib.Path,
        *,
        max_queue: int = 8 << 20,
        max_drops: int = 100_000,
        max_frame: int = f.MAX_FRAME,
        max_clients: int = 1024,
        max_inflight: int = 1024,
        max_retained: int = 10_000,
        max_retained_bytes: int = 64 << 20,
        hello_timeout: float = 5.0,
    ) -> None:
        self.path = pathlib.Path(path)
        self.max_queue = max_queue
        self.max_drops = max_drops
        self.max_frame = max_frame
        self.max_clients = max_clients
        self.max_inflight = max_inflight
        self.max_retained = max_retained
        self.max_retained_bytes = max_retained_bytes
        self.hello_timeout = hello_timeout
        self.encoder = msgspec.msgpack.Encoder()
        self.decoder = msgspec.msgpack.Decoder(f.Frame)
        self.conns: set[_Conn] = set()
        self.dirty: list[_Conn] = []
        self._subs: TopicIndex[_Conn] = TopicIndex()
        self._serves: TopicIndex[_Conn] = TopicIndex()
        self._tokens: dict[str, tuple[str, int]] = {}
        self._token_of: dict[tuple[str, int], str] = {}
        self._online: dict[tuple[str, int], int] = {}
        self._stats: dict[tuple[str, int], f.BusStats] = {}
        self._retained: dict[str, _Retained] = {}
        self._retained_bytes = 0
        self._pending: dict[int, _Pending] = {}
        self._ids = itertools.count(1)
        self._rr = 0
        self._server: asyncio.AbstractServer | None = None
        self._flushing = False
        self._admin = secrets.token_urlsafe(32)
        self._tokens[self._admin] = ADMIN

    async def start(self) -> None:
        if len(os.fsencode(self.path)) > 100:
            raise BusError(f"bus socket path too long for a Unix socket: {self.path}")
        if self.path.exists() and stat.S_ISSOCK(self.path.stat().st_mode):
            self.path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(os.fspath(self.path))
        except OSError as exc:
            sock.close()
            raise BusError(f"cannot bind bus socket {self.path}: {exc}") from exc
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_unix_server(lambda: _Conn(self), sock=sock, backlog=256)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for conn in list(self.conns):
            if conn.transport is not None:
                conn.transport.abort()
            self.forget(conn)
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    def issue_token(self, bot: str, instance: int) -> str:
        if (bot, instance) == ADMIN or bot == ADMIN[0]:
            raise BusError(f"bot name {bot!r} is reserved for the master")
        self.revoke_token(bot, instance, disconnect=False)
        token = secrets.token_urlsafe(32)
        self.set_token(bot, instance, token)
        return token

    def set_token(self, bot: str, instance: int, token: str) -> None:
        """Install a known secret, e.g. one kept across a master restart."""
        old = self._token_of.pop((bot, instance), None)
        if old is not None:
            self._tokens.pop(old, None)
        self._tokens[token] = (bot, instance)
        self._token_of[(bot, instance)] = token
        self._stats.setdefault((bot, instance), f.BusStats())

    def revoke_token(self, bot: str, instance: int, disconnect: bool = True) -> None:
        token = self._token_of.pop((bot, instance), None)
        if token is not None:
            self._tokens.pop(token, None)
        if disconnect:
            for conn in [c for c in self.conns if c.identity == (bot, instance)]:
                conn.fail("bus token revoked")

    def admin_token(self) -> str:
        return self._admin

    def publish(self, topic: str, obj: object, retain: bool = False) -> None:
        check_topic(topic)
        self._route(ADMIN, [f.Msg(topic, Raw(self.encoder.encode(obj)), retain)])

    def stats(self) -> dict[tuple[str, int], f.BusStats]:
        out = {key: msgspec.structs.replace(s) for key, s in self._stats.items()}
        for conn in self.conns:
            if conn.identity is None or conn.identity == ADMIN:
                continue
            s = out.setdefault(conn.identity, f.BusStats())
            s.connected = True
            s.msgs_in += conn.msgs_in
            s.msgs_out += conn.msgs_out
            s.dropped += conn.dropped
        return out

    # -- inside the loop ------------------------------------------------------

    def hello(self, conn: _Conn, frame: object) -> None:
        if not isinstance(frame, f.Hello):
            raise BusError("the first frame must be a hello")
        if frame.version != f.PROTOCOL_VERSION:
            raise BusError(
                f"bus protocol version {frame.version} not supported; the broker speaks {f.PROTOCOL_VERSION}"
            )
        identity = self._tokens.get(frame.token)
        if identity is None:
            raise BusError("invalid bus token")
        if conn.hello_timer is not None:
            conn.hello_timer.cancel()
        conn.identity = identity
        conn.send(f.pack(self.encoder, f.Welcome(identity[0], identity[1], f.PROTOCOL_VERSION, self.max_frame)))
        self._online[identity] = self._online.get(identity, 0) + 1
        if identity != ADMIN and self._online[identity] == 1:
            self._presence(identity, True)
        self._schedule_flush()

    def route(self, conn: _Conn, items: list[f.Msg]) -> None:
        if conn.identity is None:
            raise BusError("the first frame must be a hello")
        conn.msgs_in += len(items)
        self._route(conn.identity, items)

    def _route(self, sender: tuple[str, int], items: list[f.Msg]) -> None:
        cached = self._subs.cached
        groups: dict[int, tuple[tuple[_Conn, ...], list[f.Msg]]] = {}
        last: tuple[_Conn, ...] | None = None
        batch: list[f.Msg] = []
        for msg in items:
            subs = cached(msg.topic)
            if subs is None:
                subs = self._resolve(sender, msg.topic)
            if msg.retain:
                self._retain(sender, msg)
            if not subs:
                continue
            if subs is not last:
                group = groups.get(id(subs))
                if group is None:
                    group = groups[id(subs)] = (subs, [])
                last, batch = subs, group[1]
            batch.append(msg)
        encoder = self.encoder
        for subs, msgs in groups.values():
            frame = f.pack(encoder, f.Deliver(sender[0], sender[1], msgs))
            for sub in subs:
                sub.send(frame, len(msgs))
        if groups:
            self._schedule_flush()

    def _resolve(self, sender: tuple[str, int], topic: str) -> tuple[_Conn, ...]:
        check_topic(topic)
        reserved = topic.startswith(RESERVED_PREFIX)
        if reserved and sender != ADMIN:
            raise BusError(f"topic {topic!r} is reserved for the master")
        return self._subs.match(topic, remember=not reserved)

    def _retain(self, sender: tuple[str, int], msg: f.Msg) -> None:
        old = self._retained.pop(msg.topic, None)
        if old is not None:
            self._retained_bytes -= len(old.msg.data)
        if len(msg.data) == 1 and bytes(msg.data) == _NONE:
            return
        kept = f.Msg(msg.topic, Raw(bytes(msg.data)), True)
        self._retained[msg.topic] = _Retained(sender[0], sender[1], kept)
        self._retained_bytes += len(kept.data)
        while len(self._retained) > self.max_retained or self._retained_bytes > self.max_retained_bytes:
            oldest = next(iter(self._retained))
            self._retained_bytes -= len(self._retained.pop(oldest).msg.data)

    def handle(self, conn: _Conn, frame: object) -> None:
        """Every frame but Pub and Hello; unknown ones close the connection."""
        enc = self.encoder
        if isinstance(frame, f.Request):
            self._request(conn, frame)
        elif isinstance(frame, f.Reply):
            self._reply(conn, frame)
        elif isinstance(frame, f.Sub):
            check_pattern(frame.pattern)
            if frame.sid in conn.subs:
                raise BusError(f"subscription id {frame.sid} already in use")
            conn.subs[frame.sid] = frame.pattern
            self._subs.add(frame.pattern, conn)
            self._replay(conn, frame.sid, frame.pattern)
            conn.send(f.pack(enc, f.SubAck(frame.sid)))
        elif isinstance(frame, f.Unsub):
            pattern = conn.subs.pop(frame.sid, None)
            if pattern is not None:
                self._subs.remove(pattern, conn)
        elif isinstance(frame, f.Serve):
            check_pattern(frame.pattern)
            conn.serves[frame.pattern] = conn.serves.get(frame.pattern, 0) + 1
            self._serves.add(frame.pattern, conn)
        elif isinstance(frame, f.Unserve):
            if conn.serves.get(frame.pattern, 0) > 0:
                conn.serves[frame.pattern] -= 1
                self._serves.remove(frame.pattern, conn)
        elif isinstance(frame, f.Cancel):
            bid = conn.asked.pop(frame.rid, None)
            if bid is not None:
                self._pending.pop(bid, None)
        elif isinstance(frame, f.Ping):
            conn.send(f.pack(enc, f.Pong(frame.n)))
        elif isinstance(frame, f.PeersQuery):
            peers = sorted(k for k, n in self._online.items() if n and k != ADMIN)
            conn.send(f.pack(enc, f.Peers(frame.n, peers)))
        else:
            raise BusError(f"unexpected frame {type(frame).__name__}")
        self._schedule_flush()

    def _replay(self, conn: _Conn, sid: int, pattern: str) -> None:
        """Retained values for a new subscription, each tagged with its sid."""
        for topic, kept in self._retained.items():
            if matches(pattern, topic):
                deliver = f.Deliver(kept.bot, kept.instance, [kept.msg], sid)
                conn.send(f.pack(self.encoder, deliver), 1)

    def _request(self, conn: _Conn, frame: f.Request) -> None:
        assert conn.identity is not None
        check_topic(frame.topic)
        enc = self.encoder
        responders = self._serves.match(frame.topic)
        if not responders:
            conn.send(f.pack(enc, f.Reply(frame.rid, error=f"no responder for {frame.topic!r}")))
            return
        if len(conn.asked) >= self.max_inflight or frame.rid in conn.asked:
            conn.send(f.pack(enc, f.Reply(frame.rid, error="too many requests in flight")))
            return
        self._rr += 1
        responder = responders[self._rr % len(responders)]
        bid = next(self._ids)
        self._pending[bid] = _Pending(conn, frame.rid, responder)
        conn.asked[frame.rid] = bid
        responder.answering.add(bid)
        conn.msgs_in += 1
        bot, instance = conn.identity
        responder.send(f.pack(enc, f.Request(bid, frame.topic, frame.data, bot, instance)), 1)

    def _reply(self, conn: _Conn, frame: f.Reply) -> None:
        if frame.rid not in conn.answering:
            return
        conn.answering.discard(frame.rid)
        pending = self._pending.pop(frame.rid, None)
        if pending is None:
            return
        pending.requester.asked.pop(pending.rid, None)
        assert conn.identity is not None
        conn.msgs_in += 1
        reply = f.Reply(pending.rid, frame.data, frame.error, conn.identity[0], conn.identity[1])
        pending.requester.send(f.pack(self.encoder, reply), 1)

    def forget(self, conn: _Conn) -> None:
        """Undo everything a closed connection registered; idempotent."""
        if conn not in self.conns:
            return
        self.conns.discard(conn)
        for pattern in conn.subs.values():
            self._subs.remove(pattern, conn)
        for pattern, count in conn.serves.items():
            for _ in range(count):
                self._serves.remove(pattern, conn)
        conn.subs.clear()
        conn.serves.clear()
        for bid in conn.asked.values():
            self._pending.pop(bid, None)
        for bid in conn.answering:
            pending = self._pending.pop(bid, None)
            if pending is not None:
                pending.requester.asked.pop(pending.rid, None)
                reply = f.Reply(pending.rid, error="responder disconnected")
                pending.requester.send(f.pack(self.encoder, reply))
        if conn.identity is None:
            return
        identity = conn.identity
        if identity != ADMIN:
            s = self._stats.setdefault(identity, f.BusStats())
            s.msgs_in += conn.msgs_in
            s.msgs_out += conn.msgs_out
            s.dropped += conn.dropped
        self._online[identity] -= 1
        if not self._online[identity]:
            del self._online[identity]
            if identity != ADMIN and self._server is not None:
                self._presence(identity, False)
        self._schedule_flush()

    def _presence(self, identity: tuple[str, int], online: bool) -> None:
        """Retained while online, so a new presence subscriber sees every peer at once."""
        topic = f"{PRESENCE}.{identity[0]}.{identity[1]}"
        self.publish(topic, f.Presence(identity[0], identity[1], online), retain=online)
        if not online:
            kept = self._retained.pop(topic, None)
            if kept is not None:
                self._retained_bytes -= len(kept.msg.data)

    def _schedule_flush(self) -> None:
        if not self._flushing and self.dirty:
            self._flushing = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Write what each client has queued: one write per client per round."""
        self._flushing = False
        dirty, self.dirty = self.dirty, []
        for conn in dirty:
            out, conn.out = conn.out, []
            if conn.closing or conn.transport is None:
                continue
            conn.transport.write(out[0] if len(out) == 1 else b"".join(out))
