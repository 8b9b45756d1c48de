"""The composition root: builds every part from a procfile, owns signals, start order, reload and shutdown."""

from __future__ import annotations

import asyncio
import logging
import logging.handlers
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import msgspec

from . import config, paths
from .bot import Bot
from .config import Procfile
from .automation import Automations
from .bus import Broker
from .control import (Action, ActionReply, Error, Frame, HealthEntry, HealthReply, HealthRequest, HealthRow, Reload,
                      ReloadReply, Response, RunReply, RunTask, Shutdown, SignalRequest, StatusReply, StatusRequest,
                      TasksReply, TasksRequest)
from .control_server import ControlServer
from .daemon import MasterStatus, write_atomic, write_pidfile, write_status
from .errors import ConfigErrors
from .events import events_for
from .guard import Guard
from .health_target import HealthBoard, InstanceControl, InstanceHealth
from .hooks import HookRunner
from .plugin import ProcessEvent
from .plugin_setup import PluginSetup
from . import plugin_setup
from .process import Instance, Transition
from .reload import plan
from .states import State
from .status import Metrics, instance_rows
from .systemd import SYSTEMD_ENV_VARS, Notifier, watchdog_interval, watchdog_loop
from .tasks import ScheduledTask, run_row

log = logging.getLogger("supctl")


def setup_logging(procfile: Procfile, stream: bool) -> None:
    """The master's own log: state_dir/logs/supervisor.log (rotated like bot logs), plus stderr when attached."""
    cfg = procfile.supervisor.log
    handler = logging.handlers.RotatingFileHandler(paths.master_log(procfile.state_dir), maxBytes=cfg.max_bytes, backupCount=cfg.backups)
    handlers: list[logging.Handler] = [handler]
    if stream:
        handlers.append(logging.StreamHandler(sys.stderr))
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    for h in handlers:
        h.setFormatter(fmt)
    log.handlers[:] = handlers
    log.setLevel(logging.INFO)
    log.propagate = False


def make_state_dir(path: Path) -> None:
    for d in (path, paths.logs_dir(path)):
        d.mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o700)


def child_env(environ: Mapping[str, str]) -> dict[str, str]:
    """What every bot inherits: our environment minus systemd's notify variables, and, when supctl runs from a
    virtualenv, that venv's bin first on PATH (as `activate` would), so `python3` in a cmd can import supervisor.bus."""
    env = {k: v for k, v in environ.items() if k not in SYSTEMD_ENV_VARS}
    if sys.prefix != sys.base_prefix:
        bindir = os.path.dirname(sys.executable)
        path = env.get("PATH", os.defpath).split(os.pathsep)
        if path[0] != bindir:
            env["PATH"] = os.pathsep.join([bindir, *path])
    return env


class Master:
    def __init__(self, procfile: Procfile, plugins: PluginSetup, ready: Callable[[], None] | None = None) -> None:
        self.procfile = procfile
        self.plugins = plugins
        self.health = HealthBoard()
        self.hooks = HookRunner(plugins.hooks)
        self._blocked: dict[str, str] = {}
        self.bus = Broker(procfile.state_dir / "bus.sock")
        self.procfile_path = procfile.file
        self.bots: dict[str, Bot] = {}
        self.guard = Guard(log)
        self.metrics = Metrics()
        self.control = ControlServer(Path(paths.control_socket(procfile.state_dir)), self, log)
        self._ready = ready
        self._shutdown = asyncio.Event()
        self._stopped = asyncio.Event()
        self._starters: dict[str, asyncio.Task[None]] = {}
        self._base_env = child_env(os.environ)
        self._started_at = time.time()
        self._reloading = asyncio.Lock()
        self.automations = Automations(log)
        self.tasks: dict[str, ScheduledTask] = {}
        self.notifier = Notifier.from_env()
        self._systemd_ready = False

    def _status(self, state: str, error: str | None = None) -> None:
        write_status(self.procfile.state_dir, MasterStatus(state=state, pid=os.getpid(), started_at=self._started_at,
                                                           procfile=self.procfile.file, last_error=error))

    def _on_transition(self, t: Transition) -> None:
        bot = self.bots.get(t.bot)
        if bot is not None:
            bot.update_ready()
            for event in events_for(t, bot.instances[t.instance]):
                self._publish(event)
        if self.notifier.enabled:
            self._tell_systemd()

    def _publish(self, event: ProcessEvent) -> None:
        """Every process event goes to the event hooks and to supctl.events.<bot> on the bus."""
        self.hooks.dispatch(event)
        self.bus.publish(f"supctl.events.{event.bot}", event)

    def _bus_env(self, bot: str, index: int) -> dict[str, str]:
        """Each instance's address of the bus and its own secret: the broker knows who it is by the token alone."""
        return {"SUPCTL_BUS": str(self.bus.path), "SUPCTL_BUS_TOKEN": self.bus.issue_token(bot, index)}

    def _on_health(self, inst: Instance, state: str, reason: str) -> None:
        log.info("%s health %s: %s", inst.name, state, reason)
        self._publish(ProcessEvent(kind="health_changed", bot=inst.bot, instance=inst.index, pid=inst.pid,
                                   reason=reason, health=state))

    def _tell_systemd(self) -> None:
        """STATUS= with counts on every transition; READY=1 once every autostart bot is RUNNING or FATAL."""
        counts: dict[str, int] = {}
        for inst in (i for b in self.bots.values() for i in b.instances):
            counts[inst.state.value] = counts.get(inst.state.value, 0) + 1
        text = ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items()))
        settled = all(i.state in (State.RUNNING, State.FATAL) for b in self.bots.values() if b.config.autostart for i in b.instances)
        if settled and not self._systemd_ready:
            self._systemd_ready = True
            self.notifier.ready(text)
        else:
            self.notifier.status(text)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        loop.add_signal_handler(signal.SIGHUP, self._on_signal, signal.SIGHUP)
        log.info("master pid %d starting procfile %s with %d bots (%d instances)", os.getpid(), self.procfile.file,
                 len(self.procfile.bots), sum(b.instances for b in self.procfile.bots.values()))
        write_pidfile(self.procfile.state_dir)
        self.guard.start()
        await self.bus.start()
        write_atomic(self.procfile.state_dir / "bus.token", self.bus.admin_token().encode())
        await self.control.start()
        self._status("running")
        self.hooks.start()
        for name in self.procfile.start_order():
            self._add_bot(name)
        self._start_tasks(list(self.procfile.tasks))
        if self.procfile.supervisor.reload_on_change:
            self.automations.for_procfile(Path(self.procfile.file), self.reload)
        watchdog = self._start_watchdog()
        if self.notifier.enabled:
            self._tell_systemd()
        if self._ready:
            self._ready()
        await self._shutdown.wait()
        if watchdog is not None:
            watchdog.cancel()
        await self.shutdown()
        return 0

    def _start_watchdog(self) -> asyncio.Task[None] | None:
        """WATCHDOG=1 from the event loop itself, so a hung loop gets the master restarted by systemd."""
        interval = watchdog_interval()
        if not self.notifier.enabled or interval is None:
            return None
        return asyncio.get_running_loop().create_task(watchdog_loop(self.notifier, interval))

    def _start_tasks(self, names: list[str]) -> None:
        for name in names:
            task = self.tasks[name] = ScheduledTask(name, self.procfile.tasks[name], self.procfile, self._base_env, log, self.guard)
            task.start()

    async def _stop_tasks(self, names: list[str]) -> None:
        await asyncio.gather(*(self.tasks.pop(n).stop() for n in names))

    def _on_signal(self, sig: signal.Signals) -> None:
        """Signal handlers only enqueue; the loop acts."""
        if sig == signal.SIGHUP:
            log.info("received SIGHUP: reloading %s", self.procfile.file)
            asyncio.get_running_loop().create_task(self.reload())
        else:
            log.info("received %s: shutting down", sig.name)
            self._shutdown.set()

    def _add_bot(self, name: str) -> None:
        self.bots[name] = bot = Bot(name, self.procfile, self._base_env, self._on_transition, log, guard=self.guard,
                                    instance_env=self._bus_env)
        specs = self.plugins.health.get(name)
        if specs:
            self.health.add(name, [
                InstanceHealth(inst, specs, InstanceControl(inst, self._restart_instance, self._stop_instance,
                                                            self._restart_dependents, log),
                               log, lambda: self.bus, self._on_health)
                for inst in bot.instances])
        self.automations.for_bot(name, bot.config, self.procfile.bot_cwd(name), self.procfile.supervisor.timezone, self.restart_bot)
        if bot.config.autostart:
            self.start_bot(name)

    async def _restart_instance(self, inst: Instance, reason: str) -> None:
        log.info("%s: restarting (%s)", inst.name, reason)
        await self._act("restart", inst.name, [inst])

    async def _stop_instance(self, inst: Instance, reason: str) -> None:
        await inst.stop(reason)

    async def _restart_dependents(self, name: str, reason: str) -> None:
        for dependent in [n for n, b in self.bots.items() if name in b.config.depends_on]:
            await self.restart_bot(dependent, reason)

    async def restart_bot(self, name: str, reason: str) -> None:
        log.info("%s: restarting (%s)", name, reason)
        await self._act("restart", name, self.bots[name].instances)

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
        checked = [d for d in bot.config.depends_on if self.health.has_checks(d)]
        if checked:
            timeout = bot.instances[0].timing.start_timeout
            log.info("%s: waiting for %s to pass health checks (start_timeout %s)", name, ", ".join(checked), bot.config.start_timeout)
            healthy = await asyncio.gather(*(self.health.wait_healthy(d, timeout) for d in checked))
            failed = [d for d, ok in zip(checked, healthy) if not ok]
            if failed:
                self._blocked[name] = f"not started: {', '.join(failed)} not healthy within start_timeout {bot.config.start_timeout}"
                log.error("%s %s", name, self._blocked[name])
                return
        self._blocked.pop(name, None)
        bot.start(reason)

    async def stop_bots(self, names: list[str], reason: str) -> None:
        """Stop in reverse dependency order: a bot stops only after every bot depending on it has."""
        loop = asyncio.get_running_loop()
        done: dict[str, asyncio.Future[None]] = {n: loop.create_future() for n in names}

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
        self._status("stopping")
        self.notifier.stopping()
        await self.automations.close()
        await self.health.close()
        await self._stop_tasks(list(self.tasks))
        log.info("shutdown: stopping %d bots in reverse dependency order", len(self.bots))
        await self.stop_bots(list(self.bots), "master shutdown")
        for bot in self.bots.values():
            bot.close_logs()
        await self.hooks.drain(5.0)
        await self.hooks.stop()
        await self.bus.close()
        (self.procfile.state_dir / "bus.token").unlink(missing_ok=True)
        self.guard.close()
        paths.pid_file(self.procfile.state_dir).unlink(missing_ok=True)
        self._status("stopped")
        log.info("shutdown complete")
        self._stopped.set()
        await self.control.close()

    async def reload(self) -> Response:
        async with self._reloading:
            try:
                new, plugins = plugin_setup.load(self.procfile.file)
            except ConfigErrors as e:
                log.error("reload rejected, nothing changed:\n%s", e)
                return Error(message=f"reload rejected, nothing changed:\n{e}")
            if new.state_dir != self.procfile.state_dir:
                return Error(message=f"{new.file}: supervisor.state_dir cannot change on reload (restart the master)")
            p = plan(self.procfile, new)
            log.info("reload: added %s, removed %s, restarted %s, kept %s", p.added, p.removed, p.changed, p.kept)
            stale_tasks = [n for n, t in self.procfile.tasks.items() if new.tasks.get(n) != t]
            await self._stop_tasks(stale_tasks)
            for name in p.removed + p.changed:
                await self.automations.cancel(name)
                await self.health.drop(name)
            await self.stop_bots(p.removed + p.changed, "removed or changed by reload")
            for name in p.removed + p.changed:
                gone = self.bots.pop(name)
                gone.close_logs()
                for inst in gone.instances:
                    self.bus.revoke_token(name, inst.index)
            self.procfile, self.plugins = new, plugins
            self.bots = {n: self.bots[n] for n in new.start_order() if n in self.bots}
            for name in p.added + p.changed:
                self._add_bot(name)
            self._start_tasks([n for n in new.tasks if n not in self.tasks])
            return ReloadReply(added=p.added, removed=p.removed, restarted=p.changed, kept=p.kept)

    def _select(self, target: str | None) -> list[Instance] | str:
        """Instances named by `all`, `NAME` or `NAME:k`; a message when nothing matches."""
        if target in (None, "all"):
            return [i for b in self.bots.values() for i in b.instances]
        name, _, k = target.partition(":")
        bot = self.bots.get(name)
        if bot is None:
            return f"no bot named {name!r}; bots: {', '.join(self.bots) or 'none'}"
        if not k:
            return list(bot.instances)
        if not k.isdigit() or int(k) >= len(bot.instances):
            return f"{name} has instances 0..{len(bot.instances) - 1}, not {k!r}"
        return [bot.instances[int(k)]]

    async def handle(self, request: Frame) -> Response:
        if isinstance(request, Reload):
            return await self.reload()
        if isinstance(request, Shutdown):
            self._shutdown.set()
            await self._stopped.wait()
            return ActionReply(message="all bots stopped, master exiting")
        if isinstance(request, TasksRequest):
            return TasksReply(tasks=[t.status() for t in self.tasks.values()])
        if isinstance(request, RunTask):
            return await self._run_task(request.name)
        if isinstance(request, HealthRequest):
            return self._health_reply(request.target)
        target = getattr(request, "target", None)
        selected = self._select(target)
        if isinstance(selected, str):
            return Error(message=selected)
        if isinstance(request, StatusRequest):
            rows = instance_rows(selected, self.metrics)
            bus = self.bus.stats()
            for row, inst in zip(rows, selected):
                stats = bus.get((inst.bot, inst.index))
                if stats is not None and (stats.connected or stats.msgs_in or stats.msgs_out):
                    row.bus = f"{'on' if stats.connected else 'off'} {stats.msgs_in}/{stats.msgs_out}/{stats.dropped}"
                row.health = self._blocked.get(inst.bot) if inst.state == State.STOPPED else None
                row.health = row.health or self.health.describe(inst)
            return StatusReply(instances=rows)
        if isinstance(request, SignalRequest):
            try:
                sig = config.to_signal(request.signal)
            except (KeyError, ValueError):
                return Error(message=f"unknown signal {request.signal!r}")
            sent = [i.name for i in selected if i.send_signal(sig)]
            return ActionReply(message=f"sent {sig.name} to {len(sent)} instance(s)", affected=sent, ok=bool(sent))
        if isinstance(request, Action):
            return await self._act(request.verb, target, selected)
        return Error(message=f"unsupported request {type(request).__name__}")

    def _health_reply(self, target: str) -> Response:
        selected = self._select(target)
        if isinstance(selected, str):
            return Error(message=selected)
        rows = []
        for inst in selected:
            checks = self.health.of(inst)
            records = [HealthEntry(**msgspec.structs.asdict(r)) for r in checks.runner.history()] if checks else []
            rows.append(HealthRow(bot=inst.bot, instance=inst.index, summary=self.health.describe(inst) or "no health checks",
                                  records=records))
        return HealthReply(instances=rows)

    async def _run_task(self, name: str) -> Response:
        task = self.tasks.get(name)
        if task is None:
            return Error(message=f"no task named {name!r}; tasks: {', '.join(self.tasks) or 'none'}")
        run = await task.run_now()
        if run is None:
            return Error(message=f"task {name} is still running and overlap = false; skipped")
        return RunReply(name=name, run=run_row(run))

    async def _act(self, verb: str, target: str | None, selected: list[Instance]) -> Response:
        whole_bots = target is not None and ":" not in target
        names = list(self.bots) if target == "all" else [target] if whole_bots else []
        if verb in ("stop", "restart"):
            if names:
                await self.stop_bots(names, f"{verb} requested")
            else:
                await asyncio.gather(*(i.stop(f"{verb} requested") for i in selected))
        if verb in ("start", "restart"):
            for inst in selected:
                if inst.state in (State.STOPPED, State.EXITED, State.FATAL) and not names:
                    inst.start(f"{verb} requested")
            for name in names:
                self.start_bot(name, f"{verb} requested")
            await self._settle(selected, [self._starters[n] for n in names])
        ok = all(i.state == (State.STOPPED if verb == "stop" else State.RUNNING) or (verb == "stop" and i.state in (State.EXITED, State.FATAL)) for i in selected)
        return ActionReply(message=", ".join(f"{i.name} {i.state.value}" for i in selected), affected=[i.name for i in selected], ok=ok)

    async def _settle(self, selected: list[Instance], starters: list[asyncio.Task[None]]) -> None:
        """Wait (bounded) until dependencies let the bots start and the instances are RUNNING or failed for good."""
        bound = max((i.timing.start_grace for i in selected), default=0.0) * 2 + 5.0

        async def settled() -> None:
            await asyncio.gather(*(asyncio.shield(t) for t in starters), return_exceptions=True)
            await asyncio.gather(*(i.wait_settled() for i in selected))

        try:
            await asyncio.wait_for(settled(), bound)
        except TimeoutError:
            pass


def run_foreground(procfile: Procfile, plugins: PluginSetup) -> int:
    """`supctl start -f`: the master on uvloop in this process until a signal or `supctl shutdown`."""
    import uvloop

    make_state_dir(procfile.state_dir)
    setup_logging(procfile, stream=True)
    return uvloop.run(Master(procfile, plugins).run())


def run_daemon(procfile: Procfile, plugins: PluginSetup, ready: Callable[[str], None]) -> int:
    """The daemonized master: stdio already points at supervisor.log, `ready` unblocks `supctl start`."""
    import uvloop

    make_state_dir(procfile.state_dir)
    setup_logging(procfile, stream=False)
    try:
        return uvloop.run(Master(procfile, plugins, ready=lambda: ready("ready")).run())
    except Exception as e:
        log.exception("master failed")
        write_status(procfile.state_dir, MasterStatus(state="error", pid=os.getpid(), started_at=time.time(),
                                                      procfile=procfile.file, last_error=str(e)))
        return 1
