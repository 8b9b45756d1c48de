"""What the master answers on control.sock: one handler per request type, looked up in a table."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from ..bus.frames import BusStats
from ..bus.state import FleetDegradation
from ..core import fds
from ..core.commands import parse_signal
from ..engine.fleet import Fleet
from ..engine.kill_switch import KillSwitch
from .protocol import (
    Action,
    ActionReply,
    BridgeStatus,
    BusTokenReply,
    BusTokenRequest,
    DegradationStatus,
    DescribeRequest,
    Error,
    FdUsage,
    Flush,
    Frame,
    HealthReply,
    HealthRequest,
    HealthRow,
    KillSwitchReply,
    KillSwitchRequest,
    MasterInfo,
    Reload,
    Response,
    RunReply,
    RunTask,
    Shutdown,
    SignalRequest,
    StatusReply,
    StatusRequest,
    StopPlan,
    StopPlanRequest,
    Summary,
    SummaryRequest,
    TasksReply,
    TasksRequest,
)
from .rows import (
    action_reply,
    health_entry,
    health_state,
    instance_rows,
    kill_switch_row,
    killed_since,
    run_row,
    stop_waits,
    summary,
    task_row,
)
from .usage import Usage

if TYPE_CHECKING:
    from ..health.target import HealthBoard
    from ..jobs.tasks import ScheduledTask

MAX_REASON = 500
"""A kill switch reason goes into logs, a metric label and a retained bus message: a sentence, not a file."""


class Handlers:
    """The parts a request may read or act on are handed in by the master; nothing here wires them together."""

    def __init__(self, master: MasterInfo, fleet: Fleet, health: HealthBoard, tasks: Mapping[str, ScheduledTask],
                 bus_stats: Callable[[], dict[tuple[str, int], BusStats]], reload: Callable[[], Awaitable[Response]],
                 shutdown: Callable[[], Awaitable[None]], kill_switch: KillSwitch,
                 bridge_status: Callable[[], BridgeStatus | None] = lambda: None, *,
                 bus_token: Callable[[], tuple[str, str]],
                 degradation: Callable[[], FleetDegradation | None] = lambda: None) -> None:
        self.master = master
        self.procfile_path = master.procfile
        self._bus_token = bus_token
        self._fleet, self._health, self._tasks, self._bus_stats = fleet, health, tasks, bus_stats
        self._reload, self._shutdown, self.bridge_status = reload, shutdown, bridge_status
        self.kill_switch = kill_switch
        self._stopping: set[asyncio.Task[None]] = set()
        """Stops a bus request on the kill switch started (kept referenced until they end)."""
        self.degradation = degradation
        self._usage = Usage()
        self._table: dict[type[Frame], Callable[[Any], Awaitable[Response]]] = {
            Reload: self._on_reload, Shutdown: self._on_shutdown, TasksRequest: self._on_tasks, RunTask: self._on_run_task,
            HealthRequest: self._on_health, StatusRequest: self._on_status, SignalRequest: self._on_signal,
            Action: self._on_action, KillSwitchRequest: self._on_kill_switch, SummaryRequest: self._on_summary,
            BusTokenRequest: self._on_bus_token,
            StopPlanRequest: self._on_stop_plan, Flush: self._on_flush, DescribeRequest: self._on_describe,
        }

    async def handle(self, request: Frame) -> Response:
        handler = self._table.get(type(request))
        if handler is None:
            return Error(message=f"unsupported request {type(request).__name__}")
        return await handler(request)

    async def _on_bus_token(self, request: BusTokenRequest) -> Response:
        token, path = self._bus_token()
        return BusTokenReply(token=token, path=path)

    async def _on_reload(self, request: Reload) -> Response:
        return await self._reload()

    async def _on_shutdown(self, request: Shutdown) -> Response:
        began = time.time()
        await self._shutdown()
        return ActionReply(message="all bots stopped, master exiting", killed=killed_since(self._fleet.instances(), began))

    async def _on_tasks(self, request: TasksRequest) -> Response:
        return TasksReply(tasks=[task_row(t) for t in self._tasks.values()])

    async def _on_run_task(self, request: RunTask) -> Response:
        task = self._tasks.get(request.name)
        if task is None:
            return Error(message=f"no task named {request.name!r}; tasks: {', '.join(self._tasks) or 'none'}")
        run = await task.run_now()
        if run is None:
            return Error(message=f"task {request.name} is still running and overlap = false; skipped")
        return RunReply(name=request.name, run=run_row(run))

    async def _on_health(self, request: HealthRequest) -> Response:
        selected = self._fleet.select(request.target)
        if isinstance(selected, str):
            return Error(message=selected)
        rows = []
        for inst in selected:
            checks = self._health.of(inst)
            records = [health_entry(r) for r in checks.runner.history()] if checks else []
            rows.append(HealthRow(bot=inst.bot, instance=inst.index,
                                  summary=self._health.describe(inst) or "no health checks", records=records))
        return HealthReply(instances=rows)

    async def _on_status(self, request: StatusRequest) -> Response:
        selected = self._fleet.select(request.target)
        if isinstance(selected, str):
            return Error(message=selected)
        rows = instance_rows(selected, self._usage)
        bus = self._bus_stats()
        for row, inst in zip(rows, selected):
            stats = bus.get((inst.bot, inst.index))
            if stats is not None and (stats.connected or stats.msgs_in or stats.msgs_out):
                row.bus = f"{'on' if stats.connected else 'off'} {stats.msgs_in}/{stats.msgs_out}/{stats.dropped}"
                row.bus += f" refused {stats.refused}" if stats.refused else ""
            row.health = health_state(inst, self._health, self._fleet.blocked.get(inst.bot))
        report = fds.report(sum(len(b.instances) for b in self._fleet.bots.values()))
        level = self.degradation()
        return StatusReply(master=self.master, instances=rows, kill_switch=kill_switch_row(self.kill_switch.state), bridge=self.bridge_status(),
                           degradation=msgspec.convert(msgspec.to_builtins(level), DegradationStatus) if level else None,
                           fds=FdUsage(open=report.open, soft=report.soft, hard=report.hard, needed=report.needed))

    async def _on_summary(self, request: SummaryRequest) -> Summary:
        reply = summary(self.master, self._fleet.instances(), self._health.describe)
        if self.kill_switch.state.active:
            reply.kill_switch = kill_switch_row(self.kill_switch.state)
        bridge = self.bridge_status()
        reply.nats = bridge.state if bridge is not None else None
        return reply

    async def _on_signal(self, request: SignalRequest) -> Response:
        selected = self._fleet.select(request.target)
        if isinstance(selected, str):
            return Error(message=selected)
        try:
            sig = parse_signal(request.signal)
        except ValueError as e:
            return Error(message=str(e))
        sent = [i.name for i in selected if i.send_signal(sig)]
        return ActionReply(message=f"sent {sig.name} to {len(sent)} instance(s)", affected=sent, ok=bool(sent))

    async def _on_action(self, request: Action) -> Response:
        selected = self._fleet.select(request.target)
        if isinstance(selected, str):
            return Error(message=selected)
        began = time.time()
        reply = action_reply(await self._fleet.act(request.verb, request.target, selected))
        reply.killed = killed_since(selected, began)
        return reply

    async def _on_flush(self, request: Flush) -> Response:
        selected = self._fleet.select(request.target)
        if isinstance(selected, str):
            return Error(message=selected)
        freed = sum(inst.log.clear() for inst in selected)
        names = [i.name for i in selected]
        return ActionReply(message=f"emptied the logs of {', '.join(names)} ({freed} bytes)", affected=names)

    async def _on_describe(self, request: DescribeRequest) -> Response:
        bot = self._fleet.bots.get(request.target.partition(":")[0])
        if bot is None:
            return Error(message=f"no bot named {request.target!r}; bots: {', '.join(self._fleet.bots) or 'none'}")
        rows = instance_rows(bot.instances, self._usage)
        for row, inst in zip(rows, bot.instances):
            row.health = health_state(inst, self._health, self._fleet.blocked.get(inst.bot))
        from .describe import describe_bot  # loaded at the first describe, not by every master

        return describe_bot(bot, rows, self._health)

    async def _on_stop_plan(self, request: StopPlanRequest) -> Response:
        selected = self._fleet.select(request.target)
        if isinstance(selected, str):
            return Error(message=selected)
        return StopPlan(waits=stop_waits(selected))

    async def _on_kill_switch(self, request: KillSwitchRequest) -> Response:
        if request.activate is None:
            return KillSwitchReply(state=kill_switch_row(self.kill_switch.state))
        reason = request.reason.strip()
        why = kill_switch_refusal(request.activate, reason)
        if why:
            return Error(message=why)
        stopped = await self.kill_switch.set(request.activate, reason, request.by, self._fleet)
        return KillSwitchReply(state=kill_switch_row(self.kill_switch.state), stopped=stopped)

    def change_kill_switch(self, activate: bool, reason: str, by: str) -> KillSwitchReply | Error:
        """The kill switch from a bot's bus request: changed and announced now, its bots stopped after the reply
        (`stopped` names them), so the asker hears the answer even when the switch holds it too."""
        reason = reason.strip()
        why = kill_switch_refusal(activate, reason)
        if why:
            return Error(message=why)
        held = self.kill_switch.change(activate, reason, by, self._fleet)
        if held:
            task = asyncio.get_running_loop().create_task(self._fleet.stop_bots(held, f"kill switch: {reason}"))
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)
        return KillSwitchReply(state=kill_switch_row(self.kill_switch.state), stopped=held)


def kill_switch_refusal(activate: bool, reason: str) -> str | None:
    if activate and not reason:
        return "activating the kill switch needs a reason (who reads it later wants to know why)"
    if len(reason) > MAX_REASON:
        return f"the kill switch's reason is {len(reason)} characters; at most {MAX_REASON}"
    return None
