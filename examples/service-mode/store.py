"""The assistant's memory: how often each question was asked, served on the bus. On SIGTERM it says how much it
held, so the master log and this bot's log show it stopped after the assistant (its dependent)."""
from __future__ import annotations

import asyncio
import signal

from supervisor.bus import connect


async def main() -> None:
    bus = await connect()
    counts: dict[str, int] = {}

    async def incr(msg) -> int:
        counts[str(msg.data)] = counts.get(str(msg.data), 0) + 1
        return counts[str(msg.data)]

    async def size(msg) -> int:
        return len(counts)

    bus.serve("store.incr", incr)
    bus.serve("store.size", size)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("store up", flush=True)
    await stop.wait()
    print(f"store: stopping with {len(counts)} questions kept; bye", flush=True)
    await bus.close()


asyncio.run(main())
