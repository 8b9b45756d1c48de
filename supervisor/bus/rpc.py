"""Request/reply routing in the broker: who asked what, and who may answer it.

Each routed request gets a broker-wide id; only the connection it was routed to
can answer that id, and the reply is stamped with that connection's identity.
In-flight requests are capped per requester and forgotten on cancel or disconnect.
"""

from __future__ import annotations

import itertools

import msgspec

from supervisor.bus import frames as f
from supervisor.bus.conn import Connection
from supervisor.bus.topics import TopicIndex, check_pattern, check_topic


class _Pending(msgspec.Struct, gc=False):
    requester: Connection
    rid: int
    responder: Connection


class Requests:
    def __init__(self, encoder: msgspec.msgpack.Encoder, max_inflight: int) -> None:
        self.encoder = encoder
        self.max_inflight = max_inflight
        self.pending: dict[int, _Pending] = {}
        self._serves: TopicIndex[Connection] = TopicIndex()
        self._ids = itertools.count(1)
        self._rr = 0

    def serve(self, conn: Connection, pattern: str) -> None:
        check_pattern(pattern)
        conn.serves[pattern] = conn.serves.get(pattern, 0) + 1
        self._serves.add(pattern, conn)

    def unserve(self, conn: Connection, pattern: str) -> None:
        if conn.serves.get(pattern, 0) > 0:
            conn.serves[pattern] -= 1
            self._serves.remove(pattern, conn)

    def ask(self, conn: Connection, frame: f.Request) -> None:
        """Route to one responder (round robin), or answer at once with why not."""
        assert conn.identity is not None
        responders = self._serves.cached(frame.topic)
        if responders is None:
            check_topic(frame.topic)
            responders = self._serves.match(frame.topic)
        if not responders:
            self._refuse(conn, frame.rid, f"no responder for {frame.topic!r}")
            return
        if len(conn.asked) >= self.max_inflight or frame.rid in conn.asked:
            self._refuse(conn, frame.rid, "too many requests in flight")
            return
        self._rr += 1
        responder = responders[self._rr % len(responders)]
        bid = next(self._ids)
        self.pending[bid] = _Pending(conn, frame.rid, responder)
        conn.asked[frame.rid] = bid
        responder.answering.add(bid)
        conn.msgs_in += 1
        bot, instance = conn.identity
        responder.send(f.pack(self.encoder, f.Request(bid, frame.topic, frame.data, bot, instance)), 1)

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
            self.pending.pop(bid, None)

    def drop(self, conn: Connection) -> None:
        """A connection closed: forget what it asked, fail what it was answering."""
        for pattern, count in conn.serves.items():
            for _ in range(count):
                self._serves.remove(pattern, conn)
        conn.serves.clear()
        for bid in conn.asked.values():
            self.pending.pop(bid, None)
        conn.asked.clear()
        for bid in conn.answering:
            pending = self.pending.pop(bid, None)
            if pending is not None:
                pending.requester.asked.pop(pending.rid, None)
                self._refuse(pending.requester, pending.rid, "responder disconnected")
        conn.answering.clear()

    def _refuse(self, conn: Connection, rid: int, why: str) -> None:
        conn.send(f.pack(self.encoder, f.Reply(rid, error=why)))
