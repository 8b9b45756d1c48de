"""Every SAMPLE_EVERY seconds, publishes how many samples the collector has written and the latest load average on
the bus (`daemon.report`, retained: `supctl bus sub daemon.report` shows the last one at once) and prints it. On
SIGTERM or SIGINT it prints its last summary and leaves."""
from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

from supervisor.bus import connect


def summary() -> dict:
    try:
        lines = Path("data/samples.jsonl").read_text().splitlines()
    except FileNotFoundError:
        lines = []
    last = json.loads(lines[-1]) if lines else {}
    return {"samples": len(lines), "load1": last.get("load1")}


async def main() -> None:
    every = float(os.environ.get("SAMPLE_EVERY", "5"))
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda s=sig: stop.done() or stop.set_result(s))
    bus = await connect()
    print("reporter up", flush=True)
    while True:
        report = summary()
        await bus.publish("daemon.report", report, retain=True)
        print(f"report: {json.dumps(report)}", flush=True)
        if (await asyncio.wait([stop], timeout=every))[0]:
            break
    print(f"reporter: {signal.Signals(stop.result()).name}: last report: {json.dumps(summary())}; bye", flush=True)
    await bus.close()


asyncio.run(main())
