"""The bridge's connection to NATS: nats-py options from `[bus.nats]`, and the bounded outbound buffer.

nats-py's own reconnect is off: the bridge reconnects with the project's backoff and then
resubscribes and resyncs from scratch, one code path for the first connect and every later one.
"""

from __future__ import annotations

import collections
import logging
import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Any

from supervisor.bus.eager import start_eagerly
from supervisor.config.nats import NatsConfig

if TYPE_CHECKING:
    import asyncio

    from nats.aio.client import Client as Nats

log = logging.getLogger("supctl.bridge")

PENDING = 8 << 20
"""Bytes nats-py may hold unflushed before a publish waits (then the bridge buffers instead)."""


def connect_options(cfg: NatsConfig, base_dir: Path, name: str) -> dict[str, Any]:
    """Keyword arguments for `nats.connect`: servers, credentials, TLS; no reconnect of its own."""
    opts: dict[str, Any] = {
        "servers": cfg.urls, "name": name, "connect_timeout": 2, "allow_reconnect": False,
        "max_reconnect_attempts": 1, "reconnect_time_wait": 0, "pending_size": PENDING, "ping_interval": 20, "max_outstanding_pings": 3,
    }
    if cfg.user is not None:
        opts["user"], opts["password"] = cfg.user, cfg.password or ""
    if cfg.token is not None:
        opts["token"] = cfg.token
    if cfg.creds is not None:
        opts["user_credentials"] = str(base_dir / cfg.creds)
    if cfg.nkey is not None:
        opts["nkeys_seed"] = str(base_dir / cfg.nkey)
    if cfg.tls is not None:
        ctx = ssl.create_default_context(cafile=str(base_dir / cfg.tls.ca) if cfg.tls.ca else None)
        if cfg.tls.cert:
            ctx.load_cert_chain(str(base_dir / cfg.tls.cert), str(base_dir / cfg.tls.key) if cfg.tls.key else None)
        opts["tls"] = ctx
        if cfg.tls.hostname:
            opts["tls_hostname"] = cfg.tls.hostname
    return opts


def describe(exc: BaseException) -> str:
    """One line for the master log and `supctl status`."""
    text = str(exc) or type(exc).__name__
    return text[:300]


class Outbound:
    """Publishes to NATS without waiting; while NATS is away (or nats-py is full) they wait here, bounded.

    An entry is one NATS message carrying `count` bus messages (an envelope carries a run of them);
    past `max_msgs` bus messages or `max_bytes` bytes the oldest entries are dropped, their messages counted."""

    def __init__(self, max_msgs: int, max_bytes: int) -> None:
        self.max_msgs = max_msgs
        self.max_bytes = max_bytes
        self.nc: Nats | None = None
        self.sent = 0
        self.dropped = 0
        self._queue: collections.deque[tuple[str, bytes, dict[str, str] | None, int]] = collections.deque()
        self._bytes = 0
        self._msgs = 0
        self._stall: asyncio.Task[Any] | None = None

    @property
    def buffered(self) -> int:
        """Bus messages waiting for NATS."""
        return self._msgs

    def send(self, subject: str, payload: bytes, headers: dict[str, str] | None = None, count: int = 1) -> None:
        if self.nc is None or self._stall is not None or self._queue:
            self._keep(subject, payload, headers, count)
            return
        self._publish(subject, payload, headers, count)

    def _publish(self, subject: str, payload: bytes, headers: dict[str, str] | None, count: int) -> None:
        assert self.nc is not None
        try:
            task = start_eagerly(self.nc.publish(subject, payload, headers=headers))
        except Exception as exc:  # noqa: BLE001 - closed, over max payload, ...: count it, never raise into the broker
            self.dropped += count
            log.debug("nats: publish on %s failed: %s", subject, exc)
            return
        self.sent += count
        if task is not None:
            self._stall = task
            task.add_done_callback(self._unstall)

    def _unstall(self, task: asyncio.Task[Any]) -> None:
        if task is self._stall:
            self._stall = None
            self.flush()

    def _keep(self, subject: str, payload: bytes, headers: dict[str, str] | None, count: int) -> None:
        self._queue.append((subject, payload, headers, count))
        self._bytes += len(payload)
        self._msgs += count
        while self._queue and (self._msgs > self.max_msgs or self._bytes > self.max_bytes):
            _, old, _, lost = self._queue.popleft()
            self._bytes -= len(old)
            self._msgs -= lost
            self.dropped += lost

    def flush(self) -> None:
        """Send what waited, in order, until nats-py pushes back again."""
        while self._queue and self.nc is not None and self._stall is None:
            subject, payload, headers, count = self._queue.popleft()
            self._bytes -= len(payload)
            self._msgs -= count
            self._publish(subject, payload, headers, count)

    def attach(self, nc: Nats) -> None:
        self.nc = nc
        self.flush()

    def detach(self) -> None:
        self.nc = None
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None
