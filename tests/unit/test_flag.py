"""engine.flag.Flag behaves like asyncio.Event for the ways an Instance uses it."""

from __future__ import annotations

import asyncio

from supervisor.engine.flag import Flag


def run(coro) -> None:
    asyncio.run(asyncio.wait_for(coro, 5))


def test_set_wakes_every_waiter_and_later_waits_return_at_once():
    async def body() -> None:
        flag = Flag()
        woken: list[int] = []

        async def waiter(k: int) -> None:
            await flag.wait()
            woken.append(k)

        tasks = [asyncio.create_task(waiter(k)) for k in range(3)]
        await asyncio.sleep(0)
        assert not woken and not flag.is_set()
        flag.set()
        await asyncio.gather(*tasks)
        assert sorted(woken) == [0, 1, 2]
        await flag.wait()
        assert flag.is_set()

    run(body())


def test_clear_makes_the_next_wait_block_until_set_again():
    async def body() -> None:
        flag = Flag()
        flag.set()
        flag.clear()
        waiting = asyncio.create_task(flag.wait())
        await asyncio.sleep(0)
        assert not waiting.done()
        flag.set()
        await waiting

    run(body())


def test_a_cancelled_waiter_is_forgotten_and_set_still_wakes_the_rest():
    async def body() -> None:
        flag = Flag()
        gone = asyncio.create_task(flag.wait())
        stays = asyncio.create_task(flag.wait())
        await asyncio.sleep(0)
        gone.cancel()
        await asyncio.gather(gone, return_exceptions=True)
        assert flag._waiters is not None and len(flag._waiters) == 1
        flag.set()
        await stays
        assert gone.cancelled()

    run(body())
