"""When scheduled tasks run, and what happens when a run is slow, stuck or still going.

Three kinds of schedule:

- ``Cron``: a 5-field expression (minute hour day-of-month month day-of-week) in an IANA
  timezone. Across DST changes it behaves like Vixie/Debian cron (through cronsim): a time
  that does not exist (spring forward) runs at the first minute after the gap; a time that
  happens twice (fall back) runs once, at its first occurrence.
- ``Every``: a fixed interval. The first run is one interval after the master starts,
  unless ``at_start`` is set, in which case it runs at once and then every interval.
- ``At``: once, at an ISO-8601 time; a time without an offset is read in ``tz``.

Missed runs are never made up (policy "none"): runs due while the master was down are
forgotten, an ``at`` already past when the master starts never runs, and when the loop
falls behind (a suspended machine, a blocked loop) the schedule resumes from now instead
of firing a burst of late runs.

Times are aware datetimes; :func:`next_run` answers in UTC, because Python compares and
subtracts two datetimes that share a tzinfo by wall clock, which is wrong across DST.

Spawning stays out: the master hands :class:`TaskRunner` an async ``run() -> int`` that
starts the process and returns its exit code, and that kills the process when cancelled.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Literal

import msgspec

CRON_FIELDS = "minute hour day-of-month month day-of-week"


def zone(name: str) -> tzinfo:
    """zoneinfo (here) and cronsim (below) are imported on first use: a fleet without schedules carries neither."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {name!r}; expected an IANA name like 'UTC' or 'Europe/Berlin'") from None


class Cron(msgspec.Struct, frozen=True, tag="cron", tag_field="kind"):
    expr: str
    tz: str = "UTC"

    def __post_init__(self) -> None:
        from cronsim import CronSim, CronSimError

        local = zone(self.tz)
        if len(self.expr.split()) != 5:
            raise ValueError(f"invalid cron expression {self.expr!r}: expected 5 fields ({CRON_FIELDS})")
        try:
            CronSim(self.expr, datetime.now(local))
        except CronSimError as exc:
            raise ValueError(f"invalid cron expression {self.expr!r}: {str(exc).lower()} ({CRON_FIELDS})") from None


class Every(msgspec.Struct, frozen=True, tag="every", tag_field="kind"):
    seconds: float
    at_start: bool = False

    def __post_init__(self) -> None:
        if not self.seconds > 0:
            raise ValueError(f"an interval must be positive, found {self.seconds!r} seconds")


class At(msgspec.Struct, frozen=True, tag="at", tag_field="kind"):
    when: datetime
    tz: str = "UTC"  # only for a `when` written without an offset

    def __post_init__(self) -> None:
        zone(self.tz)

    @property
    def instant(self) -> datetime:
        when = self.when if self.when.tzinfo else self.when.replace(tzinfo=zone(self.tz))
        return when.astimezone(timezone.utc)


Schedule = Cron | Every | At


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"expected a timezone-aware datetime, found naive {moment.isoformat()}")
    return moment


def next_run(spec: Schedule, after: datetime) -> datetime | None:
    """The first due time strictly after `after`, in UTC; None when the schedule is over."""
    after = _aware(after)
    if isinstance(spec, Every):
        return (after + timedelta(seconds=spec.seconds)).astimezone(timezone.utc)
    if isinstance(spec, At):
        return spec.instant if spec.instant > after else None
    from cronsim import CronSim

    local = after.astimezone(zone(spec.tz))
    return next(CronSim(spec.expr, local)).astimezone(timezone.utc)


def first_run(spec: Schedule, start: datetime) -> datetime | None:
    """The first due time for a master starting at `start`."""
    if isinstance(spec, Every) and spec.at_start:
        return _aware(start).astimezone(timezone.utc)
    return next_run(spec, start)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


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
            if self._on_done is not None:
                self._on_done(record)

    async def aclose(self) -> None:
        """Cancel the runs still going (their processes get killed) and wait for them."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
