"""A bot for the fleet tests. argv: PATTERN [SERVE].

Prints "ready", then every message on PATTERN as a JSON line (with the host it came from);
with SERVE, also answers requests on that topic with {"double": data * 2, "asker": [bot, host]}.
"""
import asyncio
import json
import sys

from supervisor.bus import Message, connect


async def main(pattern: str, serve: str | None) -> None:
    bus = await connect()
    if serve:
        async def double(msg: Message) -> dict:
            return {"double": msg.data * 2, "asker": [msg.bot, msg.host]}

        bus.serve(serve, double)
    sub = bus.subscribe(pattern)
    await sub.ready()
    print(json.dumps("ready"), flush=True)
    async for msg in sub:
        print(json.dumps({"topic": msg.topic, "data": msg.data, "bot": msg.bot, "host": msg.host,
                          "retained": msg.retained}), flush=True)


asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None))
