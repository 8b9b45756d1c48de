"""Price feed: publishes a random-walk BTC price on `prices.btc` (retained, so a restarted trader syncs at once)."""

import asyncio
import random

import msgspec

from supervisor.bus import connect


class Price(msgspec.Struct):
    symbol: str
    price: float
    seq: int


async def main() -> None:
    bus = await connect()
    price, seq = 60_000.0, 0
    while True:
        price *= 1 + random.gauss(0, 0.001)
        seq += 1
        await bus.publish("prices.btc", Price("BTC", round(price, 2), seq), retain=True)
        if seq % 25 == 0:
            print(f"feed: BTC {price:.2f} (#{seq})")
        await asyncio.sleep(0.2)


asyncio.run(main())
