"""A reload as a transaction: whatever can refuse the new procfile does so before anything is stopped, and a
failure while it is applied puts the old configuration back, so a reload applies fully or changes nothing."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from ..config.procfile import Procfile
from ..config.reload_plan import ReloadPlan, plan
from ..control.protocol import Error, ReloadReply, Response
from ..core.errors import ConfigErrors
from ..health import setup as plugin_setup
from ..health.hooks import HookRunner
from ..health.setup import PluginSetup

if TYPE_CHECKING:
    from .root import Master

log = logging.getLogger("supctl")


class Applied:
    """What applying has done so far: the steps a rollback undoes, and the step that was running."""

    def __init__(self) -> None:
        self.step = "starting"
        self.stopped_tasks: list[str] = []
        self.stopped_bots: list[str] = []
        self.added_bots: list[str] = []
        self.started_tasks: list[str] = []
        self.old_hooks: HookRunner | None = None
        """The event hooks the new ones replaced, finished only once the reload holds."""


class Reload:
    """The master's reload; the master holds its lock around `run`, so a shutdown never interleaves with it."""

    def __init__(self, master: Master) -> None:
        self.m = master

    async def run(self) -> Response:
        m = self.m
        prepared = self.prepare()
        if isinstance(prepared, Error):
            return prepared
        new, plugins, p, hooks = prepared
        log.info("reload: added %s, removed %s, restarted %s, kept %s", p.added, p.removed, p.changed, p.kept)
        if p.needs_restart:
            log.warning("reload: %s changed; this takes full effect when the master restarts", ", ".join(p.needs_restart))
        old, old_plugins, done = m.procfile, m.plugins, Applied()
        try:
            stopped = await self.apply(new, plugins, p, hooks, done)
        except Exception as e:  # whatever failed, the old configuration goes back in force
            log.exception("reload failed while %s: rolling back", done.step)
            left = await self.roll_back(old, old_plugins, done)
            back = "rolled back: the old configuration is in force" + (f", except {', '.join(left)}, which could not start"
                                                                         if left else "")
            return Error(message=f"{new.file}: reload failed while {done.step}: {type(e).__name__}: {e}; {back}")
        if stopped is not None:
            return stopped
        self.follow_reload_on_change(old, new)
        if done.old_hooks is not None:  # they finish what they had queued, then close
            await done.old_hooks.drain(5.0)
            await done.old_hooks.stop()
        return ReloadReply(added=p.added, removed=p.removed, restarted=p.changed, kept=p.kept, needs_restart=p.needs_restart)

    def prepare(self) -> tuple[Procfile, PluginSetup, ReloadPlan, HookRunner | None] | Error:
        """Every refusal, before anything runs differently: the procfile and its plugin options, a new state_dir,
        and the new event hooks, built here (not started) so a hook that cannot be built changes nothing."""
        old = self.m.procfile
        try:
            new, plugins = plugin_setup.load(old.file)
        except ConfigErrors as e:
            return self.refuse(str(e))
        if new.state_dir != old.state_dir:
            return self.refuse(f"{new.file}: supervisor.state_dir cannot change on reload (restart the master)")
        hooks = None
        if (old.supervisor.hooks, old.supervisor.plugin_paths) != (new.supervisor.hooks, new.supervisor.plugin_paths):
            try:
                hooks = HookRunner(plugins.hooks)
            except Exception as e:  # noqa: BLE001 -- a plugin's constructor is user code
                return self.refuse(f"{new.file}: supervisor.hooks: a hook cannot be built: {type(e).__name__}: {e}")
        return new, plugins, plan(old, new), hooks

    @staticmethod
    def refuse(why: str) -> Error:
        log.error("reload rejected, nothing changed:\n%s", why)
        return Error(message=f"reload rejected, nothing changed:\n{why}")

    async def apply(self, new: Procfile, plugins: PluginSetup, p: ReloadPlan, hooks: HookRunner | None,
                    done: Applied) -> Error | None:
        """Stop what goes or changes, then start what comes; `done` records each step for a rollback."""
        m = self.m
        done.step = "stopping tasks"
        done.stopped_tasks = [n for n, t in m.procfile.tasks.items() if new.tasks.get(n) != t]
        await m.stop_tasks(done.stopped_tasks)
        done.step = "stopping bots"
        done.stopped_bots = p.removed + p.changed
        for name in done.stopped_bots:
            await m.automations.cancel(name)
            await m.health.drop(name)
        await m.fleet.stop_bots(done.stopped_bots, "removed or changed by reload", retire=True)
        for name in done.stopped_bots:
            m.drop_bot(name)
        if m.closing:
            log.warning("reload stopped after stopping %s: the master is shutting down", done.stopped_bots)
            return Error(message=f"{new.file}: reload stopped part-way (nothing new started): the master is shutting down")
        m.procfile, m.plugins = new, plugins
        m.fleet.bots = {n: m.fleet.bots[n] for n in new.start_order() if n in m.fleet.bots}
        if hooks is not None:  # before anything new starts, so the new hooks hear every event of the new bots
            done.old_hooks, m.hooks = m.hooks, hooks
            hooks.start()
            log.info("reload: event hooks replaced (%d now)", len(plugins.hooks))
        for name in p.added + p.changed:
            done.step = f"starting bot {name}"
            m.add_bot(name)
            done.added_bots.append(name)
        for name in [n for n in new.tasks if n not in m.tasks]:
            done.step = f"starting task {name}"
            m.start_tasks([name])
            done.started_tasks.append(name)
        return None

    async def roll_back(self, old: Procfile, old_plugins: PluginSetup, done: Applied) -> list[str]:
        """Undo `done`: what the new procfile started is stopped, what the reload stopped starts again from its old
        table. Bots and tasks the reload had not reached were never touched. Returns what could not start again."""
        m = self.m
        await m.stop_tasks([n for n in done.started_tasks if n in m.tasks])
        ours = [n for n in done.added_bots + done.stopped_bots if n in m.fleet.bots]  # stopped: if the stop itself failed
        for name in ours:
            await m.automations.cancel(name)
            await m.health.drop(name)
        await m.fleet.stop_bots(ours, "reload rolled back", retire=True)
        for name in ours:
            m.drop_bot(name)
        m.procfile, m.plugins = old, old_plugins
        if done.old_hooks is not None:
            new_hooks, m.hooks = m.hooks, done.old_hooks
            await new_hooks.stop()
            done.old_hooks = None
        left = []
        for name in [n for n in old.start_order() if n in done.stopped_bots and n not in m.fleet.bots]:
            try:
                m.add_bot(name)
            except Exception:  # the others still go back
                log.exception("reload rollback: bot %s could not be started again", name)
                left.append(f"bot {name}")
        m.fleet.bots = {n: m.fleet.bots[n] for n in old.start_order() if n in m.fleet.bots}
        for name in [n for n in done.stopped_tasks if n in old.tasks and n not in m.tasks]:
            try:
                m.start_tasks([name])
            except Exception:
                log.exception("reload rollback: task %s could not be started again", name)
                left.append(f"task {name}")
        log.warning("reload rolled back%s", f"; not started again: {', '.join(left)}" if left else "")
        return left

    def follow_reload_on_change(self, old: Procfile, new: Procfile) -> None:
        was, now = old.supervisor.reload_on_change, new.supervisor.reload_on_change
        if now and not was:
            self.m.automations.for_procfile(Path(new.file), self.m.reload)
        elif was and not now:
            self.m.automations.stop_procfile_watch()
