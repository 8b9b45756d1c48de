"""What a reload does, bot by bot, and which [supervisor] changes only a master restart applies in full."""

from __future__ import annotations

from supervisor.config import procfile as config
from supervisor.config.reload_plan import plan

BASE = """
[supervisor]
state_dir = "state"
{sup}
[bots.feed]
cmd = ["feed"]
[bots.trader]
cmd = ["trader"]
{trader}
[bots.old]
cmd = ["old"]
"""


def load(sup: str = "", trader: str = "") -> config.Procfile:
    return config.loads(BASE.format(sup=sup, trader=trader).encode(), "p.toml")


def test_bots_added_removed_changed_kept():
    old = load()
    new = config.loads(BASE.format(sup="", trader="instances = 2").replace('[bots.old]\ncmd = ["old"]', '[bots.new]\ncmd = ["new"]').encode(), "p.toml")
    p = plan(old, new)
    assert (p.added, p.removed, p.changed, p.kept, p.needs_restart) == (["new"], ["old"], ["trader"], ["feed"], [])


def test_supervisor_keys_that_changed_need_a_master_restart():
    p = plan(load(), load(sup='timezone = "Europe/Berlin"\nreload_on_change = true\nhooks = [{ hook = "x" }]'))
    assert p.needs_restart == ["supervisor.timezone"]  # the reload itself starts the watcher and replaces the hooks
    assert p.changed == [] and p.kept == ["feed", "trader", "old"]


def test_supervisor_log_change_restarts_the_bots_that_inherit_it():
    p = plan(load(trader='log = { backups = 9 }'), load(sup="log = { backups = 2 }", trader='log = { backups = 9 }'))
    assert p.needs_restart == ["supervisor.log"]
    assert p.changed == ["feed", "old"] and p.kept == ["trader"]


def test_a_changed_fleet_degradation_is_named_not_silently_ignored():
    table = '\n[fleet.degradation]\nreduced = 0.9\n'
    old, new = load(), config.loads((BASE.format(sup="", trader="") + table).encode(), "p.toml")
    assert plan(old, new).needs_restart == ["fleet.degradation"]
