"""A bus citizen for master tests. argv: ROLE.
pub: publishes {"seq": n} on prices.btc (retained) every 50 ms.
sub: prints every prices.* message as a JSON line and answers requests on `sub.ping`.
req: asks `sub.ping` every 100 ms and prints each reply as a JSON line.
"""
import asyncio
import json
import sys

from supervisor.bus import BusError, Message, connect


async def main(role: str) -> None:
    bus = await connect()
    if role == "pub":
        n = 0
        while True:
            n += 1
            await bus.publish("prices.btc", {"seq": n}, retain=True)
            await asyncio.sleep(0.05)
    elif role == "sub":
        async def pong(msg: Message) -> dict:
            return {"pong": msg.data, "by": [bus.bot, bus.instance], "asker": [msg.bot, msg.instance]}

        bus.serve("sub.ping", pong)
        async for msg in bus.subscribe("prices.*"):
            print(json.dumps({"topic": msg.topic, "data": msg.data, "bot": msg.bot, "retained": msg.retained}), flush=True)
    else:
        n = 0
        while True:
            n += 1
            try:
                print(json.dumps(await bus.request("sub.ping", n, timeout=2.0)), flush=True)
            except BusError as e:
                print(json.dumps({"error": str(e)}), flush=True)
            await asyncio.sleep(0.1)


asyncio.run(main(sys.argv[1]))
