"""Request/reply across hosts, the broker's `Outside` (supervisor/bus/hook.py).

Out: a request nobody serves here, on an export pattern, becomes a NATS request on F.r.TOPIC;
NATS's no-responders answer becomes the local bus's "no responder" error, and the requester's
own timeout (its Cancel) ends the NATS request. In: every pattern served here that an import
pattern covers is subscribed on F.r.PATTERN in queue group "supctl", so one master answers.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import TYPE_CHECKING

import msgspec

from supervisor.bridge.wire import QUEUE, Answer, Ask, covers
from supervisor.bus import frames as f
from supervisor.bus.eager import start_eagerly
from supervisor.bus.hook import Port

if TYPE_CHECKING:
    from nats.aio.client import Client as Nats
    from nats.aio.msg import Msg as NatsMsg
    from nats.aio.subscription import Subscription as NatsSub

    from supervisor.bridge.nats import NatsBridge

log = logging.getLogger("supctl.bridge")


class RemoteRequests:
    def __init__(self, bridge: NatsBridge, timeout: float) -> None:
        self.bridge = bridge
        self.timeout = timeout
        self._served: dict[str, int] = {}
        """Patterns served on this master, with how many clients serve each (kept up by `served`)."""
        for conn in bridge.broker.conns:
            for pattern, n in conn.serves.items():
                if n:
                    self._served[pattern] = self._served.get(pattern, 0) + n
        self._subs: dict[str, NatsSub] = {}
        self._asks: dict[int, asyncio.Task[None]] = {}
        self._replying: dict[int, tuple[str, asyncio.TimerHandle]] = {}
        self._ids = itertools.count(1)
        self._port = Port(self._on_reply)
        self._enc = msgspec.msgpack.Encoder()
        self._ask = msgspec.msgpack.Decoder(Ask).decode
        self._answer = msgspec.msgpack.Decoder(Answer).decode
        self._nc: Nats | None = None
        self._sync: asyncio.Task[None] | None = None
        self._dirty = False

    # -- Outside: out through NATS ---------------------------------------------

    def wants(self, topic: str) -> bool:
        return self.bridge._exported(topic)

    def ask(self, bid: int, frame: f.Request, sender: tuple[str, int]) -> None:
        nc = self._nc
        if nc is None:
            self._reply(bid, f.Reply(0, error=f"no responder for {frame.topic!r} (NATS is not connected)"))
            return
        payload = self._enc.encode(Ask(self.bridge.host, sender[0], sender[1], frame.data))
        task = start_eagerly(self._request(nc, bid, frame.topic, payload))  # the request leaves in this iteration
        if task is not None:
            self._asks[bid] = task
            task.add_done_callback(lambda _: self._asks.pop(bid, None))

    async def _request(self, nc: Nats, bid: int, topic: str, payload: bytes) -> None:
        from nats.errors import NoRespondersError, TimeoutError as NatsTimeout

        try:
            msg = await nc.request(self.bridge.subjects.req + topic, payload, timeout=self.timeout)
            answer = self._answer(msg.data)
            reply = f.Reply(0, answer.data, answer.error, answer.bot, answer.instance)
        except NoRespondersError:
            reply = f.Reply(0, error=f"no responder for {topic!r}")
        except NatsTimeout:
            reply = f.Reply(0, error=f"no reply from the fleet within {self.timeout}s")
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            reply = f.Reply(0, error=f"bad reply from the fleet: {exc}")
        except Exception as exc:  # noqa: BLE001 - connection closed and the like: the requester hears why
            reply = f.Reply(0, error=f"fleet unreachable: {exc or type(exc).__name__}")
        self._reply(bid, reply)

    def _reply(self, bid: int, reply: f.Reply) -> None:
        self.bridge.broker.answer_outside(bid, reply)

    def cancel(self, bid: int) -> None:
        task = self._asks.pop(bid, None)
        if task is not None:
            task.cancel()

    def peers(self) -> list[tuple[str, int, str]]:
        return self.bridge.rosters.peers()

    # -- in from NATS -----------------------------------------------------------

    def served(self, pattern: str, delta: int) -> None:
        n = self._served.get(pattern, 0) + delta
        if n > 0:
            self._served[pattern] = n
        else:
            self._served.pop(pattern, None)
        self._resync()

    def _wanted(self) -> set[str]:
        return {p for p in self._served if any(covers(i, p) for i in self.bridge.cfg.imports)}

    def _resync(self) -> None:
        """Make the NATS subscriptions follow the served patterns; one task at a time, rerun while dirty."""
        self._dirty = True
        if self._nc is not None and self._sync is None:
            self._sync = asyncio.get_running_loop().create_task(self._follow())

    async def _follow(self) -> None:
        try:
            while self._dirty and self._nc is not None:
                self._dirty = False
                nc, want = self._nc, self._wanted()
                for pattern in [p for p in self._subs if p not in want]:
                    await self._subs.pop(pattern).unsubscribe()
                for pattern in [p for p in want if p not in self._subs]:
                    self._subs[pattern] = await nc.subscribe(self.bridge.subjects.req + pattern, queue=QUEUE,
                                                             cb=self._on_request)
                await nc.flush(timeout=5)
        except Exception as exc:  # noqa: BLE001 - the connection went; attach() redoes it all
            log.debug("nats: serve subscriptions: %s", exc)
        finally:
            self._sync = None

    async def attach(self, nc: Nats) -> None:
        self._nc = nc
        self._subs.clear()
        self._dirty = True
        if self._sync is not None:
            await asyncio.gather(self._sync, return_exceptions=True)
        self._sync = asyncio.get_running_loop().create_task(self._follow())
        await asyncio.shield(self._sync)

    async def settled(self) -> None:
        """Every pattern served here is subscribed on NATS (the server has it)."""
        while self._sync is not None:
            await asyncio.shield(self._sync)

    def lost(self) -> None:
        self._nc = None
        self._subs.clear()
        for task in list(self._asks.values()):
            task.cancel()
        for rid, (_, timer) in list(self._replying.items()):
            timer.cancel()
            self.bridge.broker.requests.cancel(self._port, rid)  # type: ignore[arg-type]
        self._replying.clear()

    async def _on_request(self, msg: NatsMsg) -> None:
        if not msg.reply:
            return
        try:
            ask = self._ask(msg.data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self.bridge._bad(f"a request on {msg.subject}", exc)
            await msg.respond(self._enc.encode(Answer(error=f"bad request envelope: {exc}")))
            return
        rid = next(self._ids)
        timer = asyncio.get_running_loop().call_later(self.timeout, self._expire, rid)
        self._replying[rid] = (msg.reply, timer)
        topic = msg.subject[len(self.bridge.subjects.req):]
        self.bridge.broker.ask_outside(self._port, f.Request(rid, topic, ask.data), (ask.bot, ask.instance), ask.host)

    def _on_reply(self, reply: f.Reply) -> None:
        entry = self._replying.pop(reply.rid, None)
        if entry is None:
            return
        inbox, timer = entry
        timer.cancel()
        answer = Answer(reply.data, reply.error, reply.bot, reply.instance)
        self.bridge.out.send(inbox, self._enc.encode(answer))

    def _expire(self, rid: int) -> None:
        if self._replying.pop(rid, None) is not None:
            self.bridge.broker.requests.cancel(self._port, rid)  # type: ignore[arg-type]
