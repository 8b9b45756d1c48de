"""Two (or more) bus brokers in one test process, each bridged to a real nats-server.

Each `Side` is what one master holds: its own state dir, broker and NatsBridge. Bots are real
bus clients on the broker's socket. The master-level tests (test_fleet_master.py) use real
masters instead; these keep the bridge's own cases fast and exact.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgspec

from supervisor.bridge.nats import NatsBridge
from supervisor.bus import Broker, Client, connect
from supervisor.config.nats import NatsConfig
from supervisor.core import units


class Side:
    def __init__(self, root: Path, host: str, **cfg: Any) -> None:
        self.dir = root / host
        self.dir.mkdir(parents=True, exist_ok=True)
        cfg.setdefault("reconnect", {"initial": "50ms", "max": "200ms"})
        self.cfg = msgspec.convert({"host": host, "fleet": "test", **cfg}, NatsConfig, dec_hook=units.dec_hook)
        self.host = host
        self.broker: Broker | None = None
        self.bridge: NatsBridge | None = None
        self.clients: list[Client] = []

    async def start(self, wait: bool = True) -> Side:
        self.broker = Broker(self.dir / "bus.sock")
        await self.broker.start()
        self.bridge = NatsBridge(self.cfg, self.broker, self.dir)
        self.bridge.start()
        if wait:
            await self.ready()
        return self

    async def ready(self, timeout: float = 15.0) -> None:
        assert self.bridge is not None
        await asyncio.wait_for(self.bridge.connected.wait(), timeout)

    async def bot(self, name: str, instance: int = 0) -> Client:
        assert self.broker is not None
        client = await connect(self.broker.path, self.broker.issue_token(name, instance))
        self.clients.append(client)
        return client

    async def stop(self) -> None:
        for client in self.clients:
            await client.close()
        self.clients.clear()
        if self.bridge is not None:
            await self.bridge.close()
        if self.broker is not None:
            await self.broker.close()
        self.bridge = self.broker = None
