"""The status every bot shares: its own on `bots.status.<role>` (retained) every SYNC_EVERY seconds, and a line for
each status it hears from the others (`heard freelance {...}`), so each knows what the rest are doing. The pid in
it tells a status from before a restart (of the bot or the master) from a fresh one."""
from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable

from supervisor.bus import Client


async def share(bus: Client, role: str, status: Callable[[], dict]) -> None:
    every = float(os.environ.get("SYNC_EVERY", "5"))
    sub = bus.subscribe("bots.status.*")
    await sub.ready()

    async def publish() -> None:
        while True:
            await bus.publish(f"bots.status.{role}", {"role": role, "pid": os.getpid(), **status()}, retain=True)
            await asyncio.sleep(every)

    task = asyncio.create_task(publish())
    try:
        async for msg in sub:
            if msg.topic != f"bots.status.{role}":
                print("heard", msg.topic.rsplit(".", 1)[1], json.dumps(msg.data), flush=True)
    finally:
        task.cancel()
