"""Event hooks: the master reports each transition with `dispatch`, hooks hear it without slowing it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from ..plugin import EventHook, ProcessEvent
from .contain import Guarded, describe
from .specs import HookSpec

log = logging.getLogger("supctl.hooks")


class _Worker:
    """One hook with its own queue, so a slow hook delays only itself and events stay in order."""

    def __init__(self, spec: HookSpec, queue_size: int) -> None:
        self.spec = spec
        self.hook: EventHook = spec.create()
        self.call = Guarded(self.hook.on_event, type(self.hook).blocking)
        self.queue: asyncio.Queue[ProcessEvent] = asyncio.Queue(queue_size)
        self.dropped = 0
        self.task: asyncio.Task[None] | None = None

    def offer(self, event: ProcessEvent) -> None:
        if self.spec.events is not None and event.kind not in self.spec.events:
            return
        if self.queue.full():  # keep the newest: a hook far behind cares about now, not then
            self.queue.get_nowait()
            self.queue.task_done()
            self.dropped += 1
            log.warning("hook %s is behind; dropped %d events so far", self.spec.name, self.dropped)
        self.queue.put_nowait(event)

    async def run(self) -> None:
        while True:
            event = await self.queue.get()
            try:
                await self.call(event, timeout=self.spec.timeout)
            except Exception as e:  # noqa: BLE001 -- a hook's failure is logged, never raised at the master
                log.warning("hook %s failed on %s of %s:%d: %s", self.spec.name, event.kind, event.bot,
                            event.instance, describe(e))
            finally:
                self.queue.task_done()


class HookRunner:
    """Fan process events out to hooks; `dispatch` never blocks and never raises."""

    def __init__(self, specs: Sequence[HookSpec], *, queue_size: int = 1000) -> None:
        self._workers = [_Worker(s, queue_size) for s in specs]

    def start(self) -> None:
        for w in self._workers:
            if w.task is None:
                w.task = asyncio.create_task(w.run(), name=f"hook:{w.spec.name}")

    def dispatch(self, event: ProcessEvent) -> None:
        for w in self._workers:
            w.offer(event)

    async def drain(self, timeout: float) -> bool:
        """Wait until every queued event was handled (shutdown, tests); False on timeout."""
        try:
            await asyncio.wait_for(asyncio.gather(*(w.queue.join() for w in self._workers)), timeout)
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        for w in self._workers:
            if w.task is not None:
                w.task.cancel()
        await asyncio.gather(*(w.task for w in self._workers if w.task), return_exceptions=True)
        for w in self._workers:
            try:
                await asyncio.wait_for(w.hook.close(), 5)
            except Exception:  # noqa: BLE001 -- closing is best effort
                log.exception("closing hook %s failed", w.spec.name)
