"""Presence across hosts: each master publishes its roster on F.p.HOST whenever it changes.

A master that (re)connects says hello and every other master answers with its roster, so
`peers()` and `supctl.presence.>` on every host see every bot. Remote peers appear locally as
`supctl.presence.<bot>.<instance>.<host>` (retained while online) with `Presence.host` set.
A master that leaves cleanly sends an empty roster; when NATS is lost, remote peers go offline.
"""

from __future__ import annotations

import asyncio
from typing import Callable

import msgspec

from supervisor.bus import frames as f
from supervisor.bus.broker import ADMIN, PRESENCE, Broker
from supervisor.bridge.wire import Roster, token

Key = tuple[str, int]
"""(bot, instance)"""


class Rosters:
    def __init__(self, broker: Broker, host: str, publish: Callable[[Roster], None]) -> None:
        self.broker = broker
        self.host = host
        self._publish = publish
        self.local: set[Key] = set()
        self.remote: dict[str, set[Key]] = {}
        self._dirty = False
        self._enc = msgspec.msgpack.Encoder()
        self._deliver = msgspec.msgpack.Decoder(f.Deliver).decode
        self._presence = msgspec.msgpack.Decoder(f.Presence).decode
        for kept in broker.retained.matching(f"{PRESENCE}.*.*"):
            p = self._presence(kept.msg.data)
            self.local.add((p.bot, p.instance))
        self._tap = broker.tap(f"{PRESENCE}.*.*", self._on_local)

    def close(self) -> None:
        self.broker.untap(f"{PRESENCE}.*.*", self._tap)

    def _on_local(self, frame: bytes | bytearray) -> None:
        deliver = self._deliver(memoryview(frame)[4:])
        for item in deliver.items:
            p = self._presence(item.data)
            if p.online:
                self.local.add((p.bot, p.instance))
            else:
                self.local.discard((p.bot, p.instance))
        if not self._dirty:
            self._dirty = True
            asyncio.get_running_loop().call_soon(self._announce)

    def _announce(self) -> None:
        self._dirty = False
        self._publish(self.roster())

    def roster(self, hello: bool = False) -> Roster:
        return Roster(self.host, sorted(self.local), hello)

    def heard(self, roster: Roster) -> bool:
        """Apply another master's roster; True when it asked for ours."""
        if roster.host == self.host:
            return False
        new = {(bot, int(i)) for bot, i in roster.peers}
        old = self.remote.get(roster.host, set())
        for peer in sorted(old - new):
            self._change(roster.host, peer, False)
        for peer in sorted(new - old):
            self._change(roster.host, peer, True)
        if new:
            self.remote[roster.host] = new
        else:
            self.remote.pop(roster.host, None)
        return roster.hello

    def lost(self) -> None:
        """NATS is gone: nobody on another host is known to be there any more."""
        for host in list(self.remote):
            self.heard(Roster(host, []))

    def peers(self) -> list[tuple[str, int, str]]:
        return sorted((bot, i, host) for host, peers in self.remote.items() for bot, i in peers)

    def _change(self, host: str, peer: Key, online: bool) -> None:
        topic = f"{PRESENCE}.{token(peer[0])}.{peer[1]}.{token(host)}"
        data = msgspec.Raw(self._enc.encode(f.Presence(peer[0], peer[1], online, host)))
        self.broker.inject(ADMIN, host, [f.Msg(topic, data, online)])
        if not online:
            self.broker.retained.clear(topic)
