"""Publish each JSON line from stdin ({"topic", "data", "retain"}); answer "ok" once flushed."""

import asyncio
import json
import sys

from supervisor.bus import connect


async def main() -> None:
    client = await connect()
    print(json.dumps("ready"), flush=True)
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        cmd = json.loads(line)
        await client.publish(cmd["topic"], cmd["data"], retain=cmd.get("retain", False))
        await client.flush()
        print(json.dumps("ok"), flush=True)
    await client.close()


asyncio.run(main())
