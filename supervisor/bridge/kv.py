"""Retained values across hosts, kept in the JetStream key-value bucket F_retained (one key per topic).

Writes are plain publishes to the bucket's subjects (JetStream stores them, nobody waits for an
ack), so a retained publish costs the bridge no round trip. On every (re)connect the bridge pulls
the bucket into the local broker (values it does not hold yet, or that changed) and pushes the
local exported values up, so both sides converge after an outage whatever the buffer dropped.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Callable

import msgspec

from supervisor.bridge.link import Outbound
from supervisor.bridge.wire import Envelope, kv_key, kv_topic
from supervisor.bus import frames as f
from supervisor.bus.broker import Broker

if TYPE_CHECKING:
    from nats.js.client import JetStreamContext

log = logging.getLogger("supctl.bridge")

_NIL = b"\xc0"
_DELETE = {"KV-Operation": "DEL"}


class RetainedSync:
    def __init__(self, broker: Broker, host: str, bucket: str, out: Outbound, max_value: int) -> None:
        self.broker = broker
        self.host = host
        self.bucket = bucket
        self.out = out
        self.max_value = max_value
        self.enabled = False
        self.error = ""
        self._prefix = f"$KV.{bucket}."
        self._fresh: set[str] | None = None
        """While pulling: topics whose live value arrived meanwhile, newer than the bucket's snapshot."""
        self._enc = msgspec.msgpack.Encoder()
        self._dec = msgspec.msgpack.Decoder(Envelope).decode

    async def open(self, js: JetStreamContext) -> None:
        """Find or create the bucket; without JetStream, retained values stay on each host (and it says so)."""
        from nats.js.api import KeyValueConfig, StorageType
        from nats.js.errors import BucketNotFoundError

        try:
            try:
                kv = await js.key_value(self.bucket)
            except BucketNotFoundError:
                kv = await js.create_key_value(KeyValueConfig(
                    bucket=self.bucket, history=1, storage=StorageType.FILE, max_value_size=self.max_value))
        except Exception as exc:  # noqa: BLE001 - JetStream off, no permission: the bridge still runs
            self.enabled, self.error = False, f"retained values stay local: {exc or type(exc).__name__}"
            log.warning("nats: %s", self.error)
            return None
        self.enabled, self.error = True, ""
        self._kv = kv

    def put(self, host: str, bot: str, instance: int, msg: f.Msg) -> None:
        """Store the topic's value; while NATS is away nothing is buffered: `push` on reconnect sends the latest."""
        if not self.enabled or self.out.nc is None:
            return
        key = self._prefix + kv_key(msg.topic)
        if bytes(msg.data) == _NIL:
            self.out.send(key, b"", _DELETE)
        else:
            self.out.send(key, self._enc.encode(Envelope(host, bot, instance, [msg])))

    async def pull(self, wanted: Callable[[str, str], bool], timeout: float = 10.0) -> int:
        """Bring the bucket's values for `wanted(topic, host)` into the broker; returns how many changed here."""
        if not self.enabled:
            self._fresh = None
            return 0
        watcher = await self._kv.watchall()
        changed = 0
        try:
            while True:
                entry = await asyncio.wait_for(watcher.updates(timeout), timeout)
                if entry is None:
                    break
                changed += self._apply(entry.key, entry.value, entry.operation, wanted)
        finally:
            self._fresh = None
            await watcher.stop()
        return changed

    def begin(self) -> None:
        """Called before the import subscriptions exist, so every live value that beats the pull is remembered."""
        self._fresh = set()

    def heard(self, topic: str) -> None:
        """A live retained value came in from NATS: a pull in progress must not overwrite it with an older one."""
        if self._fresh is not None:
            self._fresh.add(topic)

    def _apply(self, key: str, value: bytes | None, op: str | None, wanted: Callable[[str, str], bool]) -> int:
        topic = kv_topic(key)
        if self._fresh is not None and topic in self._fresh:
            return 0
        held = self.broker.retained.get(topic)
        if op in ("DEL", "PURGE") or not value:
            if held is not None and held.host and wanted(topic, held.host):
                self.broker.inject((held.bot, held.instance), held.host, [f.Msg(topic, msgspec.Raw(_NIL), True)])
                return 1
            return 0
        try:
            env = self._dec(value)
            item = env.items[0]
        except (msgspec.DecodeError, msgspec.ValidationError, IndexError) as exc:
            log.warning("nats: bucket %s key %s: not a supctl value (%s); skipped", self.bucket, key, exc)
            return 0
        if item.topic != topic or not wanted(topic, env.host):
            return 0
        if held is not None and (held.host == "" or (held.host == env.host and held.msg.data == item.data)):
            return 0  # ours (fresher than the bucket) or already the same
        self.broker.inject((env.bot, env.instance), env.host, [f.Msg(topic, item.data, True)])
        return 1

    def push(self, exported: Callable[[str], bool]) -> int:
        """Put every value published on this master under an export pattern (after an outage, or the first time)."""
        if not self.enabled:
            return 0
        n = 0
        for kept in self.broker.retained.matching(">"):
            if not kept.host and exported(kept.msg.topic):
                self.put(self.host, kept.bot, kept.instance, kept.msg)
                n += 1
        return n
