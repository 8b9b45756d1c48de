"""Start a coroutine at once instead of on the next loop iteration (3.12's eager tasks, for 3.11).

A request handler that answers without suspending replies inside the same
data_received call, which saves a loop iteration on every request/reply hop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any


class _Rest:
    """Awaitable that continues a coroutine already run up to its first suspension."""

    def __init__(self, coro: Coroutine[Any, Any, Any], pending: Any) -> None:
        self._coro = coro
        self._pending = pending

    def __await__(self) -> Generator[Any, None, Any]:
        pending = self._pending
        while True:
            try:
                yield pending
            except BaseException as exc:  # cancellation: hand it to the coroutine
                try:
                    pending = self._coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
                continue
            try:
                pending = self._coro.send(None)
            except StopIteration as stop:
                return stop.value


async def _finish(rest: _Rest) -> Any:
    return await rest


def start_eagerly(coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any] | None:
    """Run `coro` now; None if it finished, else the Task that drives the rest of it."""
    try:
        pending = coro.send(None)
    except StopIteration:
        return None
    task = asyncio.get_running_loop().create_task(_finish(_Rest(coro, pending)))
    task.add_done_callback(lambda _: coro.close())  # cancelled before its first step: unwind coro
    return task
