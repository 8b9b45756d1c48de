"""A blocking bus client for plain scripts: the async client runs on a private loop thread.

    from supervisor.bus.blocking import BlockingClient
    with BlockingClient() as bus:
        bus.publish("prices.btc", {"bid": 1.0})
        for msg in bus.subscribe("orders.>"):
            ...
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any, Callable, Coroutine, Iterator, TypeVar

from supervisor.bus.client import Client, connect
from supervisor.bus.state import KillSwitchView
from supervisor.bus.subscription import Message, Subscription

T = TypeVar("T")


class BlockingSubscription:
    """Iterate it, or call `get(timeout)`; both block the calling thread only."""

    def __init__(self, owner: BlockingClient, sub: Subscription) -> None:
        self._owner = owner
        self._sub = sub

    @property
    def dropped(self) -> int:
        return self._sub.dropped

    def get(self, timeout: float | None = None) -> Message:
        return self._owner._call(self._sub.get(timeout))

    def __iter__(self) -> Iterator[Message]:
        while True:
            try:
                yield self._owner._call(self._sub.__anext__())
            except StopAsyncIteration:
                return

    def close(self) -> None:
        self._owner._loop.call_soon_threadsafe(self._sub.close)


class BlockingClient:
    """Same calls as `Client`, minus `await`; `serve` handlers are plain functions."""

    def __init__(
        self, path: str | os.PathLike[str] | None = None, token: str | None = None, timeout: float = 10.0
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="supctl-bus", daemon=True)
        self._thread.start()
        try:
            self._client: Client = self._call(connect(path, token, timeout=timeout))
        except BaseException:
            self._stop()
            raise

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def _run(self, fn: Callable[[], T]) -> T:
        async def call() -> T:
            return fn()

        return self._call(call())

    def publish(self, topic: str, obj: Any, retain: bool = False) -> None:
        self._call(self._client.publish(topic, obj, retain))

    def flush(self, timeout: float | None = 10.0) -> None:
        self._call(self._client.flush(timeout))

    def request(self, topic: str, obj: Any, timeout: float = 5.0, type: Any = None) -> Any:
        return self._call(self._client.request(topic, obj, timeout, type))

    def checkpoint(self, state: Any, timeout: float = 10.0) -> int:
        return self._call(self._client.checkpoint(state, timeout))

    def restore(self, type: Any = None, timeout: float = 10.0) -> Any:
        return self._call(self._client.restore(type, timeout))

    def degradation(self, timeout: float = 5.0, group: str | None = None) -> Any:
        return self._call(self._client.degradation(timeout, group))

    def kill_switch(self, activate: bool, reason: str = "", timeout: float = 5.0) -> KillSwitchView:
        return self._call(self._client.kill_switch(activate, reason, timeout))

    def peers(self) -> list[tuple[str, int]]:
        return self._call(self._client.peers())

    def subscribe(self, pattern: str, type: Any = None) -> BlockingSubscription:
        sub = self._run(lambda: self._client.subscribe(pattern, type))
        self._call(sub.ready())
        return BlockingSubscription(self, sub)

    def serve(self, pattern: str, handler: Callable[[Message], Any]) -> None:
        """`handler` runs in a worker thread, so it may block."""

        async def call(msg: Message) -> Any:
            return await asyncio.to_thread(handler, msg)

        self._run(lambda: self._client.serve(pattern, call))
        self.flush()

    def close(self) -> None:
        if self._thread.is_alive():
            self._call(self._client.close())
            self._stop()

    def _stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> BlockingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
