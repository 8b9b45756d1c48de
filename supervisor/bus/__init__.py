"""The supctl message bus: a broker hosted by the master and the client bots import.

    from supervisor.bus import connect
    client = await connect()          # SUPCTL_BUS, SUPCTL_BUS_TOKEN from the environment
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from supervisor.bus.frames import MAX_FRAME, PROTOCOL_VERSION, BusStats, Presence
from supervisor.bus.subscription import BusTimeout, Message, Peer, Subscription
from supervisor.core.errors import BusError

if TYPE_CHECKING:
    from supervisor.bus.broker import Broker
    from supervisor.bus.client import ENV_PATH, ENV_TOKEN, Client, connect

_LAZY = {"Broker": "broker", "Client": "client", "connect": "client", "ENV_PATH": "client", "ENV_TOKEN": "client"}

ENV_BOT = "SUPCTL_BOT"
ENV_INSTANCE = "SUPCTL_INSTANCE"

__all__ = [
    "Broker", "BusError", "BusStats", "BusTimeout", "Client", "ENV_BOT", "ENV_INSTANCE", "ENV_PATH", "ENV_TOKEN",
    "MAX_FRAME", "Message", "PROTOCOL_VERSION", "Peer", "Presence", "Subscription", "connect",
]


def __getattr__(name: str) -> object:
    """The master needs only the broker and bots only the client: each imports just its half."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
