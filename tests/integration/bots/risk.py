"""A risk monitor that pulls the kill switch over the bus: each message on risk.BOT ({"activate", "reason"}) becomes
client.kill_switch(...); prints 'reply JSON' or 'refused ERROR'. argv: [blocking] (the blocking client's method)."""
import asyncio
import json
import os
import sys

import msgspec

from supervisor.bus import BusError, connect
from supervisor.bus.blocking import BlockingClient

TOPIC = f"risk.{os.environ['SUPCTL_BOT']}"


def show(outcome: object) -> None:
    text = f"refused {outcome}" if isinstance(outcome, BusError) else "reply " + json.dumps(msgspec.structs.asdict(outcome))
    print(text, flush=True)


async def main() -> None:
    bus = await connect()
    sub = bus.subscribe(TOPIC)
    await sub.ready()
    print("ready", flush=True)
    async for msg in sub:
        try:
            show(await bus.kill_switch(msg.data["activate"], msg.data.get("reason", ""), timeout=30))
        except BusError as e:
            show(e)


if sys.argv[1:] == ["blocking"]:
    with BlockingClient() as blocking:
        lines = blocking.subscribe(TOPIC)
        print("ready", flush=True)
        for msg in lines:
            try:
                show(blocking.kill_switch(msg.data["activate"], msg.data.get("reason", ""), timeout=30))
            except BusError as e:
                show(e)
else:
    asyncio.run(main())
