"""Scheduled runs at run time: the loop that fires each due time, and what happens when a run is slow,
stuck or still going. The schedule values themselves (Cron, Every, At) are config/schedules.py.

Spawning stays out: the master hands :class:`TaskRunner` an async ``run() -> int`` that
starts the process and returns its exit code, and that kills the process when cancelled.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Literal

import msgspec

from ..config.schedules import Schedule, first_run, next_run, utcnow


class Scheduler:
    """Calls `on_due(due)` at each due time of one schedule, until cancelled or the schedule ends.

    `on_due` must not block: it starts a run (see TaskRunner.trigger) and returns.
    Sleeps are capped at `max_sleep` so a wall-clock jump (suspend, NTP) is noticed soon.
    """

    def __init__(
        self,
        spec: Schedule,
        on_due: Callable[[datetime], object],
        *,
        now: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        max_sleep: float = 60.0,
    ) -> None:
        self.spec = spec
        self._on_due = on_due
        self._now = now
        self._sleep = sleep
        self._max_sleep = max_sleep
        self.next_due: datetime | None = None

    async def run(self) -> None:
        due = first_run(self.spec, self._now())
        while due is not None:
            self.next_due = due
            while (delay := (due - self._now()).total_seconds()) > 0:
                await self._sleep(min(delay, self._max_sleep))
            self._on_due(due)
            following = next_run(self.spec, due)
            current = self._now()
            if following is not None and following <= current:
                following = next_run(self.spec, current)  # fell behind: no catch-up burst
            due = following
        self.next_due = None


Outcome = Literal["exited", "timeout", "error", "cancelled"]


class TaskRun(msgspec.Struct, frozen=True):
    """One finished run, as `supctl status` and the master log show it."""

    started: datetime
    duration: float  # seconds
    outcome: Outcome
    exit_code: int | None = None  # set when outcome == "exited"
    due: datetime | None = None  # the scheduled time, None for a run started by hand
    error: str | None = None

    @property
    def result(self) -> str:
        if self.outcome == "exited":
            return "success" if self.exit_code == 0 else "failure"
        return self.outcome


class TaskRunner:
    """The run policy of one scheduled task: overlap, timeout, and the last `keep` results.

    A trigger while a run is still going is skipped and counted in `skipped`, unless
    `overlap` is set. A run past `timeout` seconds is cancelled, which must kill its process.
    A run that raises is recorded as an error; it never propagates into the master.
    """

    def __init__(
        self,
        run: Callable[[], Awaitable[int]],
        *,
        overlap: bool = False,
        timeout: float | None = None,
        keep: int = 20,
        now: Callable[[], datetime] = utcnow,
        on_done: Callable[[TaskRun], object] | None = None,
    ) -> None:
        self._run = run
        self.overlap = overlap
        self.timeout = timeout
        self._now = now
        self._on_done = on_done
        self._tasks: set[asyncio.Task[None]] = set()
        self._history: deque[TaskRun] = deque(maxlen=keep)
        self.skipped = 0
        self.totals: dict[str, int] = {}
        """Runs ever finished, by result (success, failure, timeout, error, cancelled): history keeps only `keep`."""
        self.last_success: datetime | None = None

    @property
    def running(self) -> int:
        return len(self._tasks)

    @property
    def history(self) -> list[TaskRun]:
        """Finished runs, oldest first."""
        return list(self._history)

    def trigger(self, due: datetime | None = None) -> bool:
        """Start a run now unless the overlap policy says skip; True when one started."""
        if self._tasks and not self.overlap:
            self.skipped += 1
            return False
        task = asyncio.get_running_loop().create_task(self._one(due))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _one(self, due: datetime | None) -> None:
        started, t0 = self._now(), time.monotonic()
        fields: dict[str, object] = {"outcome": "cancelled"}  # unless the run gets further
        try:
            async with asyncio.timeout(self.timeout):
                fields = {"outcome": "exited", "exit_code": await self._run()}
        except TimeoutError:
            fields = {"outcome": "timeout", "error": f"still running after {self.timeout:g}s"}
        except Exception as exc:  # a failing spawn must not take the scheduler down
            fields = {"outcome": "error", "error": f"{type(exc).__name__}: {exc}"}
        finally:
            self._tasks.discard(asyncio.current_task())  # type: ignore[arg-type]  # free before on_done runs
            record = TaskRun(started=started, duration=time.monotonic() - t0, due=due, **fields)
            self._history.append(record)
            result = record.result
            self.totals[result] = self.totals.get(result, 0) + 1
            if result == "success":
                self.last_success = started
            if self._on_done is not None:
                self._on_done(record)

    async def wait(self, timeout: float) -> bool:
        """Let the runs going finish on their own, for at most `timeout` seconds; True when none is left."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
        return not self._tasks

    async def aclose(self) -> None:
        """Cancel the runs still going (their processes get killed) and wait for them."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
