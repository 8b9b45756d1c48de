"""One [bots.NAME] entry: its instances started and stopped together, and when it counts as ready."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ..config.paths import log_name
from ..config.procfile import BotConfig, Procfile
from ..core.states import State
from ..output.rotating import RotatingLog
from .boxes import Containment, instance_key
from .instance import Instance, Launch, Transition


def launches(procfile: Procfile, name: str, base_env: dict[str, str],
             instance_env: Callable[[str, int], dict[str, str]]) -> list[Launch]:
    """argv, cwd and environment of each instance (PYTHONUNBUFFERED=1 unless the procfile says otherwise, pm2 #3076).

    What the instances share (argv, the resolved cwd, the environment but SUPCTL_INSTANCE and the bus token)
    is worked out once for the bot: per instance it was ~100 us of path resolving and dict copying before spawn."""
    bot = procfile.bots[name]
    argv, cwd = bot.argv(), procfile.bot_cwd(name)
    shared = {**base_env, "PYTHONUNBUFFERED": "1", **procfile.bot_env(name), "SUPCTL_BOT": name}
    return [Launch(argv=argv, cwd=cwd, shared_env=shared, own_env={"SUPCTL_INSTANCE": str(k), **instance_env(name, k)})
            for k in range(bot.instances)]


class Bot:
    def __init__(self, name: str, procfile: Procfile, base_env: dict[str, str],
                 on_transition: Callable[[Transition], None], logger: logging.Logger, boxes: Containment,
                 guard: Callable[[int, bool], None] | None = None,
                 instance_env: Callable[[str, int], dict[str, str]] = lambda bot, k: {},
                 gate: Callable[[BotConfig], str | None] = lambda config: None) -> None:
        self.name = name
        self.config: BotConfig = procfile.bots[name]
        self.ready = asyncio.Event()
        logcfg = procfile.log_config(name)
        logs_dir = procfile.state_dir / "logs"
        self.instances: list[Instance] = []
        for k, launch in enumerate(launches(procfile, name, base_env, instance_env)):
            log = RotatingLog(logs_dir / log_name(name, k, self.config.instances), logcfg.max_size, logcfg.backups, logcfg.timestamps)
            self.instances.append(Instance(name, k, self.config, launch, log, on_transition, logger, boxes.box(instance_key(name, k)),
                                           guard=guard, gate=gate))

    def update_ready(self) -> None:
        """Ready = every instance RUNNING; dependents wait on this event."""
        if all(i.state == State.RUNNING for i in self.instances):
            self.ready.set()
        else:
            self.ready.clear()

    def start(self, reason: str = "start requested") -> list[asyncio.Task[None]]:
        return [inst.start(reason) for inst in self.instances]

    async def stop(self, reason: str = "stop requested", retire: bool = False) -> None:
        await asyncio.gather(*(inst.stop(reason, retire) for inst in self.instances))

    def close_logs(self) -> None:
        for inst in self.instances:
            inst.log.close()
