"""Schedules on an injected clock (no real minutes pass), and the run policy on real tasks."""

from __future__ import annotations

import asyncio
import os
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import msgspec
import pytest

from supervisor.config.schedules import At, Cron, Every, Schedule, first_run, next_run
from supervisor.jobs.schedule import Scheduler, TaskRun, TaskRunner

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
WAIT = 5.0  # upper bound for anything the tests wait on


class FakeClock:
    """Wall clock that moves only when the scheduler sleeps."""

    def __init__(self, start: datetime) -> None:
        self.t = start
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += timedelta(seconds=seconds)
        await asyncio.sleep(0)


def fire_times(spec: Schedule, start: datetime, count: int, on_fire=None) -> tuple[list[datetime], FakeClock]:
    """The first `count` due times the Scheduler fires on a fake clock starting at `start`."""
    clock = FakeClock(start)
    fired: list[datetime] = []

    async def scenario() -> None:
        enough = asyncio.Event()

        def on_due(due: datetime) -> None:
            assert clock.now() >= due, "fired early"
            fired.append(due)
            if on_fire:
                on_fire(clock)
            if len(fired) >= count:
                enough.set()

        task = asyncio.create_task(Scheduler(spec, on_due, now=clock.now, sleep=clock.sleep).run())
        done, _ = await asyncio.wait([task, asyncio.create_task(enough.wait())], timeout=WAIT,
                                     return_when=asyncio.FIRST_COMPLETED)
        assert done, "scheduler neither fired enough nor finished"
        task.cancel()

    asyncio.run(scenario())
    return fired[:count], clock


def test_cron_fires_on_the_injected_clock() -> None:
    fired, clock = fire_times(Cron("*/15 * * * *"), datetime(2024, 1, 1, 10, 7, 30, tzinfo=UTC), 3)
    assert fired == [datetime(2024, 1, 1, 10, m, tzinfo=UTC) for m in (15, 30, 45)]
    assert clock.t >= fired[-1]


def test_scheduler_caps_each_sleep_so_clock_jumps_are_noticed() -> None:
    _, clock = fire_times(Cron("0 0 * * *"), datetime(2024, 1, 1, 0, 0, 1, tzinfo=UTC), 1)
    assert max(clock.sleeps) <= 60.0
    assert len(clock.sleeps) >= 24 * 60 - 1


def test_cron_spring_forward_runs_the_skipped_time_after_the_gap() -> None:
    # 2024-03-31 in Berlin: 02:00 jumps to 03:00, so 02:30 does not exist that day.
    start = datetime(2024, 3, 30, 12, 0, tzinfo=BERLIN)
    fired, _ = fire_times(Cron("30 2 * * *", tz="Europe/Berlin"), start, 3)
    assert [f.astimezone(BERLIN).isoformat() for f in fired] == [
        "2024-03-31T03:00:00+02:00",
        "2024-04-01T02:30:00+02:00",
        "2024-04-02T02:30:00+02:00",
    ]


def test_cron_fall_back_runs_a_repeated_time_once() -> None:
    # 2024-10-27 in Berlin: 02:00-03:00 happens twice.
    start = datetime(2024, 10, 26, 12, 0, tzinfo=BERLIN)
    fired, _ = fire_times(Cron("30 2 * * *", tz="Europe/Berlin"), start, 2)
    assert fired == [datetime(2024, 10, 27, 0, 30, tzinfo=UTC), datetime(2024, 10, 28, 1, 30, tzinfo=UTC)]
    # An every-30-minutes job does see both 02:30s, 60 real minutes apart.
    half_hourly = [next_run(Cron("*/30 * * * *", tz="Europe/Berlin"), datetime(2024, 10, 27, 0, 10, tzinfo=UTC))]
    for _ in range(3):
        half_hourly.append(next_run(Cron("*/30 * * * *", tz="Europe/Berlin"), half_hourly[-1]))
    assert [b - a for a, b in zip(half_hourly, half_hourly[1:])] == [timedelta(minutes=30)] * 3


def test_cron_local_time_keeps_its_hour_across_dst_in_utc_terms() -> None:
    nine_am_ny = Cron("0 9 * * *", tz="America/New_York")
    before = next_run(nine_am_ny, datetime(2024, 3, 9, 12, 0, tzinfo=UTC))
    after = next_run(nine_am_ny, datetime(2024, 3, 11, 0, 0, tzinfo=UTC))
    assert before == datetime(2024, 3, 9, 14, 0, tzinfo=UTC)  # EST, UTC-5
    assert after == datetime(2024, 3, 11, 13, 0, tzinfo=UTC)  # EDT, UTC-4


@pytest.mark.parametrize(
    ("expr", "words"),
    [("61 * * * *", "bad minute"), ("* * * *", "5 fields"), ("* * * * * *", "5 fields"), ("0 0 31 2 *", "day")],
)
def test_invalid_cron_raises_a_clear_value_error(expr: str, words: str) -> None:
    with pytest.raises(ValueError) as err:
        Cron(expr)
    assert expr in str(err.value) and words in str(err.value)


def test_schedules_validate_when_converted_from_config() -> None:
    assert msgspec.convert({"kind": "cron", "expr": "*/5 * * * *"}, Schedule) == Cron("*/5 * * * *")
    with pytest.raises(msgspec.ValidationError, match="unknown timezone 'Mars/Base'"):
        msgspec.convert({"kind": "cron", "expr": "* * * * *", "tz": "Mars/Base"}, Schedule)
    with pytest.raises(msgspec.ValidationError, match="positive"):
        msgspec.convert({"kind": "every", "seconds": 0}, Schedule)


def test_next_run_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_run(Every(60), datetime(2024, 1, 1))


def test_every_first_run_is_one_interval_after_start() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    fired, _ = fire_times(Every(60), start, 3)
    assert fired == [start + timedelta(seconds=s) for s in (60, 120, 180)]


def test_every_at_start_runs_at_once() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    assert first_run(Every(60, at_start=True), start) == start
    fired, _ = fire_times(Every(60, at_start=True), start, 2)
    assert fired == [start, start + timedelta(seconds=60)]


def test_every_resumes_from_now_after_falling_behind() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)

    def stall_once(clock: FakeClock) -> None:
        if clock.t == start + timedelta(seconds=60):
            clock.t += timedelta(seconds=250)  # the loop was stuck for four intervals

    fired, _ = fire_times(Every(60), start, 3, on_fire=stall_once)
    assert fired == [start + timedelta(seconds=s) for s in (60, 370, 430)]


def test_at_runs_once_and_then_the_schedule_ends() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    when = datetime(2024, 1, 1, 9, 30, tzinfo=UTC)
    fired, _ = fire_times(At(when), start, 1)
    assert fired == [when]
    assert next_run(At(when), when) is None

    async def ends() -> None:
        clock = FakeClock(start)
        scheduler = Scheduler(At(when), lambda due: None, now=clock.now, sleep=clock.sleep)
        await asyncio.wait_for(scheduler.run(), WAIT)
        assert scheduler.next_due is None

    asyncio.run(ends())


def test_at_in_the_past_never_runs() -> None:
    async def scenario() -> list[datetime]:
        fired: list[datetime] = []
        clock = FakeClock(datetime(2024, 6, 1, tzinfo=UTC))
        await asyncio.wait_for(Scheduler(At(datetime(2024, 1, 1, tzinfo=UTC)), fired.append,
                                         now=clock.now, sleep=clock.sleep).run(), WAIT)
        return fired

    assert asyncio.run(scenario()) == []


def test_at_without_offset_is_read_in_its_timezone() -> None:
    spec = msgspec.convert({"kind": "at", "when": "2024-07-01T09:00:00", "tz": "Europe/Berlin"}, Schedule)
    assert next_run(spec, datetime(2024, 1, 1, tzinfo=UTC)) == datetime(2024, 7, 1, 7, 0, tzinfo=UTC)


# ---- TaskRunner ---------------------------------------------------------------------------


class Gate:
    """A fake run: reports when it starts, then waits to be released with an exit code."""

    def __init__(self) -> None:
        self.started = 0
        self.started_event = asyncio.Event()
        self.release = asyncio.Event()
        self.cancelled = 0
        self.code = 0

    async def run(self) -> int:
        self.started += 1
        self.started_event.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return self.code


def finished(runner_kw: dict, count: int) -> tuple[TaskRunner, asyncio.Event, list[TaskRun]]:
    done: list[TaskRun] = []
    enough = asyncio.Event()

    def on_done(record: TaskRun) -> None:
        done.append(record)
        if len(done) >= count:
            enough.set()

    return TaskRunner(on_done=on_done, **runner_kw), enough, done


def test_overlapping_trigger_is_skipped_and_counted() -> None:
    async def scenario() -> None:
        gate = Gate()
        runner, enough, done = finished({"run": gate.run}, 1)
        assert runner.trigger()
        await asyncio.wait_for(gate.started_event.wait(), WAIT)
        assert not runner.trigger()
        assert not runner.trigger()
        assert (runner.skipped, runner.running, gate.started) == (2, 1, 1)
        gate.release.set()
        await asyncio.wait_for(enough.wait(), WAIT)
        assert [(r.outcome, r.exit_code) for r in done] == [("exited", 0)]
        assert runner.trigger()  # free again once the run ended
        await runner.aclose()

    asyncio.run(scenario())


def test_overlap_true_runs_concurrently() -> None:
    async def scenario() -> None:
        gate = Gate()
        runner, enough, done = finished({"run": gate.run, "overlap": True}, 2)
        assert runner.trigger() and runner.trigger()
        while gate.started < 2:  # both must be inside run() before either is released
            gate.started_event.clear()
            await asyncio.wait_for(gate.started_event.wait(), WAIT)
        assert (runner.running, runner.skipped) == (2, 0)
        gate.release.set()
        await asyncio.wait_for(enough.wait(), WAIT)
        assert [r.outcome for r in done] == ["exited", "exited"]

    asyncio.run(scenario())


def test_run_past_its_timeout_is_cancelled_and_recorded() -> None:
    async def scenario() -> None:
        gate = Gate()
        runner, enough, done = finished({"run": gate.run, "timeout": 0.05}, 1)
        runner.trigger(due=datetime(2024, 1, 1, tzinfo=UTC))
        await asyncio.wait_for(enough.wait(), WAIT)
        (record,) = done
        assert (record.outcome, record.exit_code, gate.cancelled) == ("timeout", None, 1)
        assert record.duration >= 0.05 and "0.05s" in (record.error or "")
        assert record.due == datetime(2024, 1, 1, tzinfo=UTC)

    asyncio.run(scenario())


def test_failing_run_is_recorded_not_raised() -> None:
    async def boom() -> int:
        raise FileNotFoundError("no such executable: backup.sh")

    async def scenario() -> None:
        runner, enough, done = finished({"run": boom}, 1)
        runner.trigger()
        await asyncio.wait_for(enough.wait(), WAIT)
        assert done[0].outcome == "error" and "backup.sh" in (done[0].error or "")

    asyncio.run(scenario())


def test_history_keeps_the_last_n_runs_in_order() -> None:
    codes = iter(range(5))

    async def quick() -> int:
        return next(codes)

    async def scenario() -> None:
        runner, _, done = finished({"run": quick, "keep": 3}, 5)
        for expected in range(1, 6):
            runner.trigger()
            while len(done) < expected:
                await asyncio.sleep(0)
        assert [r.exit_code for r in runner.history] == [2, 3, 4]
        assert all(isinstance(r.started, datetime) and r.duration >= 0 for r in runner.history)

    asyncio.run(asyncio.wait_for(scenario(), WAIT))


def test_aclose_cancels_runs_still_going() -> None:
    async def scenario() -> None:
        gate = Gate()
        runner, _, done = finished({"run": gate.run, "overlap": True}, 2)
        runner.trigger()
        runner.trigger()
        await asyncio.wait_for(gate.started_event.wait(), WAIT)
        await asyncio.wait_for(runner.aclose(), WAIT)
        assert runner.running == 0 and [r.outcome for r in done] == ["cancelled", "cancelled"]

    asyncio.run(scenario())


def test_wait_lets_a_run_going_finish_and_says_when_it_did_not() -> None:
    """Shutdown awaits a run going (stop_timeout) before aclose kills it: a run that ends in time is a success."""
    async def scenario() -> None:
        gate = Gate()
        runner, _, done = finished({"run": gate.run}, 1)
        assert await runner.wait(0.0)  # nothing going
        runner.trigger()
        await asyncio.wait_for(gate.started_event.wait(), WAIT)
        assert not await runner.wait(0.05) and runner.running == 1  # still going at the deadline, not cancelled
        asyncio.get_running_loop().call_soon(gate.release.set)
        assert await runner.wait(WAIT)
        await runner.aclose()
        assert [r.outcome for r in done] == ["exited"] and gate.cancelled == 0

    asyncio.run(scenario())


def test_scheduler_and_runner_skip_ticks_while_a_run_is_stuck() -> None:
    async def scenario() -> None:
        gate = Gate()
        runner = TaskRunner(gate.run)
        clock = FakeClock(datetime(2024, 1, 1, tzinfo=UTC))
        ticks = 0
        third = asyncio.Event()

        def on_due(due: datetime) -> None:
            nonlocal ticks
            ticks += 1
            runner.trigger(due)
            if ticks == 3:
                third.set()

        task = asyncio.create_task(Scheduler(Every(60), on_due, now=clock.now, sleep=clock.sleep).run())
        await asyncio.wait_for(third.wait(), WAIT)
        task.cancel()
        assert ticks >= 3 and (gate.started, runner.skipped) == (1, ticks - 1)
        await runner.aclose()

    asyncio.run(scenario())


# ---- end to end with a real process -------------------------------------------------------


def shell(command: str, pids: list[int]):
    """The smallest spawn callable the master could hand over: kills its process when cancelled."""

    async def run() -> int:
        proc = await asyncio.create_subprocess_exec("sh", "-c", command, start_new_session=True)
        pids.append(proc.pid)
        try:
            return await proc.wait()
        except asyncio.CancelledError:
            proc.kill()
            await proc.wait()
            raise

    return run


def test_real_command_exit_code_and_timeout_kill(tmp_path) -> None:
    async def scenario() -> None:
        pids: list[int] = []
        runner, enough, done = finished({"run": shell(f"echo ran > '{tmp_path}/out'; exit 3", pids)}, 1)
        runner.trigger()
        await asyncio.wait_for(enough.wait(), WAIT)
        assert (done[0].outcome, done[0].exit_code) == ("exited", 3)
        assert (tmp_path / "out").read_text() == "ran\n"

        slow, enough, done = finished({"run": shell("exec sleep 30", pids), "timeout": 0.2}, 1)
        slow.trigger()
        await asyncio.wait_for(enough.wait(), WAIT)
        assert done[0].outcome == "timeout" and done[0].duration < 5
        with pytest.raises(ProcessLookupError):
            os.kill(pids[-1], 0)  # killed and reaped

    asyncio.run(scenario())
