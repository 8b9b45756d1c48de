"""When scheduled tasks are due: the schedule values a procfile names, and their next due time.

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

Running them is jobs/schedule.py's job.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone, tzinfo

import msgspec

CRON_FIELDS = "minute hour day-of-month month day-of-week"


def zone(name: str) -> tzinfo:
    """zoneinfo (here) and cronsim (below) are imported on first use: a fleet without schedules carries neither,
    and the default "UTC", which every procfile validates, needs no tz database (zoneinfo costs ~250 KiB of RSS)."""
    if name == "UTC":
        return timezone.utc
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

