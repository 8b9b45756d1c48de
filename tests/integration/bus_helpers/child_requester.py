"""Send each stdin line as a request on argv[1]; print the reply or the error."""

import asyncio
import json
import sys

from supervisor.bus import connect
from supervisor.core.errors import BusError


async def main() -> None:
    client = await connect()
    print(json.dumps("ready"), flush=True)
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        try:
            reply = await client.request(sys.argv[1], json.loads(line), timeout=float(sys.argv[2]))
            print(json.dumps({"reply": reply}), flush=True)
        except BusError as exc:
            print(json.dumps({"error": type(exc).__name__, "timeout": isinstance(exc, TimeoutError)}), flush=True)
    await client.close()


asyncio.run(main())
