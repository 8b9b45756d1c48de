"""A paper trader: random fills on paper positions, never a real order. When the kill switch goes on (the master
publishes supctl.kill_switch, then stops the bot with SIGTERM) it flattens every paper position inside its stop grace
and prints what it closed."""
from __future__ import annotations

import asyncio
import json
import random
import signal

from sync import share

from supervisor.bus import connect

positions: dict[str, float] = {}


def flatten(why: str) -> None:
    closed = {k: v for k, v in positions.items() if v}
    positions.clear()
    print(f"flattened paper positions ({why}): {json.dumps(closed)}", flush=True)


async def trade() -> None:
    while True:
        symbol = random.choice(["BTC", "ETH"])
        positions[symbol] = round(positions.get(symbol, 0.0) + random.choice([-0.1, 0.1]), 4) or 0.1
        await asyncio.sleep(0.5)


async def kill_switch(bus) -> None:
    async for msg in bus.subscribe("supctl.kill_switch"):
        if msg.data.get("active"):
            print(f"kill switch on: {msg.data.get('reason')}", flush=True)
            flatten("kill switch")


async def main() -> None:
    bus = await connect()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    positions["BTC"] = 0.1
    print("trader up (paper mode)", flush=True)
    tasks = [asyncio.create_task(c) for c in (trade(), kill_switch(bus), share(bus, "trader", lambda: {"positions": dict(positions)}))]
    await stop.wait()
    for t in tasks:
        t.cancel()
    flatten("stop")
    await bus.close()


asyncio.run(main())
