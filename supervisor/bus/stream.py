"""The client's asyncio protocol: bytes in go to the client, flow control goes to its outbox."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from supervisor.bus import frames as f

if TYPE_CHECKING:
    from supervisor.bus.client import Client

FRAME_SLACK = 64 << 10
"""Broker frames may exceed max_frame by the sender stamp the broker adds."""


class ClientStream(asyncio.Protocol):
    def __init__(self, client: Client) -> None:
        self.client = client
        self.splitter = f.FrameSplitter(f.MAX_FRAME + FRAME_SLACK)

    def data_received(self, data: bytes) -> None:
        self.client._on_data(self, data)

    def pause_writing(self) -> None:
        self.client._outbox.set_writable(False)

    def resume_writing(self) -> None:
        self.client._outbox.set_writable(True)

    def connection_lost(self, exc: Exception | None) -> None:
        self.client._on_lost(self)
