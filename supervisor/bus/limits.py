"""What one bot instance may hold on the bus, and the one way the broker says no.

A refusal is counted in the instance's `BusStats.refused`, logged once per instance and kind
(so a hostile loop cannot flood the master log), and told to the client in an `Error` frame.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import msgspec

from supervisor.bus import frames as f
from supervisor.bus.access import Access
from supervisor.bus.conn import Connection
MAX_TOLD = 10_000


class Limits:
    def __init__(self, encoder: msgspec.msgpack.Encoder, stats: dict[tuple[str, int], f.BusStats],
                 strangers: int, connections: int, patterns: int, log: logging.Logger | None) -> None:
        self.encoder = encoder
        self.max_strangers = strangers
        self.strangers: dict[Connection, None] = {}
        """Connections without a hello yet, oldest first: bounded apart from the bots' own."""
        self.stats = stats
        self.connections = connections
        self.patterns = patterns
        self.log = log
        self._patterns: dict[tuple[str, int], int] = {}
        self._access: dict[str, Access] = {}
        self._told: set[tuple[tuple[str, int], str]] = set()

    def permit(self, bot: str, access: Access | None, conns: Iterable[Connection]) -> None:
        if access is None:
            self._access.pop(bot, None)
        else:
            self._access[bot] = access
        for conn in conns:
            if conn.identity is not None and conn.identity[0] == bot:
                conn.access = access

    def admit(self, conn: Connection, identity: tuple[str, int], online: int) -> bool:
        """Let a greeted connection in as `identity` (it has `online` already), with its allow lists, or refuse it."""
        if identity[0] != f.ADMIN[0] and online >= self.connections:
            why = f"connections: {identity[0]}:{identity[1]} has {self.connections} bus connections already"
            self.refuse(conn, why, fatal=True, identity=identity)
            return False
        conn.identity = identity
        conn.access = self._access.get(identity[0])
        if self.log is not None:
            self.log.debug("bus: %s:%s connected (%d connections now)", identity[0], identity[1], online + 1)
        return True

    def arrived(self, conn: Connection) -> None:
        """A new connection waits for its hello among at most `max_strangers`; past that the oldest goes."""
        if len(self.strangers) >= self.max_strangers:
            next(iter(self.strangers)).fail("too many connections without a hello; this one was the oldest")
        self.strangers[conn] = None

    def closed(self, conn: Connection, why: str) -> None:
        """One log line per connection the broker closes, so an attack leaves a trace."""
        if self.log is not None:
            who = "a connection without a hello" if conn.identity is None else "%s:%s" % conn.identity
            self.log.info("bus: closed %s: %s", who, why)

    def refuse(self, conn: Connection, why: str, fatal: bool = False, identity: tuple[str, int] | None = None,
               tell: bool = True) -> None:
        """`why` starts with its kind ("publish: ..."); a fatal refusal closes the connection. `tell=False`: the
        caller answers itself (a refused Sub gets its SubAck with the reason)."""
        identity = identity or conn.identity or ("?", 0)
        stats = self.stats.get(identity)
        if stats is not None:
            stats.refused += 1
        kind = why.split(":")[0]
        if self.log is not None and (identity, kind) not in self._told:
            if len(self._told) < MAX_TOLD:
                self._told.add((identity, kind))
            self.log.warning("bus: refused %s:%s: %s (later refusals are only counted)", identity[0], identity[1], why)
        if fatal:
            conn.fail(why)
        elif tell:
            conn.send(f.pack(self.encoder, f.Error(why)))

    def publishable(self, conn: Connection, items: list[f.Msg]) -> list[f.Msg]:
        """The messages `conn`'s publish allow list lets through; the first one it stops is named in the refusal."""
        access = conn.access
        assert access is not None and conn.identity is not None
        allowed = [m for m in items if access.may_publish(m.topic)]
        if len(allowed) < len(items):
            denied = next(m.topic for m in items if not access.may_publish(m.topic))
            self.refuse(conn, f"publish: {conn.identity[0]} may not publish to {denied!r}")
        return allowed

    def may(self, conn: Connection, pattern: str, verb: str) -> str | None:
        """Why `conn` may not subscribe to or serve `pattern` (its allow list, its bound), or None: then it counts."""
        identity = conn.identity
        assert identity is not None
        access = conn.access
        if access is not None and not (access.may_subscribe(pattern) if verb == "subscribe" else access.may_serve(pattern)):
            return f"{verb}: {identity[0]} may not {verb} {pattern!r}"
        if identity != f.ADMIN and self._patterns.get(identity, 0) >= self.patterns:
            return f"{verb}: {identity[0]}:{identity[1]} has {self.patterns} subscriptions and serves already"
        self.count(identity, 1)
        return None

    def held(self, identity: tuple[str, int]) -> int:
        return self._patterns.get(identity, 0)

    def count(self, identity: tuple[str, int], n: int) -> None:
        """Patterns (subscriptions and serves) an instance holds over all its connections."""
        left = self._patterns.get(identity, 0) + n
        if left > 0:
            self._patterns[identity] = left
        else:
            self._patterns.pop(identity, None)
