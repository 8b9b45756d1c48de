"""The bots of one procfile: started in dependency order once their dependencies are ready (RUNNING, and
healthy when they have checks), stopped in reverse order, and acted on by name, NAME:k or all."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

import msgspec

from ..config.procfile import BotConfig
from ..core.states import ALIVE, State
from .bot import Bot
from .instance import Instance, RestartCause


class Readiness(Protocol):
    """What the fleet asks of health checks before it starts a dependent (health/ implements it)."""

    def has_checks(self, bot: str) -> bool: ...

    async def wait_healthy(self, bot: str, timeout: float) -> bool: ...


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """What a start/stop/restart did, before control/ turns it into a reply."""

    message: str
    affected: list[str]
    ok: bool


class Fleet:
    def __init__(self, health: Readiness, logger: logging.Logger) -> None:
        self.bots: dict[str, Bot] = {}
        self.blocked: dict[str, str] = {}
        """Why a bot is not started (yet): what it waits for, or the dependency that never became healthy."""
        self.health = health
        self.gate: Callable[[BotConfig], str | None] = lambda config: None
        """Why a bot may not be started now (the kill switch); the master sets it."""
        self._log = logger
        self._starters: dict[str, asyncio.Task[None]] = {}

    def instances(self) -> list[Instance]:
        return [i for b in self.bots.values() for i in b.instances]

    async def stop_instance(self, inst: Instance, reason: str) -> None:
        await inst.stop(reason)

    async def restart_dependents(self, name: str, reason: str) -> None:
        """A health restart of each dependent's instances: counted and inside their restart budgets."""
        dependents = [i for b in self.bots.values() if name in b.config.depends_on for i in b.instances]
        for inst in dependents:
            self._log.info("%s: restarting (%s)", inst.name, reason)
        await asyncio.gather(*(inst.recycle(reason) for inst in dependents))

    async def restart_bot(self, name: str, reason: str, cause: RestartCause) -> None:
        """A restart by restart_cron or watch (`cause`)."""
        self._log.info("%s: restarting (%s)", name, reason)
        await self.act("restart", name, self.bots[name].instances, reason, cause)

    def start_bot(self, name: str, reason: str = "autostart") -> None:
        """Start once every dependency is ready; waits in the background so the caller never blocks."""
        starter = self._starters.get(name)
        if starter is None or starter.done():
            self._starters[name] = asyncio.get_running_loop().create_task(self._start_when_ready(name, reason))

    async def _start_when_ready(self, name: str, reason: str) -> None:
        bot = self.bots[name]
        held = self.gate(bot.config)
        if held:
            self._log.info("%s: not started (%s): %s", name, reason, held)
            return
        waiting = [d for d in bot.config.depends_on if not self.bots[d].ready.is_set()]
        if waiting:
            self.blocked[name] = f"waiting for {', '.join(waiting)} to be RUNNING"
            self._log.info("%s: %s", name, self.blocked[name])
            await asyncio.gather(*(self.bots[d].ready.wait() for d in waiting))
        checked = [d for d in bot.config.depends_on if self.health.has_checks(d)]
        if checked:
            timeout = bot.config.start_timeout
            self.blocked[name] = f"waiting for {', '.join(checked)} to pass health checks (start_timeout {bot.config.start_timeout})"
            self._log.info("%s: %s", name, self.blocked[name])
            healthy = await asyncio.gather(*(self.health.wait_healthy(d, timeout) for d in checked))
            failed = [d for d, ok in zip(checked, healthy) if not ok]
            if failed:
                self.blocked[name] = f"not started: {', '.join(failed)} not healthy within start_timeout {bot.config.start_timeout}"
                self._log.error("%s %s", name, self.blocked[name])
                return
        self.blocked.pop(name, None)
        await asyncio.gather(*(asyncio.shield(t) for t in bot.start(reason)))

    async def stop_bots(self, names: list[str], reason: str, retire: bool = False) -> None:
        """Stop in reverse dependency order: a bot stops only after every bot depending on it has.
        `retire` (shutdown, removal by reload): the instances refuse every later start."""
        loop = asyncio.get_running_loop()
        done: dict[str, asyncio.Future[None]] = {n: loop.create_future() for n in names}

        async def stop_one(name: str) -> None:
            dependents = [n for n in names if name in self.bots[n].config.depends_on]
            await asyncio.gather(*(done[d] for d in dependents))
            starter = self._starters.pop(name, None)
            if starter is not None:
                starter.cancel()
                self.blocked.pop(name, None)
            self._log.info("stopping %s (%s)", name, reason)
            await self.bots[name].stop(reason, retire)
            done[name].set_result(None)

        await asyncio.gather(*(stop_one(n) for n in names))

    def select(self, target: str | None) -> list[Instance] | str:
        """Instances named by `all`, `NAME` or `NAME:k`; a message when nothing matches."""
        if target in (None, "all"):
            return self.instances()
        name, _, k = target.partition(":")
        bot = self.bots.get(name)
        if bot is None:
            return f"no bot named {name!r}; bots: {', '.join(self.bots) or 'none'}"
        if not k:
            return list(bot.instances)
        if not k.isdigit() or int(k) >= len(bot.instances):
            return f"{name} has instances 0..{len(bot.instances) - 1}, not {k!r}"
        return [bot.instances[int(k)]]

    async def act(self, verb: str, target: str | None, selected: list[Instance], reason: str | None = None,
                  cause: RestartCause = "manual") -> Outcome:
        """`cause` is what a restart of a live instance counts as; restarting a stopped one is a start."""
        if verb in ("start", "restart"):
            held = {i.bot: why for i in selected if (why := self.gate(i.config))}
            if held:
                return Outcome(message=f"refused to {verb} {', '.join(held)}: {next(iter(held.values()))}; "
                               "release it with: supctl kill-switch off", affected=[], ok=False)
        if verb == "restart":
            for inst in selected:
                if inst.state in ALIVE or inst.state == State.BACKOFF:
                    inst.count_restart(cause)
        whole_bots = target is not None and ":" not in target
        names = list(self.bots) if target == "all" else [target] if whole_bots else []
        reason = reason or f"{verb} requested"
        if names and verb in ("stop", "restart"):
            await self.stop_bots(names, reason)
        elif verb == "stop":
            await asyncio.gather(*(i.stop(reason) for i in selected))
        if names and verb in ("start", "restart"):
            for name in names:
                self.start_bot(name, reason)
            await self._settle(selected, [self._starters[n] for n in names])
        elif verb == "restart":
            await asyncio.gather(*(i.restart(reason) for i in selected))
            await self._settle(selected, [])
        elif verb == "start":
            await self._settle(selected, [i.start(reason) for i in selected])
        ok = all(i.state == (State.STOPPED if verb == "stop" else State.RUNNING) or (verb == "stop" and i.state in (State.EXITED, State.FATAL)) for i in selected)
        return Outcome(message=", ".join(f"{i.name} {i.state.value}" for i in selected), affected=[i.name for i in selected], ok=ok)

    async def _settle(self, selected: list[Instance], starters: list[asyncio.Task[None]]) -> None:
        """Wait (bounded) until dependencies let the bots start and the instances are RUNNING or failed for good."""
        bound = max((i.config.start_grace for i in selected), default=0.0) * 2 + 5.0

        async def settled() -> None:
            await asyncio.gather(*(asyncio.shield(t) for t in starters), return_exceptions=True)
            await asyncio.gather(*(i.wait_settled() for i in selected))

        try:
            await asyncio.wait_for(settled(), bound)
        except TimeoutError:
            pass
