"""Run untrusted plugin code so that nothing it does can stall or crash the master's loop."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


class PluginTimeout(Exception):
    """The plugin did not finish within its time budget."""


class PluginBusy(Exception):
    """The plugin's previous call (abandoned after a timeout) is still running."""


def in_thread(fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
    """Run a blocking call in a fresh daemon thread.

    Not asyncio.to_thread: a hung plugin would pin a pool worker forever and, being a
    non-daemon thread, keep the master from exiting on shutdown.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    ctx = contextvars.copy_context()

    def settle(ok: bool, value: Any) -> None:
        if future.done():
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    def work() -> None:
        try:
            value = ctx.run(fn, *args)
        except BaseException as e:  # noqa: BLE001 -- handed to the loop, not swallowed
            ok, value = False, e
        else:
            ok = True
        try:
            loop.call_soon_threadsafe(settle, ok, value)
        except RuntimeError:
            pass  # the loop closed while the plugin was still busy

    threading.Thread(target=work, name=f"plugin:{getattr(fn, '__qualname__', fn)}", daemon=True).start()
    return future


async def bounded(call: Callable[[], Awaitable[T]], timeout: float) -> T:
    """Await `call()` for at most `timeout` seconds, even if it ignores cancellation.

    asyncio.wait_for waits for the cancelled task to finish, so a plugin that swallows
    CancelledError would hang the caller; here we cancel and walk away.
    """
    task = asyncio.ensure_future(call())
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        task.cancel()
        task.add_done_callback(_consume)
        raise PluginTimeout(f"timed out after {timeout:g}s")
    return task.result()


def _consume(task: asyncio.Future[Any]) -> None:
    """Retrieve an abandoned task's outcome so asyncio does not log 'exception never retrieved'."""
    if not task.cancelled():
        task.exception()


def describe(exc: BaseException) -> str:
    """An exception as one line for a health reason: type and message."""
    text = str(exc)
    if isinstance(exc, (PluginTimeout, PluginBusy)):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Guarded:
    """One plugin method, called at most once at a time, under a timeout, in a thread if blocking.

    A hung call is abandoned, not awaited; until it really ends, further calls fail fast
    instead of piling up threads or tasks behind it.
    """

    def __init__(self, fn: Callable[..., Any], blocking: bool) -> None:
        self._fn = fn
        self._blocking = blocking
        self._idle = threading.Event()
        self._idle.set()
        self._task: asyncio.Future[Any] | None = None

    async def __call__(self, *args: Any, timeout: float) -> Any:
        if not self._idle.is_set() or (self._task is not None and not self._task.done()):
            raise PluginBusy("previous call still running after its timeout")
        if not self._blocking:
            self._task = asyncio.ensure_future(self._fn(*args))
            return await bounded(lambda: self._task, timeout)  # type: ignore[arg-type,return-value]
        self._idle.clear()
        return await bounded(lambda: in_thread(self._run, *args), timeout)

    def _run(self, *args: Any) -> Any:
        try:
            return self._fn(*args)
        finally:
            self._idle.set()
