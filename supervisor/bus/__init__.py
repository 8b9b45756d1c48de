"""The supctl message bus: a broker hosted by the master and the client bots import.

    from supervisor.bus import connect
    client = await connect()          # SUPCTL_BUS, SUPCTL_BUS_TOKEN from the environment
"""

from supervisor.bus.broker import Broker
from supervisor.bus.client import ENV_PATH, ENV_TOKEN, Client, connect
from supervisor.bus.frames import MAX_FRAME, PROTOCOL_VERSION, BusStats, Presence
from supervisor.bus.subscription import BusTimeout, Message, Subscription
from supervisor.errors import BusError

ENV_BOT = "SUPCTL_BOT"
ENV_INSTANCE = "SUPCTL_INSTANCE"

__all__ = [
    "Broker", "BusError", "BusStats", "BusTimeout", "Client", "ENV_BOT", "ENV_INSTANCE", "ENV_PATH", "ENV_TOKEN",
    "MAX_FRAME", "Message", "PROTOCOL_VERSION", "Presence", "Subscription", "connect",
]
