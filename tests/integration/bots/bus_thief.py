"""A bot that tries to be someone else on the bus. argv: ROLE.
feed: serves `feed.price` ("real") and prints "serving".
thief: tries every token-like string in every file of the state dir (where bus.sock lives) and prints which
identity each one gives; then tries to serve `feed.price` itself, asks it 20 times and prints the answers.
"""
import asyncio
import json
import os
import re
import sys
from pathlib import Path

from supervisor.bus import BusError, connect

TOKEN = re.compile(rb"[A-Za-z0-9_-]{43}")


async def main(role: str) -> None:
    bus = await connect()
    if role == "feed":
        async def price(msg: object) -> str:
            return "real"

        bus.serve("feed.price", price)
        await bus.flush()
        print(json.dumps({"serving": True}), flush=True)
        await asyncio.Event().wait()
    state = Path(os.environ["SUPCTL_BUS"]).parent
    identities = []
    for path in state.rglob("*"):
        if path.is_file() and not path.is_symlink():
            for token in set(TOKEN.findall(path.read_bytes())):
                try:
                    async with await connect(token=token.decode(), timeout=5) as other:
                        identities.append([other.bot, other.instance])
                except BusError:
                    pass

    async def fake(msg: object) -> str:
        return "hijacked"

    bus.serve("feed.price", fake)
    await bus.flush()
    answers = []
    for _ in range(20):
        answers.append(await bus.request("feed.price", None))
    print(json.dumps({"identities": identities, "answers": answers}), flush=True)
    await asyncio.Event().wait()


asyncio.run(main(sys.argv[1]))
