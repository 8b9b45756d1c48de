"""Prints the fleet's degradation level as JSON lines: `now {...}` from client.degradation(), then `level {...}` for
each message on supctl.fleet.degradation (the retained one first). argv: [GROUP]: that group's level instead, from
client.degradation(group=GROUP) and supctl.fleet.degradation.GROUP."""
import asyncio
import json
import sys

import msgspec

from supervisor.bus import connect


async def main(group: str | None) -> None:
    bus = await connect()
    print("now", json.dumps(msgspec.to_builtins(await bus.degradation(group=group))), flush=True)
    async for msg in bus.subscribe("supctl.fleet.degradation" + (f".{group}" if group else "")):
        print("level", json.dumps(msg.data), flush=True)


asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else None))
