"""Samples the host's load average every SAMPLE_EVERY seconds into data/samples.jsonl. On SIGTERM (what the master
sends on stop) or SIGINT it writes its last sample, closes the file and says so: a graceful stop in its log."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path


def sample() -> None:
    """One line, appended and closed at once: a stop at any moment leaves only whole lines."""
    with open("data/samples.jsonl", "a") as out:
        out.write(json.dumps({"at": time.time(), "load1": os.getloadavg()[0]}) + "\n")


async def main() -> None:
    every = float(os.environ.get("SAMPLE_EVERY", "5"))
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda s=sig: stop.done() or stop.set_result(s))
    Path("data").mkdir(exist_ok=True)
    written = 0
    print(f"collector up, a sample every {every:g}s", flush=True)
    while True:
        sample()
        written += 1
        if (await asyncio.wait([stop], timeout=every))[0]:
            break
    print(f"collector: {signal.Signals(stop.result()).name}: {written} samples written and closed; bye", flush=True)


asyncio.run(main())
