"""A bot for `[bus] persist`. argv: ROLE.
write: publishes retained state.x, prices.x and state.gone (then clears state.gone), prints `published`, idles.
read: prints `retained <json>`: every retained value on state.> and prices.> it got on subscribing, as
[topic, data, bot, instance]; then publishes retained state.y and prints `published`, idles."""
import asyncio
import json
import sys

from supervisor.bus import connect


async def main(role: str) -> None:
    bus = await connect()
    if role == "write":
        await bus.publish("state.x", {"n": 42}, retain=True)
        await bus.publish("prices.x", 101.5, retain=True)
        await bus.publish("state.gone", "soon gone", retain=True)
        await bus.publish("state.gone", None, retain=True)
    else:
        got = []
        for pattern in ("state.>", "prices.>"):
            sub = bus.subscribe(pattern)
            await sub.ready()
            sub.close()
            got += [[m.topic, m.data, m.bot, m.instance] async for m in sub if m.retained]
        print("retained", json.dumps(sorted(got)), flush=True)
        await bus.publish("state.y", {"by": "reader"}, retain=True)
    await bus.flush()
    print("published", flush=True)
    await asyncio.Event().wait()


asyncio.run(main(sys.argv[1]))
