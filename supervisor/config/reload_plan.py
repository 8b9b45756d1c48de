"""What a reload must do: compare the running procfile with the new one, bot by bot."""

from __future__ import annotations

import msgspec

from .procfile import Procfile


class ReloadPlan(msgspec.Struct, frozen=True):
    added: list[str]
    removed: list[str]
    changed: list[str]
    kept: list[str]
    needs_restart: list[str]
    """Changed [supervisor] keys, which a running master applies at most in part (the master log; the timezone
    and plugin_paths of kept bots): they take full effect when the master restarts."""


APPLIED_BY_RELOAD = {"reload_on_change", "hooks"}
"""[supervisor] keys a reload applies in full: the procfile watcher starts or stops, the hooks are replaced."""


def effective(procfile: Procfile, name: str) -> tuple[object, ...]:
    """Everything that shapes a bot's processes: its table, env_file contents, cwd and log settings."""
    return (procfile.bots[name], procfile.bot_env(name), procfile.bot_cwd(name), procfile.log_config(name))


def plan(old: Procfile, new: Procfile) -> ReloadPlan:
    added = [n for n in new.bots if n not in old.bots]
    removed = [n for n in old.bots if n not in new.bots]
    common = [n for n in new.bots if n in old.bots]
    changed = [n for n in common if effective(old, n) != effective(new, n)]
    kept = [n for n in common if n not in changed]
    sup_old, sup_new = old.supervisor, new.supervisor
    needs_restart = [f"supervisor.{k}" for k in sup_old.__struct_fields__
                     if k not in APPLIED_BY_RELOAD and getattr(sup_old, k) != getattr(sup_new, k)]
    if old.http != new.http:
        needs_restart.append("http")
    needs_restart += [f"bus.{k}" for k in old.bus.__struct_fields__ if getattr(old.bus, k) != getattr(new.bus, k)]
    needs_restart += [f"fleet.{k}" for k in old.fleet.__struct_fields__ if getattr(old.fleet, k) != getattr(new.fleet, k)]
    return ReloadPlan(added=added, removed=removed, changed=changed, kept=kept, needs_restart=needs_restart)
