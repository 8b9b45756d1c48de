"""A stand-in master for test_guardian: a real Guard and guardian; floods it while the test holds it SIGSTOPped.

argv: PGID to announce after the flood. Prints "guardian=PID", waits for "go" on stdin, floods, announces PGID,
prints "flooded in S s, longest loop stall S s", then "told" once every byte reached the guardian, then idles
until killed (its death is the master's death the guardian must act on).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time

from supervisor.engine.guardian_link import Guard

FLOOD = 20_000
"""Announce-and-end pairs: about 400 KB, six times what a pipe holds."""


async def main(pgid: int) -> None:
    loop = asyncio.get_running_loop()
    guard = Guard(logging.getLogger("flood"))
    guard.start()
    print(f"guardian={guard.pid}", flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)
    began = time.monotonic()
    for g in range(1_000_000, 1_000_000 + FLOOD):
        guard(g, True)
        guard(g, False)
    guard(pgid, True)
    print(f"flooded in {time.monotonic() - began:.3f} s", flush=True)
    while guard.backlog:
        await asyncio.sleep(0.01)  # waits for a condition: the test SIGCONTs the guardian
    print("told", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
