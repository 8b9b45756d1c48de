"""Shared bits for the bus tests: run a coroutine under uvloop, start a broker, spawn children."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any, Awaitable

import uvloop

from supervisor.bus import Broker

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]


def run(coro: Awaitable[Any], timeout: float = 30.0) -> Any:
    """Run one test body on a fresh uvloop, failing instead of hanging."""

    async def guarded() -> Any:
        return await asyncio.wait_for(coro, timeout)

    return uvloop.run(guarded())


async def start_broker(tmp_path: Path, **options: Any) -> Broker:
    broker = Broker(tmp_path / "bus.sock", **options)
    await broker.start()
    return broker


async def spawn(script: str, broker: Broker, bot: str, instance: int, *args: str) -> "Child":
    env = dict(os.environ)
    env.update(
        SUPCTL_BUS=str(broker.path),
        SUPCTL_BUS_TOKEN=broker.issue_token(bot, instance),
        SUPCTL_BOT=bot,
        SUPCTL_INSTANCE=str(instance),
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(HERE / script), *args,
        env=env, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, start_new_session=True,
    )
    return Child(proc)


class Child:
    """A child process speaking JSON lines on stdout and stdin."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def line(self, timeout: float = 15.0) -> Any:
        assert self.proc.stdout is not None
        raw = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not raw:
            raise AssertionError(f"child exited early with {await self.proc.wait()}")
        return json.loads(raw)

    def send(self, obj: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(obj) + "\n").encode())

    async def finish(self, timeout: float = 15.0) -> int:
        """Close stdin (children exit on EOF) and reap."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise
