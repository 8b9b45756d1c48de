"""start_eagerly: runs now, hands the rest to a Task, passes cancellation through."""

from __future__ import annotations

import asyncio

import pytest

from supervisor.bus.eager import start_eagerly


def test_eager_coroutine_that_never_suspends_finishes_inline() -> None:
    async def body() -> None:
        done = []

        async def quick() -> None:
            done.append(1)

        assert start_eagerly(quick()) is None
        assert done == [1]

    asyncio.run(body())


def test_eager_coroutine_resumes_in_a_task_with_its_result() -> None:
    async def body() -> None:
        steps = []
        gate = asyncio.Event()

        async def slow() -> str:
            steps.append("before")
            await gate.wait()
            await asyncio.sleep(0)
            steps.append("after")
            return "value"

        task = start_eagerly(slow())
        assert steps == ["before"] and task is not None
        gate.set()
        assert await asyncio.wait_for(task, 5) == "value"
        assert steps == ["before", "after"]

    asyncio.run(body())


def test_eager_task_cancellation_reaches_the_coroutine() -> None:
    async def body() -> None:
        seen = []

        async def waits() -> None:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                seen.append("cancelled")
                raise

        task = start_eagerly(waits())
        assert task is not None
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
        assert seen == ["cancelled"]

    asyncio.run(body())


def test_eager_task_cancelled_before_it_ran_unwinds_the_coroutine() -> None:
    async def body() -> None:
        seen = []

        async def waits() -> None:
            try:
                await asyncio.Event().wait()
            finally:
                seen.append("unwound")

        task = start_eagerly(waits())
        assert task is not None
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
        assert seen == ["unwound"]

    asyncio.run(body())
