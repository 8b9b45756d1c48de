"""The assistant: answers `assistant.ask` on the bus, remembering each question in the store. On SIGTERM it asks the
store once more before leaving: the master stops bots in reverse dependency order, so the store still answers."""
from __future__ import annotations

import asyncio
import signal

from supervisor.bus import connect


async def main() -> None:
    bus = await connect()

    async def ask(msg) -> dict:
        question = str(msg.data)
        seen = await bus.request("store.incr", question, timeout=5)
        return {"question": question, "answer": f"you asked {question!r} {seen} time(s)"}

    bus.serve("assistant.ask", ask)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("assistant up", flush=True)
    await stop.wait()
    kept = await bus.request("store.size", None, timeout=5)
    print(f"assistant: stopping; the store still answers ({kept} questions kept); bye", flush=True)
    await bus.close()


asyncio.run(main())
