"""Time- and file-driven actions on bots: restart_cron, watch, and the procfile's own reload_on_change."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config.procfile import BotConfig
    from ..engine.instance import RestartCause

PROCFILE = "<procfile>"
"""The owner of the procfile's own watcher (reload_on_change)."""

WATCH_DEBOUNCE_MS = 500
"""One restart for a burst of saves: changes closer together than this are one change."""


class Automations:
    """Background tasks per owner (a bot name, or the procfile); cancelled together when the owner goes."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._tasks: dict[str, list[asyncio.Task[None]]] = {}
        self._stops: dict[str, asyncio.Event] = {}

    def _spawn(self, owner: str, coro: Awaitable[None]) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=f"automation {owner}")  # type: ignore[arg-type]
        tasks = self._tasks.setdefault(owner, [])
        tasks.append(task)

        def done(t: asyncio.Task[None]) -> None:
            if t in tasks:
                tasks.remove(t)
            self._report(owner, t)

        task.add_done_callback(done)

    def _report(self, owner: str, task: asyncio.Task[None]) -> None:
        """A failed automation is a bug or a broken watch: say whose, never let the task swallow it."""
        if not task.cancelled() and task.exception() is not None:
            who = "the procfile watcher" if owner == PROCFILE else owner
            self._logger.error("%s: %s failed", who, task.get_name(), exc_info=task.exception())

    def for_bot(self, name: str, bot: BotConfig, cwd: Path, timezone: str,
                restart: Callable[[str, str, RestartCause], Awaitable[object]]) -> None:
        """`restart(name, reason, cause)`: cause is "cron" or "watch" (the restart reason in /metrics)."""
        if bot.restart_cron:
            from ..config.schedules import Cron
            from .schedule import Scheduler  # here, not at the top: a fleet without restart_cron never loads the scheduler

            def due(_: object) -> None:
                self._spawn(name, restart(name, f"restart_cron {bot.restart_cron}", "cron"))  # type: ignore[arg-type]

            self._spawn(name, Scheduler(Cron(bot.restart_cron, timezone), due).run())
        if bot.watch:
            async def changed(paths: set[str]) -> None:
                shown = ", ".join(sorted(paths)[:3]) + (" ..." if len(paths) > 3 else "")
                await restart(name, f"watched files changed: {shown}", "watch")

            self._watch(name, cwd, bot.watch, bot.watch_ignore, changed)

    def for_procfile(self, procfile: Path, reload: Callable[[], Awaitable[object]]) -> None:
        async def changed(_: set[str]) -> None:
            self._logger.info("procfile %s changed on disk: reloading", procfile)
            await reload()

        self._logger.info("reload_on_change is on: watching %s", procfile)
        self._watch(PROCFILE, procfile.parent, [procfile.name], [], changed)

    def stop_procfile_watch(self) -> None:
        """The watcher ends after the reload it may be running: unlike cancel(), safe to call from that reload."""
        stop = self._stops.pop(PROCFILE, None)
        if stop is not None:
            stop.set()
            self._logger.info("reload_on_change is off: no longer watching the procfile")

    def _watch(self, owner: str, root: Path, patterns: list[str], ignore: list[str],
               on_change: Callable[[set[str]], Awaitable[None]]) -> None:
        from .watch import watch_paths  # a fleet without watch or reload_on_change never loads the watcher

        stop = self._stops.setdefault(owner, asyncio.Event())
        who = "the procfile watcher" if owner == PROCFILE else owner

        def armed() -> None:
            self._logger.info("%s: watch armed on %s under %s", who, ", ".join(patterns), root)

        self._spawn(owner, watch_paths(root, patterns, ignore, on_change, WATCH_DEBOUNCE_MS, stop, armed))

    async def cancel(self, owner: str) -> None:
        stop = self._stops.pop(owner, None)
        if stop is not None:
            stop.set()
        tasks = self._tasks.pop(owner, [])
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):  # reported by the done-callback
                await task

    async def close(self) -> None:
        for owner in list(self._tasks):
            await self.cancel(owner)
