"""Wire rows built from the engine's, health's and jobs' own records: the only place those meet the protocol."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import msgspec

from ..core.states import ALIVE, State
from ..engine.fleet import Outcome
from ..engine.instance import Instance
from ..engine.kill_switch import KillSwitchState
from ..engine.instance import KILLED_AFTER_TIMEOUT, ExitInfo
from ..health.target import HealthBoard
from .protocol import (
    ActionReply,
    HealthEntry,
    HealthState,
    InstanceStatus,
    KillSwitchStatus,
    LastExit,
    MasterInfo,
    StopWait,
    Summary,
    TaskRow,
    TaskRunRow,
)
from .usage import Usage

if TYPE_CHECKING:  # records of checks and tasks: a master without either never loads their modules
    from ..health.runner import Record
    from ..jobs.schedule import TaskRun
    from ..jobs.tasks import ScheduledTask


def instance_rows(instances: list[Instance], usage: Usage) -> list[InstanceStatus]:
    alive = {i.pid: i for i in instances if i.state in ALIVE and i.pid is not None}
    sampled = usage.sample(list(alive))
    rows = []
    for inst in instances:
        pid = inst.pid if inst.pid in alive and alive[inst.pid] is inst else None
        cpu, rss = sampled.get(pid, (None, None)) if pid else (None, None)
        rows.append(InstanceStatus(
            bot=inst.bot, instance=inst.index, state=inst.state.value, pid=pid, uptime=inst.uptime(),
            restarts=inst.restarts, last_exit=last_exit(inst.last_exit) if inst.last_exit else None, cpu=cpu, rss=rss,
            log_lost=inst.log.lost_bytes, next_try_at=inst.next_try_at if inst.state == State.BACKOFF else None,
        ))
    return rows


def last_exit(e: ExitInfo) -> LastExit:
    return LastExit(code=e.code, signal=e.signal, after_s=round(e.uptime, 3), at=e.at, reason=e.reason)


def health_state(inst: Instance, board: HealthBoard, blocked: str | None) -> HealthState | None:
    """A dependency holding a stopped bot back, else what its checks (or a circuit breaker) say."""
    if blocked is not None and inst.state == State.STOPPED:
        return HealthState(state="waiting", reason=blocked)
    checks = board.of(inst)
    if checks is None:
        return None
    state, reason, _ = checks.summary()
    return HealthState(state=state, reason=reason, since=checks.since)  # type: ignore[arg-type]


def run_row(run: TaskRun) -> TaskRunRow:
    return TaskRunRow(started=run.started.isoformat(timespec="seconds"), duration=run.duration, outcome=run.outcome,
                      exit_code=run.exit_code, error=run.error)


def task_row(task: ScheduledTask) -> TaskRow:
    from ..jobs.tasks import describe  # loaded already: there is a task

    due = task.scheduler.next_due
    return TaskRow(name=task.name, schedule=describe(task.config), next_run=due.isoformat() if due else None,
                   running=task.runner.running, skipped=task.runner.skipped, runs=[run_row(r) for r in task.runner.history])


def health_entry(record: Record) -> HealthEntry:
    return HealthEntry(**msgspec.structs.asdict(record))


def action_reply(outcome: Outcome) -> ActionReply:
    return ActionReply(message=outcome.message, affected=outcome.affected, ok=outcome.ok)


def kill_switch_row(state: KillSwitchState) -> KillSwitchStatus:
    return KillSwitchStatus(**msgspec.structs.asdict(state))


def summary(master: MasterInfo, instances: list[Instance], health: Callable[[Instance], str | None]) -> Summary:
    """Counts for `supctl ls`; an instance counts as unhealthy when its health is anything but healthy."""
    unhealthy = 0
    for inst in instances:
        h = health(inst)
        unhealthy += h is not None and h != "healthy"
    return Summary(master=master, bots=len({i.bot for i in instances}), instances=len(instances),
                   running=sum(i.state == State.RUNNING for i in instances),
                   fatal=sum(i.state == State.FATAL for i in instances), unhealthy=unhealthy)


def stop_waits(instances: list[Instance]) -> list[StopWait]:
    """The instances a stop would signal now, with their stop signal and how long before SIGKILL."""
    return [StopWait(name=i.name, signal=i.config.signum().name, timeout_s=float(i.config.stop_timeout))
            for i in instances if i.state in (State.STARTING, State.RUNNING, State.STOPPING)]


def killed_since(instances: list[Instance], began: float) -> list[str]:
    """Instances whose process, ended after `began`, needed SIGKILL after stop_timeout."""
    return [i.name for i in instances
            if i.last_exit is not None and i.last_exit.at >= began and i.last_exit.reason == KILLED_AFTER_TIMEOUT]
