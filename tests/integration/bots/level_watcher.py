"""Prints the fleet's degradation level as JSON lines: `now {...}` from client.degradation(), then `level {...}` for
each message on supctl.fleet.degradation (the retained one first)."""
import asyncio
import json

import msgspec

from supervisor.bus import connect


async def main() -> None:
    bus = await connect()
    print("now", json.dumps(msgspec.to_builtins(await bus.degradation())), flush=True)
    async for msg in bus.subscribe("supctl.fleet.degradation"):
        print("level", json.dumps(msg.data), flush=True)


asyncio.run(main())
