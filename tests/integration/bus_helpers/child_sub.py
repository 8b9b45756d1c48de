"""Subscribe to argv[1], print "ready", then one JSON line per message until argv[2] arrived."""

import asyncio
import json
import sys

from supervisor.bus import connect


async def main() -> None:
    client = await connect()
    sub = client.subscribe(sys.argv[1])
    await sub.ready()
    print(json.dumps("ready"), flush=True)
    for _ in range(int(sys.argv[2])):
        msg = await sub.get(20)
        print(json.dumps({"topic": msg.topic, "data": msg.data, "bot": msg.bot, "instance": msg.instance}), flush=True)
    await client.close()


asyncio.run(main())
