"""Scheduled tasks at run time: one Scheduler and one TaskRunner per [tasks.NAME], runs spawned like bots."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from datetime import datetime

from ..config.procfile import Procfile
from ..config.schedules import utcnow
from ..config.tasks import TaskConfig
from ..engine.boxes import Containment, task_key
from ..engine.instance import KILL_WAIT
from ..engine.spawn import kill_group, spawn
from ..output.rotating import RotatingLog
from .schedule import Scheduler, TaskRun, TaskRunner


def describe(task: TaskConfig) -> str:
    if task.cron:
        return f"cron {task.cron} ({task.tz})"
    return f"every {task.every}" if task.every else f"at {task.at}"


class ScheduledTask:
    def __init__(self, name: str, config: TaskConfig, procfile: Procfile, base_env: dict[str, str],
                 logger: logging.Logger, guard: Callable[[int, bool], None], boxes: Containment) -> None:
        self.name = name
        self.config = config
        self._argv = config.argv()
        self._cwd = procfile.cwd_of(config)
        self._env = {**base_env, "PYTHONUNBUFFERED": "1", **config.env, "SUPCTL_TASK": name}
        logcfg = config.log or procfile.supervisor.log
        self.log = RotatingLog(procfile.state_dir / "logs" / f"{name}.log", logcfg.max_size, logcfg.backups, logcfg.timestamps)
        self._logger = logger
        self._guard = guard
        self._box = boxes.box(task_key(name))
        self._running: set[int] = set()
        """Pids of the runs going (several with `overlap`)."""
        self.runner = TaskRunner(self._run, overlap=config.overlap, timeout=config.timeout, on_done=self._done)
        self.scheduler = Scheduler(config.schedule(), self._due)
        self._loop_task: asyncio.Task[None] | None = None
        self._waiters: dict[datetime, asyncio.Future[TaskRun]] = {}

    def start(self) -> None:
        self._loop_task = asyncio.get_running_loop().create_task(self.scheduler.run(), name=f"schedule {self.name}")

    def _due(self, due: datetime) -> None:
        if not self.runner.trigger(due):
            self._logger.warning("task %s: run due at %s skipped, the previous run is still going (%d skipped)",
                                 self.name, due.isoformat(), self.runner.skipped)

    async def _run(self) -> int:
        """One run; cancelled (timeout, shutdown) means SIGKILL to its group. What runs leave behind in the task's
        box (a daemonized grandchild) is killed when the last run going ends (with `overlap`, runs share the box)."""
        child = await spawn(self._argv, self._cwd, self._env, self.log, self._guard, self._box)
        pid = child.pid
        self._running.add(pid)
        self._logger.info("task %s: started pid %d", self.name, pid)
        try:
            return await asyncio.shield(child.exited)
        finally:
            kill_group(pid, signal.SIGKILL)
            self._running.discard(pid)
            if not self._running:
                self._box.kill()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(child.exited)
                if not self._running:
                    await self._box.wait_empty(KILL_WAIT)
            self._guard(pid, False)

    async def run_now(self) -> TaskRun | None:
        """`supctl run TASK`: one run now, under the same overlap rule; None when skipped."""
        marker = utcnow()
        if not self.runner.trigger(marker):
            return None
        waiter = self._waiters[marker] = asyncio.get_running_loop().create_future()
        return await waiter

    def _done(self, run: TaskRun) -> None:
        waiter = self._waiters.pop(run.due, None) if run.due is not None else None
        if waiter is not None and not waiter.done():
            waiter.set_result(run)
        detail = f"code {run.exit_code}" if run.exit_code is not None else run.error or run.outcome
        self._logger.info("task %s: %s (%s) in %.2fs", self.name, run.outcome, detail, run.duration)

    async def stop(self) -> None:
        """No more runs; a run still going is awaited for `stop_timeout` (a backup half done is worth finishing),
        then killed with its group."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        if self.runner.running:
            pids = ", ".join(map(str, sorted(self._running))) or "starting"
            wait = self.config.stop_timeout
            self._logger.info("task %s: schedule cancelled; awaiting the run going (pid %s), up to %s", self.name, pids, wait)
            if not await self.runner.wait(wait):
                self._logger.warning("task %s: still running after stop_timeout %s: killing it", self.name, wait)
        await self.runner.aclose()
        self.log.close()
