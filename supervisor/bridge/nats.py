"""The master's bridge from its bus to NATS (docs/fleet.md); nats-py is imported only when `[bus.nats]` is set.

Local messages on export patterns go out as envelopes on F.m.TOPIC; envelopes on import patterns
come in and are delivered as if published here, with `msg.host` naming where they came from.
A message that came from NATS carries a host, and the tap never sends such a message back; the
NATS connection itself has no_echo, so a master never hears its own publishes either.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import msgspec

from supervisor.bridge.kv import RetainedSync
from supervisor.bridge.link import Outbound, connect_options, describe
from supervisor.bridge.presence import Rosters
from supervisor.bridge.requests import RemoteRequests
from supervisor.bridge.wire import Envelope, Roster, Subjects, token
from supervisor.bus import frames as f
from supervisor.bus.broker import PRESENCE, Broker
from supervisor.bus.topics import TopicIndex, matches
from supervisor.config.nats import NatsConfig
from supervisor.control.protocol import BridgeStatus
from supervisor.core.backoff import backoff_delay
from supervisor.core.errors import BusError

if TYPE_CHECKING:
    from nats.aio.client import Client as Nats
    from nats.aio.msg import Msg as NatsMsg

log = logging.getLogger("supctl.bridge")

OnConnect = Callable[["Nats"], Awaitable[None]]


class NatsBridge:
    def __init__(self, cfg: NatsConfig, broker: Broker, base_dir: Path, on_connect: OnConnect | None = None) -> None:
        self.cfg = cfg
        self.broker = broker
        self.host = cfg.host
        self.base_dir = base_dir
        self.subjects = Subjects(cfg.fleet)
        self.state = "connecting"
        self.error = ""
        self.since = time.time()
        self.server = ""
        self.received = 0
        self.invalid = 0
        self.out = Outbound(cfg.buffer, cfg.buffer_size)
        self.kv = RetainedSync(broker, self.host, cfg.bucket, self.out, broker.max_frame)
        self.rosters = Rosters(broker, self.host, self._send_roster)
        self.requests = RemoteRequests(self, cfg.request_timeout)
        self.nc: Nats | None = None
        self._on_connect = on_connect
        self._exports: TopicIndex[str] = TopicIndex()
        for pattern in cfg.export:
            self._exports.add(pattern, pattern)
        self._deliver = msgspec.msgpack.Decoder(f.Deliver).decode
        self._envelope = msgspec.msgpack.Decoder(Envelope).decode
        self._roster = msgspec.msgpack.Decoder(Roster).decode
        self._enc = msgspec.msgpack.Encoder()
        self._taps = [(p, broker.tap(p, self._on_local)) for p in cfg.export]
        self._lost: asyncio.Event = asyncio.Event()
        self.connected = asyncio.Event()
        self._changed = asyncio.Event()
        """Set while connected and synced (subscribed, retained values pulled)."""
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._last_error = ""
        self._warned = itertools.count()
        broker.attach(self.requests)

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background: the master and its bots never wait for NATS."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        """Say goodbye (an empty roster), send what is buffered, then disconnect."""
        self._closed = True
        nc = self.nc
        if nc is not None and nc.is_connected:
            self._send_roster(Roster(self.host, []))
            try:
                await nc.flush(timeout=2)
            except Exception as exc:  # noqa: BLE001 - closing anyway
                log.debug("nats: flush at close: %s", exc)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if nc is not None:
            await self._drop(nc)
        self.broker.attach(None)
        for pattern, tap in self._taps:
            self.broker.untap(pattern, tap)
        self.rosters.close()

    def status(self) -> BridgeStatus:
        retained = "off" if not self.cfg.retained else (
            f"JetStream bucket {self.cfg.bucket}" if self.kv.enabled else self.kv.error or "not synced yet")
        return BridgeStatus(state=self.state, error=self.error, since=self.since, fleet=self.cfg.fleet, host=self.host,
                            server=self.server, sent=self.out.sent, received=self.received, buffered=self.out.buffered,
                            dropped=self.out.dropped, invalid=self.invalid, remote_hosts=sorted(self.rosters.remote),
                            retained=retained)

    async def changed(self) -> None:
        """Return at the next change of `state` or `error`."""
        await self._changed.wait()

    async def _run(self) -> None:
        attempt = 0
        while not self._closed:
            try:
                nc = await self._connect()
            except Exception as exc:  # noqa: BLE001 - every failure to connect is retried
                reason = describe(exc)
                if self._last_error and self._last_error not in reason:
                    reason = f"{reason} (last: {self._last_error})"
                auth = "authoriz" in reason.lower() or "authentic" in reason.lower()
                self._set_state("refused" if auth else "disconnected", reason)
                b = self.cfg.reconnect
                await asyncio.sleep(backoff_delay(attempt, b.initial, b.factor, b.max, b.jitter))
                attempt += 1
                continue
            attempt = 0
            try:
                await self._lost.wait()
            finally:
                self.connected.clear()
                self.out.detach()
                self.nc = None
                self.rosters.lost()
                self.requests.lost()
                await self._drop(nc)
            if not self._closed:
                self._set_state("disconnected", "connection to NATS lost")

    async def _connect(self) -> Nats:
        import nats

        self._lost = lost = asyncio.Event()
        self._last_error = ""

        async def gone(*_: Any) -> None:
            lost.set()

        async def error(exc: Exception) -> None:
            self._last_error = describe(exc) if str(exc) else repr(exc)

        name = f"supctl {self.cfg.fleet} {self.host}"
        nc = await nats.connect(**connect_options(self.cfg, self.base_dir, name), no_echo=True,
                                disconnected_cb=gone, closed_cb=gone, error_cb=error)
        try:
            if self.cfg.retained:
                self.kv.begin()
            for pattern in self.cfg.imports:
                await nc.subscribe(self.subjects.msg + pattern, cb=self._on_remote)
            await nc.subscribe(self.subjects.roster + "*", cb=self._on_roster)
            if self.cfg.retained:
                await self.kv.open(nc.jetstream())
                changed = await self.kv.pull(self._wanted)
                pushed = self.kv.push(self._exported)
                log.info("nats: retained values synced (%d in, %d out)", changed, pushed)
            await self.requests.attach(nc)
            if self._on_connect is not None:
                await self._on_connect(nc)
            self.nc = nc
            url = nc.connected_url
            self.server = f"{url.hostname}:{url.port}" if url else ""  # never the user:password part
            self.out.attach(nc)
            self._send_roster(self.rosters.roster(hello=True))
            await nc.flush(timeout=5)
        except BaseException:
            self.nc = None
            self.out.detach()
            await self._drop(nc)
            raise
        self._set_state("connected", "")
        self.connected.set()
        return nc

    async def _drop(self, nc: Nats) -> None:
        try:
            await nc.close()
        except Exception as exc:  # noqa: BLE001 - it is going away either way
            log.debug("nats: close: %s", exc)

    def _set_state(self, state: str, error: str) -> None:
        """Log once per change of state (or of the reason), never once per retry."""
        if (state, error) == (self.state, self.error):
            return
        self.state, self.error, self.since = state, error, time.time()
        self._changed.set()
        self._changed = asyncio.Event()
        if state == "connected":
            log.info("nats: connected to %s as host %s of fleet %s", self.server, self.host, self.cfg.fleet)
        else:
            log.warning("nats: %s: %s (local bus unaffected; retrying with backoff)", state, error)

    # -- outbound -------------------------------------------------------------

    def _exported(self, topic: str) -> bool:
        return not topic.startswith(PRESENCE + ".") and bool(self._exports.match(topic))

    def _wanted(self, topic: str, host: str) -> bool:
        """Retained values to pull: on an import pattern, or our own under an export pattern (a master restart)."""
        if any(matches(p, topic) for p in self.cfg.imports):
            return True
        return host == self.host and self._exported(topic)

    def _on_local(self, frame: bytes | bytearray) -> None:
        """A Deliver the broker routed to an export tap: send runs of one topic as one envelope each."""
        deliver = self._deliver(memoryview(frame)[4:])
        if deliver.host:
            return  # came from NATS: never back
        items = deliver.items
        # while NATS is away each message waits alone, so the buffer's bound drops exactly the oldest ones
        limit = self.nc.max_payload - 1024 if self.nc is not None else 0
        start = 0
        while start < len(items):
            topic = items[start].topic
            end, size = start + 1, len(items[start].data)
            while end < len(items) and items[end].topic == topic and size + len(items[end].data) + 300 < limit:
                size += len(items[end].data) + len(topic) + 8
                end += 1
            run = items[start:end]
            start = end
            if topic.startswith(PRESENCE + "."):
                continue
            env = Envelope(self.host, deliver.bot, deliver.instance, run)
            self.out.send(self.subjects.msg + topic, self._enc.encode(env), None, len(run))
            for msg in run:
                if msg.retain:
                    self.kv.put(self.host, deliver.bot, deliver.instance, msg)

    def _send_roster(self, roster: Roster) -> None:
        if self.nc is not None:
            self.out.send(self.subjects.roster + token(self.host), self._enc.encode(roster))

    # -- inbound --------------------------------------------------------------

    def _bad(self, what: str, exc: object) -> None:
        self.invalid += 1
        n = next(self._warned)
        if n < 10 or n % 1000 == 0:
            log.warning("nats: dropped %s: %s (%d so far)", what, exc, self.invalid)

    async def _on_remote(self, msg: NatsMsg) -> None:
        try:
            env = self._envelope(msg.data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self._bad(f"a message on {msg.subject}", exc)
            return
        if env.host == self.host:
            return
        topic = msg.subject[len(self.subjects.msg):]
        if any(item.topic != topic for item in env.items):
            self._bad(f"a message on {msg.subject}", "its topics do not match the subject")
            return
        try:
            self.broker.inject((env.bot, env.instance), env.host, env.items)
        except BusError as exc:
            self._bad(f"a message on {msg.subject} from {env.host}", exc)
            return
        self.received += len(env.items)
        for item in env.items:
            if item.retain:
                self.kv.heard(topic)

    async def _on_roster(self, msg: NatsMsg) -> None:
        try:
            roster = self._roster(msg.data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self._bad(f"a roster on {msg.subject}", exc)
            return
        if self.rosters.heard(roster):
            self._send_roster(self.rosters.roster())
