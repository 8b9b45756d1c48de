"""Futures waiting for an answer by id, with one shared loop timer for all their deadlines.

A TimerHandle per request (call_at + cancel) costs more than the rest of
sending a request; a heap of deadlines with lazy deletion costs one push, and
the single timer is re-armed only when a deadline earlier than it arrives.
"""

from __future__ import annotations

import asyncio
import heapq
from typing import Any

from supervisor.bus.subscription import BusTimeout

EARLY = 0.001
"""Loop timers may fire up to a clock tick early; deadlines this close count as due."""


class Waits:
    def __init__(self) -> None:
        self.futures: dict[int, asyncio.Future[Any]] = {}
        self._heap: list[tuple[float, int, str, float]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    def add(self, n: int, loop: asyncio.AbstractEventLoop, timeout: float | None, what: str) -> asyncio.Future[Any]:
        """A future for answer `n`; it fails with BusTimeout(`what`) after `timeout` seconds."""
        waiter = self.futures[n] = loop.create_future()
        if timeout is not None:
            deadline = loop.time() + timeout
            heapq.heappush(self._heap, (deadline, n, what, timeout))
            if self._timer is None or deadline < self._timer_at:
                self._arm(loop, deadline)
            elif len(self._heap) > 1024 and len(self._heap) > 4 * len(self.futures):
                self._compact()
        return waiter

    def resolve(self, n: int, result: Any) -> None:
        waiter = self.futures.pop(n, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(result)

    def discard(self, n: int) -> bool:
        """Forget `n`; True if it was still unanswered."""
        return self.futures.pop(n, None) is not None

    def fail_all(self, error: BaseException) -> None:
        for waiter in self.futures.values():
            if not waiter.done():
                waiter.set_exception(error)
        self.futures.clear()
        self._heap.clear()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._heap.clear()

    def _arm(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_at(deadline, self._expire, loop)
        self._timer_at = deadline

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        now = loop.time() + EARLY
        heap, futures = self._heap, self.futures
        while heap:
            deadline, n, what, timeout = heap[0]
            waiter = futures.get(n)
            if waiter is not None and deadline > now:
                self._arm(loop, deadline)
                return
            heapq.heappop(heap)
            if waiter is not None and not waiter.done():
                waiter.set_exception(BusTimeout(f"{what}: no answer within {timeout}s"))

    def _compact(self) -> None:
        """Drop deadlines of answered ids so a high request rate cannot grow the heap."""
        futures = self.futures
        self._heap = [entry for entry in self._heap if entry[1] in futures]
        heapq.heapify(self._heap)
