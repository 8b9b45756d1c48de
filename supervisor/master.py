"""The composition root: builds every part from a procfile, owns signals, start order and shutdown."""

from __future__ import annotations

import asyncio
import logging
import logging.handlers
import os
import signal
import sys
from pathlib import Path

from . import config
from .bot import Bot
from .config import Procfile
from .guard import Guard
from .process import Transition

log = logging.getLogger("supctl")


def setup_logging(procfile: Procfile, foreground: bool) -> None:
    """The master's own log: state_dir/logs/supervisor.log (rotated like bot logs), plus stderr in the foreground."""
    logs_dir = procfile.state_dir / "logs"
    logs_dir.mkdir(parents=True, exist_ok=True)
    cfg = procfile.supervisor.log
    handler = logging.handlers.RotatingFileHandler(logs_dir / "supervisor.log", maxBytes=cfg.max_bytes, backupCount=cfg.backups)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    handlers: list[logging.Handler] = [handler]
    if foreground:
        handlers.append(logging.StreamHandler(sys.stderr))
    for h in handlers:
        h.setFormatter(fmt)
    log.handlers[:] = handlers
    log.setLevel(logging.INFO)
    log.propagate = False


def make_state_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    (path / "logs").mkdir(exist_ok=True)
    os.chmod(path / "logs", 0o700)


class Master:
    def __init__(self, procfile: Procfile) -> None:
        self.procfile = procfile
        self.bots: dict[str, Bot] = {}
        self.guard = Guard(log)
        self._shutdown = asyncio.Event()
        self._starters: dict[str, asyncio.Task[None]] = {}

    def _on_transition(self, t: Transition) -> None:
        bot = self.bots.get(t.bot)
        if bot is not None:
            bot.update_ready()

    def _request_shutdown(self, signame: str) -> None:
        log.info("received %s: shutting down", signame)
        self._shutdown.set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._request_shutdown, sig.name)
        log.info("master pid %d starting procfile %s with %d bots (%d instances)", os.getpid(), self.procfile.file,
                 len(self.procfile.bots), sum(b.instances for b in self.procfile.bots.values()))
        self.guard.start()
        base_env = dict(os.environ)
        for name in self.procfile.start_order():
            self.bots[name] = Bot(name, self.procfile, base_env, self._on_transition, log, guard=self.guard)
        for name, bot in self.bots.items():
            if bot.config.autostart:
                self.start_bot(name)
        await self._shutdown.wait()
        await self.shutdown()
        return 0

    def start_bot(self, name: str, reason: str = "autostart") -> None:
        """Start once every dependency is ready; waits in the background so the caller never blocks."""
        starter = self._starters.get(name)
        if starter is None or starter.done():
            self._starters[name] = asyncio.get_running_loop().create_task(self._start_when_ready(name, reason))

    async def _start_when_ready(self, name: str, reason: str) -> None:
        bot = self.bots[name]
        waiting = [d for d in bot.config.depends_on if not self.bots[d].ready.is_set()]
        if waiting:
            log.info("%s: waiting for %s to be RUNNING", name, ", ".join(waiting))
            await asyncio.gather(*(self.bots[d].ready.wait() for d in waiting))
        bot.start(reason)

    async def stop_bots(self, names: list[str], reason: str) -> None:
        """Stop in reverse dependency order: a bot stops only after every bot depending on it has."""
        done: dict[str, asyncio.Future[None]] = {n: asyncio.get_running_loop().create_future() for n in names}

        async def stop_one(name: str) -> None:
            dependents = [n for n in names if name in self.bots[n].config.depends_on]
            await asyncio.gather(*(done[d] for d in dependents))
            starter = self._starters.pop(name, None)
            if starter is not None:
                starter.cancel()
            log.info("stopping %s (%s)", name, reason)
            await self.bots[name].stop(reason)
            done[name].set_result(None)

        await asyncio.gather(*(stop_one(n) for n in names))

    async def shutdown(self) -> None:
        log.info("shutdown: stopping %d bots in reverse dependency order", len(self.bots))
        await self.stop_bots(list(self.bots), "master shutdown")
        for bot in self.bots.values():
            bot.close_logs()
        self.guard.close()
        log.info("shutdown complete")


def run_foreground(procfile_path: str) -> int:
    """Entry point of `supctl start -f`: validate, then run the master on uvloop until a signal."""
    import uvloop

    procfile = config.load(procfile_path)
    make_state_dir(procfile.state_dir)
    setup_logging(procfile, foreground=True)
    return uvloop.run(Master(procfile).run())
