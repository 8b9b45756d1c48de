"""Serve argv[1]: reply with the request data and who answered; stay until stdin closes."""

import asyncio
import json
import sys

from supervisor.bus import Message, connect


async def main() -> None:
    client = await connect()

    async def answer(msg: Message) -> dict:
        if msg.data == "boom":
            raise ValueError("asked to fail")
        return {"echo": msg.data, "by": client.bot, "asker": [msg.bot, msg.instance]}

    client.serve(sys.argv[1], answer)
    await client.flush()
    print(json.dumps("ready"), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await client.close()


asyncio.run(main())
