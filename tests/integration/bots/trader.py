"""A trading bot that hears the kill switch: prints each supctl.kill_switch message and, on SIGTERM, 'sigterm'."""
import asyncio
import json
import signal
import sys

from supervisor.bus import connect


async def main() -> None:
    bus = await connect()
    sub = bus.subscribe("supctl.kill_switch")
    await sub.ready()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, lambda: (print("sigterm", flush=True), sys.exit(0)))
    print("ready", flush=True)
    async for msg in sub:
        print("kill_switch " + json.dumps(msg.data), flush=True)


asyncio.run(main())
