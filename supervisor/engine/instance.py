"""One instance of a bot: spawn, watch, restart with backoff inside the budget, stop the whole group."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import msgspec

from ..config.procfile import BotConfig
from ..core import states
from ..core.backoff import RestartBudget, backoff_delay
from ..core.errors import SpawnError
from ..core.states import State
from ..output.rotating import RotatingLog
from .boxes import Box
from .flag import Flag
from .spawn import OS_PROCESSES, Child, Processes

if TYPE_CHECKING:
    import random

KILL_WAIT = 5.0
"""After SIGKILL (cgroup.kill), how long to wait for the box to empty before a restart goes ahead anyway."""


KILLED_AFTER_TIMEOUT = "SIGKILL after stop_timeout"

RestartCause = Literal["exit", "health", "manual", "cron", "watch"]
"""Why an instance was restarted: its process ended on its own (a crash, or an exit under restart = "always"), a
health recovery recycled it, or a restart verb (supctl, HTTP), restart_cron or watch restarted it."""


class ExitInfo(msgspec.Struct, frozen=True):
    code: int | None
    signal: str | None
    uptime: float
    reason: str
    at: float = 0.0
    """When it ended (epoch seconds)."""

    def describe(self) -> str:
        how = f"signal {self.signal}" if self.signal else f"code {self.code}" if self.code is not None else "not started"
        return f"{how} after {self.uptime:.2f}s" + (f": {self.reason}" if self.reason else "")


class Transition(msgspec.Struct, frozen=True):
    bot: str
    instance: int
    old: str
    new: str
    reason: str
    pid: int | None
    at: float


class Launch(msgspec.Struct, frozen=True):
    """Everything needed to start the process, resolved by the master from the procfile.

    The environment is kept in two parts: what every instance of the bot shares (one dict for all of them,
    ~1.5 KiB saved per instance) and this instance's own variables, laid over it at each spawn."""

    argv: list[str]
    cwd: Path
    shared_env: dict[str, str]
    own_env: dict[str, str]

    @property
    def env(self) -> dict[str, str]:
        return {**self.shared_env, **self.own_env}


class Instance:
    """Drives one OS process through states.py; the master is told of every transition."""

    # slots: a fleet of 1,000 instances saves ~1.3 MiB of per-instance __dict__s
    __slots__ = ("_budget", "_child", "attempt", "_clock", "_epoch", "_gate", "_guard", "_killed", "_last_verb", "_logger",
                 "_on_transition", "_processes", "_recycling", "_retired", "_rng", "_settled", "_sleep", "_spawned",
                 "_stop_requested", "_task", "bot", "box", "config", "index", "last_exit", "launch", "log", "next_try_at",
                 "on_spawn", "pid", "restarts", "restarts_by", "started_at", "state")

    def __init__(self, bot: str, index: int, config: BotConfig, launch: Launch, log: RotatingLog,
                 on_transition: Callable[[Transition], None], logger: logging.Logger,
                 box: Box, rng: random.Random | None = None, guard: Callable[[int, bool], None] | None = None,
                 gate: Callable[[BotConfig], str | None] = lambda config: None, processes: Processes = OS_PROCESSES,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        self.bot = bot
        self.index = index
        self.config = config
        self.launch = launch
        self.log = log
        self.state = State.STOPPED
        self.pid: int | None = None
        self.started_at: float | None = None
        self.restarts = 0
        """Restarts after an exit or a recycle (what the restart budget spends), shown as status's `restarts`."""
        self.restarts_by: dict[RestartCause, int] = {}
        """Every restart since the master started by cause (RestartCause), for supctl_instance_restarts_total."""
        self.last_exit: ExitInfo | None = None
        self.next_try_at: float | None = None
        """While in BACKOFF: when the next start is due (epoch seconds)."""
        self._killed = False
        """The current process needed SIGKILL after stop_timeout."""
        self.on_spawn: Callable[[], None] | None = None
        """Told right after each spawn (the health checks of this instance start on it)."""
        self._on_transition = on_transition
        self._logger = logger
        self._rng = rng
        """None: the random module's own generator, shared by every instance (a Random holds 2.5 KiB of state)."""
        self._guard = guard
        self.box = box
        self._gate = gate
        """Why the instance may not start (the kill switch), asked before every start and every restart."""
        self._processes, self._clock, self._sleep = processes, clock, sleep
        """The OS, the monotonic clock and the backoff sleep, injectable so unit tests run without processes."""
        self._budget = RestartBudget(config.restart_limit.count, config.restart_limit.window)
        self.attempt = 0
        """Backoffs since the last long run: the next one waits backoff_delay(attempt) (`supctl describe` shows it)."""
        self._child: Child | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop_requested = False
        self._last_verb: asyncio.Task[None] | None = None
        self._epoch = 0
        """Bumped by every stop: a start or restart asked for before it is refused when its turn comes."""
        self._retired = False
        self._recycling: str | None = None
        self._settled = Flag()
        self._spawned = Flag()

    @property
    def budget(self) -> RestartBudget:
        """The restart budget, read by `supctl describe`."""
        return self._budget

    @property
    def name(self) -> str:
        return f"{self.bot}:{self.index}"

    def _set(self, new: State, reason: str) -> None:
        old = self.state
        states.check_transition(old, new)
        self.state = new
        self._logger.info("%s %s -> %s (%s)", self.name, old.value, new.value, reason)
        self._on_transition(Transition(self.bot, self.index, old.value, new.value, reason, self.pid, time.time()))
        if new in states.SETTLED:
            self._settled.set()
        else:
            self._settled.clear()

    async def wait_settled(self) -> State:
        await self._settled.wait()
        return self.state

    def start(self, reason: str = "start requested") -> asyncio.Task[None]:
        """Queue a start (a no-op when already supervised); a stop asked for after this call wins over it."""
        epoch = self._epoch
        return self._enqueue(lambda: self._start(reason, epoch), "start")

    async def stop(self, reason: str = "stop requested", retire: bool = False) -> None:
        """stop_signal to the group, SIGKILL after stop_timeout; returns when STOPPED. Every start or restart asked
        for before this call and still queued is refused; `retire` (shutdown, removal) refuses every later one too."""
        self._epoch += 1
        self._retired = self._retired or retire
        await asyncio.shield(self._enqueue(lambda: self._stop(reason), "stop"))

    async def restart(self, reason: str = "restart requested") -> None:
        """Stop, then start, as one verb so nothing can slip between (a recovery's restart is `recycle`)."""
        epoch = self._epoch

        async def restart() -> None:
            await self._stop(reason)
            await self._start(reason, epoch)

        await asyncio.shield(self._enqueue(restart, "restart"))

    def _enqueue(self, step: Callable[[], Awaitable[None]], verb: str) -> asyncio.Task[None]:
        """Verbs run one at a time, in the order they were asked for: the one supervise task is only ever
        started or ended here, so two verbs can never race over it."""
        before = self._last_verb

        async def turn() -> None:
            if before is not None and not before.done():
                await asyncio.wait([before])
            await step()

        self._last_verb = task = asyncio.get_running_loop().create_task(turn(), name=f"{verb} {self.name}")
        task.add_done_callback(self._forget_verb)
        return task

    def _forget_verb(self, task: asyncio.Task[None]) -> None:
        if self._last_verb is task:  # an idle instance holds no finished task
            self._last_verb = None

    def _supervised(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _start(self, reason: str, epoch: int) -> None:
        if self._retired or epoch != self._epoch:
            why = "the instance was removed or the master is shutting down" if self._retired else "a stop was asked for after it"
            self._logger.info("%s: start (%s) refused: %s", self.name, reason, why)
            return
        if self._supervised():
            return
        held = self._gate(self.config)
        if held:
            self._logger.info("%s: not started (%s): %s", self.name, reason, held)
            return
        self._stop_requested = False
        if self._budget.used:
            self._logger.info("%s: restart budget reset (%d of %d used): %s", self.name, self._budget.used,
                              self._budget.count, reason)
        self._budget.reset()
        self._settled.clear()
        self._task = asyncio.get_running_loop().create_task(self._supervise(reason), name=f"supervise {self.name}")

    async def _supervise(self, reason: str) -> None:
        self.attempt = 0
        while not self._stop_requested:
            self._set(State.STARTING, reason)
            exit_info, was_running = await self._run_once()
            if self._stop_requested:
                self.last_exit = exit_info
                return
            recycled, self._recycling = self._recycling, None
            if recycled is not None:
                exit_info = msgspec.structs.replace(exit_info, reason=recycled)
            self.last_exit = exit_info
            if was_running and exit_info.uptime >= self.config.backoff.max:
                self.attempt = 0
            if recycled is None and not self._should_restart(exit_info, was_running):
                self._set(State.EXITED, f"exited with {exit_info.describe()}; restart = {self.config.restart}")
                return
            if not self._budget.spend(self._clock()):
                limit = self.config.restart_limit
                self._set(State.FATAL, f"exited with {exit_info.describe()}; more than {limit.count} restarts in {limit.window}: "
                                       f"manual intervention needed (supctl start {self.name})")
                return
            b = self.config.backoff
            delay = backoff_delay(self.attempt, b.initial, b.factor, b.max, b.jitter, self._rng)
            self.attempt += 1
            self.restarts += 1
            self.count_restart("exit" if recycled is None else "health")
            self.next_try_at = time.time() + delay
            self._set(State.BACKOFF, f"exited with {exit_info.describe()}; restart {self.restarts} in {delay:.3f}s")
            await self._sleep(delay)
            held = self._gate(self.config)
            if held:
                self._set(State.STOPPED, f"not restarted: {held}")
                return
            reason = f"restart after backoff {delay:.3f}s"

    def count_restart(self, cause: RestartCause) -> None:
        self.restarts_by[cause] = self.restarts_by.get(cause, 0) + 1

    def _should_restart(self, exit_info: ExitInfo, was_running: bool) -> bool:
        policy = self.config.restart
        if policy == "always":
            return True
        if policy == "never":
            return False
        clean = exit_info.signal is None and exit_info.code in self.config.success_codes
        return not clean or not was_running

    async def _run_once(self) -> tuple[ExitInfo, bool]:
        """One process lifetime: returns how it ended and whether it reached RUNNING."""
        began = self._clock()
        self._killed = False
        self._spawned.clear()
        try:
            self._child = await self._processes.spawn(self.launch.argv, self.launch.cwd, self.launch.env, self.log, self._guard, self.box)
            self.pid = self._child.pid
        except SpawnError as e:
            self.pid, self._child = None, None
            return ExitInfo(None, None, 0.0, str(e), time.time()), False
        finally:
            self._spawned.set()
        self.started_at = time.time()
        if self.on_spawn is not None:
            self.on_spawn()
        was_running = False
        code: int | None = None
        with contextlib.suppress(TimeoutError):
            code = await asyncio.wait_for(asyncio.shield(self._child.exited), self.config.start_grace)
        if code is None:  # awaited outside the except: a handled TimeoutError held its traceback's frames and futures
            if self.state == State.STARTING:  # not when a stop already moved us to STOPPING
                was_running = True
                self._set(State.RUNNING, f"pid {self.pid} up for {self.config.start_grace}")
            code = await asyncio.shield(self._child.exited)
        uptime = self._clock() - began
        if not self._stop_requested:
            await self._reap_box()
        sig = signal.Signals(-code).name if code < 0 else None
        why = KILLED_AFTER_TIMEOUT if self._killed else "" if was_running else "exited before start_grace"
        return ExitInfo(None if sig else code, sig, uptime, why, time.time()), was_running

    async def _reap_box(self) -> None:
        """The leader is gone: anything left in its box goes too, so a restart never doubles up."""
        if self.pid is not None:
            self.box.kill()
            if not await self.box.wait_empty(KILL_WAIT):
                self._logger.warning("%s: processes %s still alive %gs after SIGKILL", self.name, self.box.members(), KILL_WAIT)
            if self._guard:
                self._guard(self.pid, False)

    async def recycle(self, reason: str) -> bool:
        """A health restart: end this process (stop_signal, then SIGKILL) and restart it as after a crash.

        It counts in `restarts` and spends the restart budget, so a bot that keeps failing its checks
        ends FATAL with `reason`. False when there is no process to end (not spawned yet, stopping, gone).
        It starts nothing itself: the supervise loop restarts after the exit unless a stop, shutdown or
        removal came meanwhile (a stop wins over a recovery), and asks the kill switch first.
        """
        child = self._child
        if self.state not in (State.STARTING, State.RUNNING) or not self._spawned.is_set() or child is None \
                or child.exited.done() or self._stop_requested:
            return False
        self._recycling = reason
        self._set(State.STOPPING, reason)
        await self._terminate_group(child)
        return True

    async def _stop(self, reason: str) -> None:
        self._stop_requested = True
        task, self._task = self._task, None
        if self.state == State.STARTING:
            await self._spawned.wait()
        child = self._child
        if self.state in (State.STARTING, State.RUNNING) and child is not None:
            self._set(State.STOPPING, reason)
            await self._terminate_group(child)
        if task is not None:
            if self.state == State.BACKOFF:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.state == State.STARTING:  # the spawn failed: there was no process to stop
            self._set(State.STOPPING, reason)
        if self.state in (State.STOPPING, State.BACKOFF):
            self._set(State.STOPPED, reason)
        self._settled.set()

    async def _terminate_group(self, child: Child) -> None:
        """stop_signal, then SIGCONT so a stopped bot can act on it (as systemd does), to the group and every other
        process of the box; SIGKILL to the box at stop_timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.stop_timeout
        for sig in (self.config.signum(), signal.SIGCONT):
            self._processes.kill_group(child.pid, sig)
            self.box.signal(sig)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(child.exited), self.config.stop_timeout)
        if not await self.box.wait_empty(max(0.0, deadline - loop.time())):
            self.box.kill()
            self._killed = True
            self._logger.warning("%s: processes still alive after stop_timeout %s, sent SIGKILL", self.name, self.config.stop_timeout)
            await self.box.wait_empty(KILL_WAIT)
        await asyncio.shield(child.exited)
        if self._guard:
            self._guard(child.pid, False)

    def send_signal(self, sig: int) -> bool:
        return self.pid is not None and self.state in states.ALIVE and self._processes.kill_group(self.pid, sig)

    def uptime(self) -> float | None:
        return time.time() - self.started_at if self.started_at and self.state == State.RUNNING else None
