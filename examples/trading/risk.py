"""Risk monitor: asks the trader for its positions every second, alerts on exposure, watches process events."""

import asyncio

from supervisor.bus import BusError, connect


async def watch_events(bus) -> None:  # type: ignore[no-untyped-def]
    async for msg in bus.subscribe("supctl.events.>"):
        print(f"risk: event {msg.data['kind']} from {msg.data['bot']}:{msg.data['instance']}")


async def main() -> None:
    bus = await connect()
    asyncio.get_running_loop().create_task(watch_events(bus))
    while True:
        await asyncio.sleep(1)
        try:
            pos = await bus.request("trader.positions", None, timeout=1.0)
        except BusError as e:
            print(f"risk: trader did not answer ({e})")
            continue
        exposure = pos["btc"] * pos["last_price"]
        print(f"risk: exposure {exposure:.0f} USD, cash {pos['cash']:.0f}, trades {pos['trades']}")
        if exposure > 50_000:
            await bus.publish("risk.alerts", {"level": "high", "exposure": exposure})


asyncio.run(main())
