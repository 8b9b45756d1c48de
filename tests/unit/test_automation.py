"""Background automation tasks never fail silently: an exception is logged with the bot's name."""

from __future__ import annotations

import asyncio
import logging

import pytest

from supervisor.jobs.automation import Automations


def test_a_failed_automation_is_logged_with_its_bot(caplog: pytest.LogCaptureFixture) -> None:
    async def broken() -> None:
        raise RuntimeError("restart exploded")

    async def go() -> None:
        autos = Automations(logging.getLogger("supctl.test"))
        autos._spawn("trader", broken())
        await asyncio.sleep(0)  # one loop turn: the task runs (FIFO) and fails before close() cancels anything
        await asyncio.wait_for(autos.close(), 5)

    with caplog.at_level(logging.ERROR, logger="supctl.test"):
        asyncio.run(go())
    (record,) = [r for r in caplog.records if r.name == "supctl.test"]
    assert record.getMessage().startswith("trader: automation trader failed")
    assert record.exc_info and "restart exploded" in str(record.exc_info[1])


def test_a_cancelled_automation_is_not_an_error(caplog: pytest.LogCaptureFixture) -> None:
    async def forever() -> None:
        await asyncio.Event().wait()

    async def go() -> None:
        autos = Automations(logging.getLogger("supctl.test"))
        autos._spawn("trader", forever())
        await asyncio.sleep(0)
        await asyncio.wait_for(autos.cancel("trader"), 5)

    with caplog.at_level(logging.ERROR, logger="supctl.test"):
        asyncio.run(go())
    assert not [r for r in caplog.records if r.name == "supctl.test"]
