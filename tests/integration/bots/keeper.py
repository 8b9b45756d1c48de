"""A bot that keeps a counter in checkpoints. argv: MODE CRASH_AT.
MODE async or blocking (the client it uses). Prints `restored <json>` once, then counts up, checkpointing each value
and printing `saved <n> <seq>`; exits 3 right after saving CRASH_AT (0: never) if it restored nothing, else idles."""
import asyncio
import json
import sys

from supervisor.bus import connect
from supervisor.bus.blocking import BlockingClient


def line(*parts: object) -> None:
    print(*parts, flush=True)


async def run_async(crash_at: int) -> None:
    bus = await connect()
    state = await bus.restore()
    line("restored", json.dumps(state))
    n = state["n"] if state else 0
    for _ in range(3):
        n += 1
        seq = await bus.checkpoint({"n": n, "by": [bus.bot, bus.instance]})
        line("saved", n, seq)
        if state is None and n == crash_at:
            sys.exit(3)
    await asyncio.Event().wait()


def run_blocking(crash_at: int) -> None:
    with BlockingClient() as bus:
        state = bus.restore()
        line("restored", json.dumps(state))
        n = state["n"] if state else 0
        for _ in range(3):
            n += 1
            line("saved", n, bus.checkpoint({"n": n}))
            if state is None and n == crash_at:
                sys.exit(3)
        bus.subscribe("never.anything").get()


if __name__ == "__main__":
    mode, crash_at = sys.argv[1], int(sys.argv[2])
    if mode == "async":
        asyncio.run(run_async(crash_at))
    else:
        run_blocking(crash_at)
