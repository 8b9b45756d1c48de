"""The blocking wrapper, used the way a plain script would."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bus_helpers import run, spawn, start_broker

from supervisor.bus import connect


def test_blocking_wrapper_from_plain_script(tmp_path: Path) -> None:
    async def body() -> None:
        broker = await start_broker(tmp_path)
        watcher = await connect(broker.path, broker.admin_token())
        seen = watcher.subscribe("script.hello")
        await seen.ready()
        child = await spawn("child_blocking.py", broker, "script", 4)
        result = await child.line(30)
        assert result == {
            "topic": "script.hello", "data": {"n": 1}, "bot": "script", "doubled": 42, "peers": [["script", 4]],
        }
        assert (await seen.get(5)).bot == "script"
        assert await asyncio.wait_for(child.proc.wait(), 15) == 0
        await watcher.close()
        await broker.close()

    run(body())
