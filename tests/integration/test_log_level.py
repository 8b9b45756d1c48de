"""The master's log level: `[supervisor] log_level`, SUPCTL_LOGLEVEL winning over it, DEBUG showing check runs and
bus connects. Real masters with real children; waits follow supervisor.log with a deadline."""

from __future__ import annotations

import json

import pytest
from harness import bot, wait_until

from supervisor.output.master_log import LEVEL_ENV

DEBUG_CHECK = r"DEBUG health: bots\.api\.health\[0\] ran on pid \d+: pass"
DEBUG_BUS = r"DEBUG bus: node:0 connected"


def procfile(level: str) -> str:
    return f'''
        [supervisor]
        state_dir = "state"
        log_level = "{level}"
        [bots.api]
        cmd = {bot("sleeper")}
        [[bots.api.health]]
        check = "exec"
        cmd = ["true"]
        every = "200ms"
        [bots.node]
        cmd = {bot("bus_node", "pub")}
    '''


def test_debug_shows_check_runs_and_bus_connects(master) -> None:
    m = master(procfile("DEBUG"))
    m.wait_line(DEBUG_CHECK, count=2)
    m.wait_line(DEBUG_BUS)


def test_the_environment_wins_over_the_procfile(master, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LEVEL_ENV, "debug")
    m = master(procfile("INFO"))
    m.wait_line(DEBUG_CHECK)
    m.wait_line(DEBUG_BUS)


def test_info_from_the_environment_hides_debug(master, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LEVEL_ENV, "INFO")
    m = master(procfile("DEBUG"))
    m.wait_transition("node:0", "RUNNING")
    wait_until(lambda: len(json.loads(m.ctl("health", "api", "--json").stdout)[0]["records"]) >= 2, 15, "two check runs")
    assert m.stop() == 0
    assert "DEBUG" not in m.text()
    assert "INFO shutdown complete" in m.text()


def test_a_bad_level_in_the_environment_is_named_and_the_master_runs(master, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LEVEL_ENV, "LOUD")
    m = master(procfile("INFO"))
    m.wait_line(r"WARNING SUPCTL_LOGLEVEL='LOUD' is not one of DEBUG, INFO, WARNING, ERROR; using INFO")
    m.wait_transition("api:0", "RUNNING")
