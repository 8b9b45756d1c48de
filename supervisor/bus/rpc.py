"""Request/reply routing in the broker: who asked what, and who may answer it.

Each routed request gets a broker-wide id; only the connection it was routed to
can answer that id, and the reply is stamped with that connection's identity.
In-flight requests are capped per requester and forgotten on cancel or disconnect.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import msgspec

from supervisor.bus import frames as f
from supervisor.bus.conn import Connection

if TYPE_CHECKING:
    from supervisor.bus.hook import Outside
from supervisor.bus.topics import TopicIndex, check_pattern, check_topic


class _Pending(msgspec.Struct, gc=False):
    requester: Connection
    rid: int
    responder: Connection | None
    """None for a request sent out through the bridge."""


class Requests:
    def __init__(self, encoder: msgspec.msgpack.Encoder, max_inflight: int) -> None:
        self.encoder = encoder
        self.max_inflight = max_inflight
        self.pending: dict[int, _Pending] = {}
        self._serves: TopicIndex[Connection] = TopicIndex()
        self._ids = itertools.count(1)
        self._rr = 0
        self.outside: Outside | None = None

    def serve(self, conn: Connection, pattern: str) -> None:
        check_pattern(pattern)
        conn.serves[pattern] = conn.serves.get(pattern, 0) + 1
        self._serves.add(pattern, conn)
        if self.outside is not None:
            self.outside.served(pattern, 1)

    def unserve(self, conn: Connection, pattern: str) -> bool:
        """True when `conn` did serve `pattern` (once less now)."""
        if conn.serves.get(pattern, 0) > 0:
            conn.serves[pattern] -= 1
            self._serves.remove(pattern, conn)
            if self.outside is not None:
                self.outside.served(pattern, -1)
            return True
        return False

    def ask(self, conn: Connection, frame: f.Request, sender: tuple[str, int] | None = None, host: str = "") -> None:
        """Route to one responder (round robin), out through the bridge, or answer at once with why not.

        `sender` and `host` stamp a request that came in from NATS; such a request never goes out again."""
        assert conn.identity is not None
        responders = self._serves.cached(frame.topic)
        if responders is None:
            check_topic(frame.topic)
            responders = self._serves.match(frame.topic)
        if len(conn.asked) >= self.max_inflight or frame.rid in conn.asked:
            self._refuse(conn, frame.rid, "too many requests in flight")
            return
        if not responders:
            if not host and self.outside is not None and self.outside.wants(frame.topic):
                bid = next(self._ids)
                self.pending[bid] = _Pending(conn, frame.rid, None)
                conn.asked[frame.rid] = bid
                conn.msgs_in += 1
                self.outside.ask(bid, frame, conn.identity)
                return
            self._refuse(conn, frame.rid, f"no responder for {frame.topic!r}")
            return
        self._rr += 1
        responder = responders[self._rr % len(responders)]
        bid = next(self._ids)
        self.pending[bid] = _Pending(conn, frame.rid, responder)
        conn.asked[frame.rid] = bid
        responder.answering.add(bid)
        conn.msgs_in += 1
        bot, instance = sender or conn.identity
        responder.send(f.pack(self.encoder, f.Request(bid, frame.topic, frame.data, bot, instance, host)), 1)

    def answer_outside(self, bid: int, reply: f.Reply) -> None:
        """The bridge's answer to a request it sent out; dropped if the requester gave up meanwhile."""
        pending = self.pending.pop(bid, None)
        if pending is None or pending.responder is not None:
            return
        pending.requester.asked.pop(pending.rid, None)
        reply.rid = pending.rid
        pending.requester.send(f.pack(self.encoder, reply), 1)

    def answer(self, conn: Connection, frame: f.Reply) -> None:
        """A reply counts only from the connection the request went to."""
        if frame.rid not in conn.answering:
            return
        conn.answering.discard(frame.rid)
        pending = self.pending.pop(frame.rid, None)
        if pending is None:
            return
        pending.requester.asked.pop(pending.rid, None)
        assert conn.identity is not None
        conn.msgs_in += 1
        reply = f.Reply(pending.rid, frame.data, frame.error, conn.identity[0], conn.identity[1])
        pending.requester.send(f.pack(self.encoder, reply), 1)

    def cancel(self, conn: Connection, rid: int) -> None:
        bid = conn.asked.pop(rid, None)
        if bid is not None:
            self._forget(bid)

    def _forget(self, bid: int) -> None:
        pending = self.pending.pop(bid, None)
        if pending is not None and pending.responder is None and self.outside is not None:
            self.outside.cancel(bid)

    def drop(self, conn: Connection) -> None:
        """A connection closed: forget what it asked, fail what it was answering."""
        for pattern, count in conn.serves.items():
            for _ in range(count):
                self._serves.remove(pattern, conn)
            if count and self.outside is not None:
                self.outside.served(pattern, -count)
        conn.serves.clear()
        for bid in conn.asked.values():
            self._forget(bid)
        conn.asked.clear()
        for bid in conn.answering:
            pending = self.pending.pop(bid, None)
            if pending is not None:
                pending.requester.asked.pop(pending.rid, None)
                self._refuse(pending.requester, pending.rid, "responder disconnected")
        conn.answering.clear()

    def _refuse(self, conn: Connection, rid: int, why: str) -> None:
        conn.send(f.pack(self.encoder, f.Reply(rid, error=why)))
