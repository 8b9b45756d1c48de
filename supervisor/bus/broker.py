"""The bus broker the master hosts: authenticates clients by token and routes bytes.

Payloads are never decoded here. A Pub frame's messages are grouped by the set of
subscribers they match, encoded once per group as a Deliver frame, and the same
bytes are written to every subscriber; writes are batched per loop iteration.
A subscriber whose socket buffer passes `max_queue` bytes gets its messages
dropped (and counted) until it drains, and is cut off past `max_drops`.
Each bot instance is bounded (connections, patterns, retained values) and may be
restricted to allow lists; what goes past them is refused, told and counted.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pathlib
import re
import stat
import time
from typing import Callable

import msgspec
from msgspec import Raw

from supervisor.bus import frames as f
from supervisor.bus.access import Access
from supervisor.bus.conn import Connection
from supervisor.bus.frames import ADMIN
from supervisor.bus.hook import Outside, Port, Tap
from supervisor.bus.limits import Limits
from supervisor.bus.retained import RetainedStore
from supervisor.bus.rpc import Requests
from supervisor.bus.tokens import Tokens, new_token
from supervisor.bus.topics import RESERVED_PREFIX, TopicIndex, check_pattern, check_topic
from supervisor.core.errors import BusError
from supervisor.core.sockets import bind_private

PRESENCE = "supctl.presence"
_UNSAFE = re.compile(r"[.*>\s]")
ANY_INSTANCE = -1
"""The instance of a `last_publish_time` key that stands for every instance of the bot."""


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
        max_strangers: int = 64,
        max_inflight: int = 1024,
        max_retained: int = 10_000,
        max_retained_bytes: int = 64 << 20,
        max_buffered: int = 64 << 20,
        bot_connections: int = 16,
        bot_patterns: int = 10_000,
        bot_retained: int = 1_000,
        bot_retained_bytes: int = 8 << 20,
        hello_timeout: float = 2.0,
        log: logging.Logger | None = None,
    ) -> None:
        self.path = pathlib.Path(path)
        self.max_queue = max_queue
        self.max_drops = max_drops
        self.max_frame = max_frame
        self.max_clients = max_clients
        self.hello_timeout = hello_timeout
        self.budget = f.Budget(max_buffered)
        """Partial frames all connections may hold together."""
        self.encoder = msgspec.msgpack.Encoder()
        self.decoder = msgspec.msgpack.Decoder(f.Frame)
        self.conns: set[Connection] = set()
        self.dirty: list[Connection] = []
        self._subs: TopicIndex[Connection] = TopicIndex()
        self.requests = Requests(self.encoder, max_inflight)
        self.retained = RetainedStore(max_retained, max_retained_bytes, bot_retained, bot_retained_bytes)
        self.tokens = Tokens()
        self._online: dict[tuple[str, int], int] = {}
        self._stats: dict[tuple[str, int], f.BusStats] = {}
        self.limits = Limits(self.encoder, self._stats, max_strangers, bot_connections, bot_patterns, log)
        self._server: asyncio.AbstractServer | None = None
        self._flushing = False
        self.reading = False
        """Inside a Connection's data_received, which flushes when it ends."""
        self._watched: set[tuple[str, int, str]] = set()
        self._last_publish: dict[tuple[str, int, str], float] = {}

    async def start(self) -> None:
        if len(os.fsencode(self.path)) > 100:
            raise BusError(f"bus socket path too long for a Unix socket: {self.path}")
        if self.path.exists() and stat.S_ISSOCK(self.path.stat().st_mode):
            self.path.unlink()
        try:
            sock = bind_private(os.fspath(self.path))
        except OSError as exc:
            raise BusError(f"cannot bind bus socket {self.path}: {exc}") from exc
        loop = asyncio.get_running_loop()
        self._server = await loop.create_unix_server(lambda: Connection(self), sock=sock, backlog=256)

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
        self.set_token(bot, instance, token := new_token())
        return token

    def set_token(self, bot: str, instance: int, token: str) -> None:
        """Install a known secret, e.g. one kept across a master restart."""
        self.tokens.set((bot, instance), token)
        self._stats.setdefault((bot, instance), f.BusStats())

    def revoke_token(self, bot: str, instance: int, disconnect: bool = True) -> None:
        self.tokens.revoke((bot, instance))
        if disconnect:
            for conn in [c for c in self.conns if c.identity == (bot, instance)]:
                conn.fail("bus token revoked")

    def admin_token(self) -> str:
        """The master's own secret (supctl:0): it never leaves the process."""
        return self.tokens.admin

    def operator_token(self) -> str:
        """For one `supctl bus ...` connection: supctl:N, the operator, not the master itself; revoked on close."""
        return self.tokens.operator()

    def permit(self, bot: str, publish: list[str] | None = None, subscribe: list[str] | None = None,
               serve: list[str] | None = None) -> None:
        """Allow lists for every instance of `bot` (None: open), applied to its live connections too."""
        self.limits.permit(bot, None if publish is subscribe is serve is None else Access(publish, subscribe, serve), self.conns)

    def publish(self, topic: str, obj: object, retain: bool = False) -> None:
        check_topic(topic)
        self._route(ADMIN, [f.Msg(topic, Raw(self.encoder.encode(obj)), retain)])

    def last_publish_time(self, bot: str, topic: str, instance: int | None = None) -> float | None:
        """time.monotonic() of the last publish on `topic` by instance `instance` of `bot` (None: by any of its
        instances) since someone first asked (the bus_heartbeat check asks for its own instance, so one live instance
        cannot hide a hung one).

        Only asked-for keys are tracked, so routing pays one empty-set test per message otherwise."""
        key = (bot, ANY_INSTANCE if instance is None else instance, topic)
        self._watched.add(key)
        return self._last_publish.get(key)

    # -- the NATS bridge's hooks (supervisor/bus/hook.py) ------------------------

    def tap(self, pattern: str, sink: Callable[[bytes | bytearray], None]) -> Tap:
        """Route what matches `pattern` to `sink` as framed Deliver bytes, as if a client subscribed."""
        check_pattern(pattern)
        tap = Tap(sink)
        self._subs.add(pattern, tap)  # type: ignore[arg-type]
        return tap

    def untap(self, pattern: str, tap: Tap) -> None:
        self._subs.remove(pattern, tap)  # type: ignore[arg-type]

    def attach(self, outside: Outside | None) -> None:
        """Requests nobody here serves may go to `outside`, which hears of every pattern served here."""
        self.requests.outside = outside

    def inject(self, sender: tuple[str, int], host: str, items: list[f.Msg]) -> None:
        """Deliver messages a bot on `host` published (through NATS) as if it were here; retained ones are kept."""
        self._route(sender, items, host)

    def ask_outside(self, port: Port, frame: f.Request, sender: tuple[str, int], host: str) -> None:
        """A request from a bot on `host` to the responders here; the reply goes to `port`.

        Written at once rather than at the end of the loop iteration: a request is one frame, and
        this is called from the NATS client's callback, never inside a broker read."""
        self.requests.ask(port, frame, sender, host)  # type: ignore[arg-type]
        self.flush()

    def answer_outside(self, bid: int, reply: f.Reply) -> None:
        self.requests.answer_outside(bid, reply)
        self.flush()

    def stats(self) -> dict[tuple[str, int], f.BusStats]:
        out = {key: msgspec.structs.replace(s) for key, s in self._stats.items()}
        for conn in self.conns:
            if conn.identity is None or conn.identity[0] == ADMIN[0]:
                continue
            s = out.setdefault(conn.identity, f.BusStats())
            s.connected = True
            s.msgs_in += conn.msgs_in
            s.msgs_out += conn.msgs_out
            s.dropped += conn.dropped
        return out

    def totals(self) -> f.BusTotals:
        """What `stats` sums to, with no BusStats copied per instance (each /metrics scrape asks)."""
        live = [c for c in self.conns if c.identity is not None and c.identity[0] != ADMIN[0]]
        n = [*self._stats.values(), *live]
        return f.BusTotals(len({c.identity for c in live}), sum(c.msgs_in for c in n), sum(c.msgs_out for c in n), sum(c.dropped for c in n))

    # -- inside the loop ------------------------------------------------------

    def hello(self, conn: Connection, frame: object) -> None:
        if not isinstance(frame, f.Hello):
            raise BusError("the first frame must be a hello")
        if frame.version != f.PROTOCOL_VERSION:
            raise BusError(
                f"bus protocol version {frame.version} not supported; the broker speaks {f.PROTOCOL_VERSION}"
            )
        identity = self.tokens.identity(frame.token)
        if identity is None:
            raise BusError("invalid bus token")
        if conn.hello_timer is not None:
            conn.hello_timer.cancel()
        self.limits.strangers.pop(conn, None)
        if identity[0] != ADMIN[0] and len(self.conns) - len(self.limits.strangers) > self.max_clients:
            raise BusError(f"too many bus clients (at most {self.max_clients})")
        if not self.limits.admit(conn, identity, self._online.get(identity, 0)):
            return
        conn.splitter.max_frame = self.max_frame
        conn.send(f.pack(self.encoder, f.Welcome(identity[0], identity[1], f.PROTOCOL_VERSION, self.max_frame)))
        self._online[identity] = self._online.get(identity, 0) + 1
        if identity[0] != ADMIN[0] and self._online[identity] == 1:
            self._presence(identity, True)
        self._schedule_flush()

    def route(self, conn: Connection, items: list[f.Msg]) -> None:
        if conn.identity is None:
            raise BusError("the first frame must be a hello")
        conn.msgs_in += len(items)
        conn.work += len(items)
        if conn.access is not None and conn.access.publish is not None:
            items = self.limits.publishable(conn, items)
        self._route(conn.identity, items, conn=conn)

    def _route(self, sender: tuple[str, int], items: list[f.Msg], host: str = "", conn: Connection | None = None) -> None:
        cached = self._subs.cached
        groups: dict[int, tuple[tuple[Connection, ...], list[f.Msg]]] = {}
        last: tuple[Connection, ...] | None = None
        batch: list[f.Msg] = []
        watched = self._watched
        for msg in items:
            if watched:
                for key in ((sender[0], sender[1], msg.topic), (sender[0], ANY_INSTANCE, msg.topic)):
                    if key in watched:
                        self._last_publish[key] = time.monotonic()
            subs = cached(msg.topic)
            if subs is None:
                subs = self._resolve(sender, msg.topic)
            if msg.retain:
                why = self.retained.put(sender, msg, host)
                if why is not None and conn is not None:
                    self.limits.refuse(conn, f"retained: {why}")
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
            frame = f.pack(encoder, f.Deliver(sender[0], sender[1], msgs, 0, host))
            for sub in subs:
                sub.send(frame, len(msgs))
        if groups:
            self._schedule_flush()

    def _resolve(self, sender: tuple[str, int], topic: str) -> tuple[Connection, ...]:
        check_topic(topic)
        reserved = topic.startswith(RESERVED_PREFIX)
        if reserved and sender[0] != ADMIN[0]:  # the master, or an operator (supctl:N) through control.sock
            raise BusError(f"topic {topic!r} is reserved for the master")
        return self._subs.match(topic, remember=not reserved)

    def handle(self, conn: Connection, frame: object) -> None:
        """Every frame but Pub and Hello; unknown ones close the connection."""
        enc = self.encoder
        if isinstance(frame, f.Request):
            if conn.access is not None and not conn.access.may_publish(frame.topic):
                conn.send(f.pack(enc, f.Reply(frame.rid, error=f"{conn.identity[0]} may not publish to {frame.topic!r}")))
            else:
                self.requests.ask(conn, frame)
        elif isinstance(frame, f.Reply):
            self.requests.answer(conn, frame)
        elif isinstance(frame, f.Sub):
            check_pattern(frame.pattern)
            if frame.sid in conn.subs:
                raise BusError(f"subscription id {frame.sid} already in use")
            why = self.limits.may(conn, frame.pattern, "subscribe")
            if why is None:
                conn.subs[frame.sid] = frame.pattern
                self._subs.add(frame.pattern, conn)
                self._replay(conn, frame.sid, frame.pattern)
            else:
                self.limits.refuse(conn, why, tell=False)
            conn.send(f.pack(enc, f.SubAck(frame.sid, why or "")))
        elif isinstance(frame, f.Unsub):
            pattern = conn.subs.pop(frame.sid, None)
            if pattern is not None:
                self._subs.remove(pattern, conn)
                self.limits.count(conn.identity, -1)
        elif isinstance(frame, f.Serve):
            check_pattern(frame.pattern)
            why = self.limits.may(conn, frame.pattern, "serve")
            if why is None:
                self.requests.serve(conn, frame.pattern)
            else:
                self.limits.refuse(conn, why)
        elif isinstance(frame, f.Unserve):
            if self.requests.unserve(conn, frame.pattern):
                self.limits.count(conn.identity, -1)
        elif isinstance(frame, f.Cancel):
            self.requests.cancel(conn, frame.rid)
        elif isinstance(frame, f.Ping):
            conn.send(f.pack(enc, f.Pong(frame.n)))
        elif isinstance(frame, f.PeersQuery):
            peers = sorted(k for k, n in self._online.items() if n and k[0] != ADMIN[0])
            outside = self.requests.outside
            conn.send(f.pack(enc, f.Peers(frame.n, peers, outside.peers() if outside is not None else [])))
        else:
            raise BusError(f"unexpected frame {type(frame).__name__}")
        self._schedule_flush()

    def _replay(self, conn: Connection, sid: int, pattern: str) -> None:
        """Retained values for a new subscription, tagged with its sid: one Deliver per run of one sender."""
        kept = self.retained.matching(pattern)
        conn.work += len(kept) + 1
        for run in self.retained.runs(kept, self.max_frame // 2):
            first = run[0]
            conn.send(f.pack(self.encoder, f.Deliver(first.bot, first.instance, [k.msg for k in run], sid, first.host)), len(run))

    def forget(self, conn: Connection) -> None:
        """Undo everything a closed connection registered; idempotent."""
        if conn not in self.conns:
            return
        self.conns.discard(conn)
        self.limits.strangers.pop(conn, None)
        for pattern in conn.subs.values():
            self._subs.remove(pattern, conn)
        patterns = len(conn.subs) + sum(conn.serves.values())
        conn.subs.clear()
        self.requests.drop(conn)
        if patterns and conn.identity is not None:
            self.limits.count(conn.identity, -patterns)
        if conn.identity is None:
            return
        identity = conn.identity
        if identity[0] == ADMIN[0] and identity != ADMIN:
            self.tokens.revoke(identity)
        elif identity != ADMIN:
            s = self._stats.setdefault(identity, f.BusStats())
            s.msgs_in += conn.msgs_in
            s.msgs_out += conn.msgs_out
            s.dropped += conn.dropped
        self._online[identity] -= 1
        if not self._online[identity]:
            del self._online[identity]
            if identity[0] != ADMIN[0] and self._server is not None:
                self._presence(identity, False)
        self._schedule_flush()

    def _presence(self, identity: tuple[str, int], online: bool) -> None:
        """Retained while online, so a new presence subscriber sees every peer at once."""
        token = _UNSAFE.sub("_", identity[0]) or "_"
        topic = f"{PRESENCE}.{token}.{identity[1]}"
        self.publish(topic, f.Presence(identity[0], identity[1], online), retain=online)
        if not online:
            self.retained.clear(topic)

    def _schedule_flush(self) -> None:
        if not self._flushing and not self.reading and self.dirty:
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
            if len(out) == 1:
                conn.transport.write(out[0])
            else:
                conn.transport.writelines(out)
