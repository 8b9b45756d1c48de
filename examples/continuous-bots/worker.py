"""A job worker (argv: freelance or ai): takes a job every second, reports how many it has done."""
from __future__ import annotations

import asyncio
import sys

from sync import share

from supervisor.bus import connect


async def main(role: str) -> None:
    bus = await connect()
    done = 0

    async def work() -> None:
        nonlocal done
        while True:
            await asyncio.sleep(1)
            done += 1

    asyncio.create_task(work())
    print(f"{role} worker up", flush=True)
    await share(bus, role, lambda: {"jobs_done": done})


asyncio.run(main(sys.argv[1]))
