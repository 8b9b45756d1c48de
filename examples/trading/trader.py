"""Paper trader: follows `prices.*`, buys dips and sells rips, answers `trader.positions` requests."""

import asyncio

import msgspec

from supervisor.bus import connect


class Price(msgspec.Struct):
    symbol: str
    price: float
    seq: int


class Positions(msgspec.Struct):
    cash: float
    btc: float
    last_price: float
    trades: int


async def main() -> None:
    bus = await connect()
    book = Positions(cash=100_000.0, btc=0.0, last_price=0.0, trades=0)

    async def positions(_msg: object) -> Positions:
        return book

    bus.serve("trader.positions", positions)
    async for msg in bus.subscribe("prices.*", type=Price):
        tick: Price = msg.data
        if book.last_price and tick.price < book.last_price * 0.999 and book.cash >= tick.price * 0.01:
            book.cash -= tick.price * 0.01
            book.btc += 0.01
            book.trades += 1
            print(f"trader: bought 0.01 BTC at {tick.price:.2f}")
        elif book.last_price and tick.price > book.last_price * 1.001 and book.btc >= 0.01:
            book.cash += tick.price * 0.01
            book.btc -= 0.01
            book.trades += 1
            print(f"trader: sold 0.01 BTC at {tick.price:.2f}")
        book.last_price = tick.price


asyncio.run(main())
