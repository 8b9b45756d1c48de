"""What the master answers on the bus itself: checkpoints and restores (docs/bus.md, "Checkpoints"), the fleet's
degradation level, the kill switch (docs/bus.md, "The kill switch").

Checkpoint answers go only to the asking instance, as the broker stamped it: a bot of this procfile on this host (a request from
another host through NATS, an operator or a stranger gets an error). Disk work runs in a thread, one at a time per
instance, so a slow disk never holds the loop and two checkpoints of one instance never race.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import msgspec

from ..bus import frames as f
from ..bus.hook import Desk
from ..bus.state import (
    CHECKPOINT,
    DEGRADATION,
    KILL_SWITCH_SET,
    RESTORE,
    FleetDegradation,
    KillSwitchSet,
    KillSwitchView,
    Restored,
    Saved,
)
from ..core.errors import BusError
from ..engine.checkpoints import CheckpointStore
from .protocol import Error, KillSwitchReply

KillSwitchSetter = Callable[[bool, str, str], KillSwitchReply | Error]
"""Handlers.change_kill_switch: (activate, reason, by)."""


class MasterDesk:
    def __init__(self, store: CheckpointStore, is_bot: Callable[[str], bool],
                 degradation: Callable[[], FleetDegradation | None], kill_switch: KillSwitchSetter,
                 names_topics: Callable[[str], bool]) -> None:
        """`names_topics(bot)`: the bot's bus.publish is a list (the broker already checked that it allows the
        topic), not left open; releasing the kill switch needs that."""
        self.store = store
        self._degradation = degradation
        self._is_bot = is_bot
        self._kill_switch, self._names_topics = kill_switch, names_topics
        self._enc = msgspec.msgpack.Encoder()
        self._locks: dict[tuple[str, int], asyncio.Lock] = {}

    def attach(self, serve: Callable[[Desk, str], None], flush: Callable[[], None],
               reply: Callable[[Desk, f.Reply], None]) -> Desk:
        desk = Desk(flush, reply, self.answer)
        for topic in (CHECKPOINT, RESTORE, DEGRADATION, KILL_SWITCH_SET):
            serve(desk, topic)
        return desk

    def _level(self, req: f.Request) -> FleetDegradation:
        """The fleet's level (with its groups'), or the one group's the request names."""
        level = self._degradation()
        if level is None:
            raise BusError(f"{DEGRADATION}: this procfile has no [fleet.degradation]")
        try:
            group = msgspec.msgpack.decode(req.data, type=str | None)
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            raise BusError(f"{DEGRADATION}: expected a group name or nothing: {e}") from None
        if group is None:
            return level
        for g in level.groups:
            if g.group == group:
                return g
        known = ", ".join(g.group for g in level.groups) or "none"
        raise BusError(f"{DEGRADATION}: no group {group!r} in [fleet.degradation.groups] (groups: {known})")

    async def answer(self, req: f.Request) -> bytes:
        if req.topic == DEGRADATION:
            return self._enc.encode(self._level(req))
        who = f"{req.bot}:{req.instance}"
        if req.host or not self._is_bot(req.bot):
            what = "sets the kill switch" if req.topic == KILL_SWITCH_SET else "keeps checkpoints here"
            raise BusError(f"{req.topic}: only a bot of this master {what}, not {who}" + (f" on {req.host}" if req.host else ""))
        if req.topic == KILL_SWITCH_SET:
            return self._enc.encode(self._set_kill_switch(req, who))
        key = (req.bot, req.instance)
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                if req.topic == CHECKPOINT:
                    seq = await asyncio.to_thread(self.store.save, req.bot, req.instance, bytes(req.data))
                    return self._enc.encode(Saved(seq=seq))
                env, skipped = await asyncio.to_thread(self.store.load, req.bot, req.instance)
        except OSError as e:
            raise BusError(f"{req.topic} for {who}: {e.strerror or e}") from None
        if env is None:
            return self._enc.encode(Restored(skipped=skipped))
        return self._enc.encode(Restored(found=True, seq=env.seq, time=env.time, data=msgspec.Raw(env.data), skipped=skipped))

    def _set_kill_switch(self, req: f.Request, who: str) -> KillSwitchView:
        try:
            ask = msgspec.msgpack.decode(req.data, type=KillSwitchSet)
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            raise BusError(f'{KILL_SWITCH_SET}: expected {{"activate": true|false, "reason": "..."}}: {e}') from None
        if not ask.activate and not self._names_topics(req.bot):
            raise BusError(f"{KILL_SWITCH_SET}: {req.bot} may activate the kill switch, not release it: releasing needs "
                           "a bus.publish list that allows it (a bot with open permissions may only activate it)")
        reply = self._kill_switch(ask.activate, ask.reason, f"bus:{who}")
        if isinstance(reply, Error):
            raise BusError(f"{KILL_SWITCH_SET}: {reply.message}")
        s = reply.state
        return KillSwitchView(active=s.active, reason=s.reason, by=s.by, since=s.since, stopping=reply.stopped)
