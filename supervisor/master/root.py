"""The composition root: builds every part from a procfile, owns signals, start order, reload and shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .. import __version__
from ..bus.broker import Broker
from ..bus.state import DEGRADATION, FleetDegradation
from ..config import paths
from ..config.procfile import Procfile
from ..config.registry import Claim
from ..control.bus_desk import MasterDesk
from ..control.handlers import Handlers
from ..control.protocol import Error, MasterInfo, Response
from ..control.retained_disk import RetainedDisk
from ..control.server import ControlServer
from ..core.states import State
from ..engine import boxes
from ..engine.bot import Bot
from ..engine.checkpoints import CheckpointStore
from ..engine.events import events_for
from ..engine.fleet import Fleet
from ..engine.guardian_link import Guard
from ..engine.instance import Instance, Transition
from ..engine.journal import Journal
from ..engine.kill_switch import TOPIC as KILL_SWITCH_TOPIC
from ..engine.kill_switch import KillSwitch, KillSwitchState
from ..health.hooks import HookRunner
from ..health.setup import PluginSetup
from ..health.target import HealthBoard
from ..jobs.automation import Automations
from ..output.master_log import setup_logging
from ..plugin import ProcessEvent
from ..systemd.notify import Notifier, child_env, watchdog_interval, watchdog_loop
from .daemon import MasterStatus, died_record, write_atomic, write_pidfile, write_status

if TYPE_CHECKING:
    from ..bridge.nats import NatsBridge
    from ..health.checked import InstanceHealth
    from ..health.degradation import Degradation
    from ..http.hub import EventHub
    from ..http.server import HttpServer
    from ..jobs.tasks import ScheduledTask
    from ..output.echo import Echo

log = logging.getLogger("supctl")


class Master:
    def __init__(self, procfile: Procfile, plugins: PluginSetup, claim: Claim,
                 ready: Callable[[], None] | None = None, echo: Echo | None = None) -> None:
        self.procfile = procfile
        self.claim, self.echo = claim, echo
        self.plugins = plugins
        self.health = HealthBoard()
        self.fleet = Fleet(self.health, log)
        self.hooks = HookRunner(plugins.hooks)
        self.bus = Broker(procfile.state_dir / "bus.sock", log=log)
        self._bus_address = str(self.bus.path)
        """One string for every instance's SUPCTL_BUS (a str of the path per instance was ~120 bytes each)."""
        self.persisted = RetainedDisk(procfile.state_dir / "retained", procfile.bus.persist, self.bus.retained, write_atomic, log)
        self.journal = Journal(paths.journal(procfile.state_dir), procfile.supervisor.log)
        self._started_at = time.time()
        self.guard = Guard(log, paths.status_file(procfile.state_dir), died_record(procfile.file, self._started_at))
        self.tasks: dict[str, ScheduledTask] = {}
        self.bridge: NatsBridge | None = None
        ks_path = procfile.state_dir / "kill_switch.json"
        self.kill_switch = KillSwitch(ks_path, lambda data: write_atomic(ks_path, data), self._announce_kill_switch)
        self.fleet.gate = self.kill_switch.holds
        store = CheckpointStore(procfile.state_dir / "checkpoints", procfile.bus.checkpoints, write_atomic, log)
        self.degradation: Degradation | None = None
        if cfg := procfile.fleet.degradation:
            from ..health.degradation import Degradation

            self.degradation = Degradation(cfg, self.fleet.instances, self.health, self._announce_degradation)
        info = MasterInfo(version=__version__, pid=os.getpid(), started_at=self._started_at, procfile=procfile.file,
                          state_dir=str(procfile.state_dir))
        self.handlers = Handlers(info, self.fleet, self.health, self.tasks, self.bus.stats, self.reload,
                                 self._shutdown_and_wait, self.kill_switch,
                                 lambda: self.bridge.status() if self.bridge else None,
                                 bus_token=lambda: (self.bus.operator_token(), str(self.bus.path)),
                                 degradation=self._degradation_now)
        self.desk = MasterDesk(store, lambda bot: bot in self.fleet.bots, self._degradation_now, self.handlers.change_kill_switch,
                               lambda bot: self.procfile.bots[bot].bus.publish is not None)
        self.events: EventHub | None = None
        """Process, health and kill-switch events for GET /events; only when [http] is configured."""
        if procfile.http:
            from ..http.hub import EventHub

            self.events = EventHub()
        self.control = ControlServer(Path(paths.control_socket(procfile.state_dir)), self.handlers, log)
        self._ready = ready
        self._shutdown = asyncio.Event()
        self._stopped = asyncio.Event()
        self._base_env = {**child_env(os.environ), **boxes.fleet_mark()}
        self._reloading = asyncio.Lock()
        """Reload and shutdown hold it: they never interleave."""
        self.closing = False
        self.automations = Automations(log)
        self.notifier = Notifier.from_env()
        self._systemd_ready = False
        self.http: HttpServer | None = None

    def _status(self, state: str, error: str | None = None) -> None:
        """Best effort: a full disk must not stop a shutdown halfway (the bots would be SIGKILLed, not stopped)."""
        try:
            write_status(self.procfile.state_dir, MasterStatus(state=state, pid=os.getpid(), started_at=self._started_at,
                                                               procfile=self.procfile.file, last_error=error))
        except OSError as e:
            log.error("status.json not updated to %r: %s", state, e.strerror or e)

    def _on_transition(self, t: Transition) -> None:
        self.journal.transition(t)
        bot = self.fleet.bots.get(t.bot)
        if bot is not None:
            inst = bot.instances[t.instance]
            self.health.on_transition(inst, t)
            bot.update_ready()
            for event in events_for(t, inst):
                self._publish(event)
            if self.degradation is not None:
                self.degradation.update()
        if self.notifier.enabled:
            self._tell_systemd()

    def _publish(self, event: ProcessEvent) -> None:
        """Every process event goes to the journal, the event hooks and to supctl.events.<bot> on the bus."""
        self.journal.event(event)
        self.hooks.dispatch(event)
        self.bus.publish(f"supctl.events.{event.bot}", event)
        if self.events is not None:
            self.events.publish("process", event)

    def _announce_kill_switch(self, state: KillSwitchState) -> None:
        """Retained on the bus (a bot that connects later still hears it) and flushed before any bot is stopped."""
        if state.active:
            log.warning("%s", state.describe())
        else:
            log.warning("kill switch released by %s", state.by)
        self.bus.publish(KILL_SWITCH_TOPIC, state, retain=True)
        self.bus.flush()
        if self.events is not None:
            self.events.publish("kill_switch", state)

    def _bus_env(self, bot: str, index: int) -> dict[str, str]:
        """Each instance's address of the bus and its own secret: the broker knows who it is by the token alone."""
        return {"SUPCTL_BUS": self._bus_address, "SUPCTL_BUS_TOKEN": self.bus.issue_token(bot, index)}

    def _on_health(self, inst: Instance, state: str, reason: str, warnings: tuple[str, ...]) -> None:
        log.info("%s health %s: %s", inst.name, state, reason)
        self._publish(ProcessEvent(kind="health_changed", bot=inst.bot, instance=inst.index, pid=inst.pid,
                                   reason=reason, health=state, warnings=warnings))
        if self.degradation is not None:
            self.degradation.update()

    def _degradation_now(self) -> FleetDegradation | None:
        return self.degradation.now() if self.degradation is not None else None

    def _announce_degradation(self, state: FleetDegradation, was: str) -> None:
        """Retained on the bus, so a bot that connects later knows the level at once."""
        log.warning("%s (was %s)", state.describe(), was)
        self.bus.publish(f"{DEGRADATION}.{state.group}" if state.group else DEGRADATION, state, retain=True)
        if self.events is not None:
            self.events.publish("degradation", state)

    def _tell_systemd(self) -> None:
        """STATUS= with counts on every transition; READY=1 once every autostart bot is RUNNING or FATAL."""
        counts: dict[str, int] = {}
        for inst in self.fleet.instances():
            counts[inst.state.value] = counts.get(inst.state.value, 0) + 1
        text = ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items()))
        settled = all(i.state in (State.RUNNING, State.FATAL) for b in self.fleet.bots.values() if b.config.autostart
                      for i in b.instances)
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
        self.containment = boxes.contain(self.procfile, self._base_env, self.guard, log)
        await self.persisted.restore()
        await self.bus.start()
        self.desk.attach(self.bus.requests.serve, self.bus.flush, self.bus.requests.answer)  # type: ignore[arg-type]
        if self.kill_switch.state.active:
            self._announce_kill_switch(self.kill_switch.state)
        self.bridge = self._start_bridge()
        await self.control.start()
        self.claim.register(str(self.control.path), str(self.procfile.state_dir), __version__)
        self.http = await self._start_http()
        self._status("running")
        self.hooks.start()
        for name in self.procfile.start_order():
            self.add_bot(name)
        self.start_tasks(list(self.procfile.tasks))
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

    async def _start_http(self) -> HttpServer | None:
        """Imported only here, so a master without [http] never loads h11 or prometheus-client."""
        if self.procfile.http is None or self.events is None:
            return None
        from ..http.server import HttpServer

        server = HttpServer(self.procfile, self.handlers, self.fleet, self.health, self.tasks, self.bus, self.events, log)
        await server.start()
        return server

    def _start_bridge(self) -> NatsBridge | None:
        """[bus.nats]: the bus joins the fleet; it connects in the background and nothing here waits for NATS."""
        cfg = self.procfile.bus.nats
        if cfg is None:
            return None
        from ..bridge.fleet_rpc import FleetControl
        from ..bridge.nats import NatsBridge

        control = FleetControl(cfg.host, cfg.fleet, self.handlers.handle, self.procfile.file) if cfg.fleet_control else None
        bridge = NatsBridge(cfg, self.bus, self.procfile.base_dir, control.attach if control else None)
        bridge.start()
        return bridge

    def _start_watchdog(self) -> asyncio.Task[None] | None:
        """WATCHDOG=1 from the event loop itself, so a hung loop gets the master restarted by systemd."""
        interval = watchdog_interval()
        if not self.notifier.enabled or interval is None:
            return None
        return asyncio.get_running_loop().create_task(watchdog_loop(self.notifier, interval))

    def start_tasks(self, names: list[str]) -> None:
        """Imported here: a master without [tasks] never loads the task scheduler."""
        if not names:
            return
        from ..jobs.tasks import ScheduledTask

        for name in names:
            task = self.tasks[name] = ScheduledTask(name, self.procfile.tasks[name], self.procfile, self._base_env, log, self.guard, self.containment)
            task.start()

    async def stop_tasks(self, names: list[str]) -> None:
        await asyncio.gather(*(self.tasks.pop(n).stop() for n in names))

    def _on_signal(self, sig: signal.Signals) -> None:
        """Signal handlers only enqueue; the loop acts."""
        if sig == signal.SIGHUP:
            log.info("received SIGHUP: reloading %s", self.procfile.file)
            asyncio.get_running_loop().create_task(self.reload())
        else:
            log.info("received %s: shutting down", sig.name)
            self._shutdown.set()

    def add_bot(self, name: str) -> None:
        """A bot from self.procfile, started if autostart. What can fail (its boxes, each instance's plugin objects)
        is built before anything is registered, so a failure leaves nothing behind (a reload rolls back on it)."""
        bot = Bot(name, self.procfile, self._base_env, self._on_transition, log, self.containment,
                  guard=self.guard, instance_env=self._bus_env, gate=self.kill_switch.holds)
        checks: list[InstanceHealth] = []
        if specs := self.plugins.health.get(name):
            from ..health.checked import InstanceHealth  # a fleet without checks never loads the health runner

            try:
                checks = [InstanceHealth(inst, specs, log, self.health.tree(), lambda: self.bus, self._on_health,
                                         self.fleet.stop_instance, self.fleet.restart_dependents) for inst in bot.instances]
            except BaseException:
                self._forget(bot)
                raise
        access = self.procfile.bots[name].bus
        self.bus.permit(name, access.publish, access.subscribe, access.serve)
        self.fleet.bots[name] = bot
        for inst in bot.instances if self.echo else ():
            inst.log.mirror = self.echo.sink(f"{name}-{inst.index}", len(self.fleet.bots) + inst.index)  # type: ignore[union-attr]
        if checks:
            for c in checks:
                c.inst.on_spawn = c.runner.begin
            self.health.add(name, checks)
        self.automations.for_bot(name, bot.config, self.procfile.bot_cwd(name), self.procfile.supervisor.timezone,
                                 self.fleet.restart_bot)
        if bot.config.autostart:
            self.fleet.start_bot(name)

    def drop_bot(self, name: str) -> None:
        """A stopped bot out of the fleet: its logs closed, its bus tokens and allow lists gone."""
        self._forget(self.fleet.bots.pop(name))
        self.bus.permit(name)

    def _forget(self, bot: Bot) -> None:
        bot.close_logs()
        for inst in bot.instances:
            self.bus.revoke_token(bot.name, inst.index)

    async def shutdown(self) -> None:
        self._status("stopping")
        self.closing = True
        async with self._reloading:  # a reload in flight sees _closing and stops before starting anything
            await self._shutdown_locked()

    async def _shutdown_locked(self) -> None:
        self.notifier.stopping()
        await self.automations.close()
        if self.http is not None:
            await self.http.close()
        await self.health.close()
        if self.tasks:
            log.info("shutdown: cancelling %d task schedules; runs going are awaited (stop_timeout)", len(self.tasks))
        await self.stop_tasks(list(self.tasks))
        log.info("shutdown: stopping %d bots in reverse dependency order", len(self.fleet.bots))
        await self.fleet.stop_bots(list(self.fleet.bots), "master shutdown", retire=True)
        for bot in self.fleet.bots.values():
            bot.close_logs()
        self.journal.close()
        await self.hooks.drain(5.0)
        await self.hooks.stop()
        if self.bridge is not None:
            await self.bridge.close()
        await self.bus.close()
        await self.persisted.close()
        self.containment.close()
        self.guard.close()
        paths.pid_file(self.procfile.state_dir).unlink(missing_ok=True)
        self.claim.unregister()
        self._status("stopped")
        log.info("shutdown complete")
        self._stopped.set()
        await self.control.close()

    async def reload(self) -> Response:
        if self.closing:
            return Error(message=f"{self.procfile.file}: reload refused: the master is shutting down")
        from .reload import Reload  # the plan and the diff are loaded at the first reload, not by every master

        async with self._reloading:
            return await Reload(self).run()

    async def _shutdown_and_wait(self) -> None:
        self._shutdown.set()
        await self._stopped.wait()


def _logging(procfile: Procfile, stream: bool) -> None:
    sup = procfile.supervisor
    setup_logging(log, procfile.state_dir, sup.log, sup.log_level, stream, os.environ)


def run_master(procfile: Procfile, plugins: PluginSetup, claim: Claim, ready: Callable[[str], None] | None = None,
               echo: Echo | None = None) -> int:
    """The master on uvloop until a signal or `supctl shutdown` (exit 0), or an internal error (exit 1, in status.json).
    Daemonized, `ready` unblocks `supctl start`; attached (`start -f`) it logs to stderr too and `echo` copies every
    bot line to stdout (container mode)."""
    import uvloop

    _logging(procfile, stream=ready is None)
    try:
        return uvloop.run(Master(procfile, plugins, claim, ready and (lambda: ready("ready")), echo).run())
    except Exception as e:
        log.exception("master failed")
        if ready is not None:  # `supctl start` prints the real error, even when the log cannot be written
            ready((e.strerror if isinstance(e, OSError) else None) or str(e) or type(e).__name__)
        with contextlib.suppress(OSError):
            write_status(procfile.state_dir, MasterStatus(state="error", pid=os.getpid(), started_at=time.time(),
                                                          procfile=procfile.file, last_error=str(e)))
        return 1
    finally:
        if echo is not None:
            echo.close()
