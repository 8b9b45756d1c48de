"""Nothing escapes: a bot's descendant that left its process group (setsid, double fork) dies with the bot.

Both containments run where this machine allows: cgroup v2 (the master makes a cgroup per instance) and the
subreaper (the master adopts orphans). Each case: stop, shutdown, restart, and a SIGKILLed master.
"""

from __future__ import annotations

import os
import signal

import psutil
import pytest
from harness import BOTS, cgroups_unusable, wait_until

pytestmark = pytest.mark.timeout(60)

MODES = ("cgroup", "subreaper")


def procfile(mode: str) -> str:
    return f"""
    [supervisor]
    state_dir = "state"
    containment = "{mode}"
    [defaults]
    start_grace = "100ms"
    stop_timeout = "5s"
    [bots.esc]
    cmd = ["sh", "{BOTS / 'escaper.sh'}"]
    """


def start(master, mode: str):
    if mode == "cgroup" and (why := cgroups_unusable()):
        pytest.skip(f"cgroup mode cannot run on this machine: {why}")
    m = master(procfile(mode))
    m.wait_line(f"containment: {mode}")
    return m, escaped(m)


def escaped(m, count: int = 1) -> list[psutil.Process]:
    """The two processes that left the bot's group: `setsid sleep 998` and the double-forked `sleep 997`."""
    pids = [int(x.group(1)) for x in m.wait_line(r"^(?:setsid|doublefork)=(\d+)$", count=2 * count, path=m.logs / "esc.log", timeout=30)]
    procs = [psutil.Process(p) for p in pids[-2:]]
    leader = m.wait_transition("esc:0", "RUNNING", count=count, old="STARTING")[-1].pid
    for p in procs:  # `echo $!` can come before the child's setsid()
        wait_until(lambda: os.getsid(p.pid) != os.getsid(leader), 10, f"pid {p.pid} to leave the bot's session")
    return procs


def assert_gone(procs: list[psutil.Process], after: str) -> None:
    _, alive = psutil.wait_procs(procs, timeout=10)
    assert not alive, f"still running after {after}: {[' '.join(p.cmdline()) for p in alive]}"


@pytest.mark.parametrize("mode", MODES)
def test_setsid_grandchild_dies_with_its_bot_on_stop(master, mode):
    m, procs = start(master, mode)
    assert m.ctl("stop", "esc").returncode == 0
    assert_gone(procs, "supctl stop")
    m.wait_transition("esc", "STOPPED")
    assert not any("sent SIGKILL" in line for line in m.lines()), "the escaped sleeps should get the stop signal"


@pytest.mark.parametrize("mode", MODES)
def test_setsid_grandchild_dies_with_its_bot_on_shutdown(master, mode):
    m, procs = start(master, mode)
    assert m.stop() == 0
    assert_gone(procs, "shutdown")


@pytest.mark.parametrize("mode", MODES)
def test_setsid_grandchild_dies_with_its_bot_on_restart(master, mode):
    m, procs = start(master, mode)
    assert m.ctl("restart", "esc").returncode == 0
    assert_gone(procs, "supctl restart")
    fresh = escaped(m, count=2)
    assert all(p.is_running() for p in fresh)


@pytest.mark.parametrize("mode", MODES)
def test_setsid_grandchild_dies_with_its_bot_when_the_bot_crashes(master, mode):
    m, procs = start(master, mode)
    leader = m.wait_transition("esc:0", "RUNNING", old="STARTING")[0].pid
    os.kill(leader, signal.SIGKILL)
    assert_gone(procs, "the bot's crash (before its restart)")
    m.wait_transition("esc", "RUNNING", count=2)


@pytest.mark.parametrize("mode", MODES)
def test_setsid_grandchild_dies_with_a_sigkilled_master(master, mode):
    m, procs = start(master, mode)
    m.signal(signal.SIGKILL)
    m.wait_exit()
    assert_gone(procs, "the master's SIGKILL (the guardian's job)")


def cgroup_of(pid: int) -> str:
    with open(f"/proc/{pid}/cgroup") as f:
        return next(line[3:].strip() for line in f if line.startswith("0::"))


def test_what_a_bot_forks_before_it_is_moved_into_its_cgroup_follows_it(master):
    """The child starts in the master's cgroup and is moved into its own while it starts (no grace-period wait on
    the restart path); escaper.sh leaves its session in its first milliseconds, before that move, and both
    escapees still end up in the bot's cgroup, not the master's."""
    m, procs = start(master, "cgroup")
    leader = m.wait_transition("esc:0", "RUNNING", old="STARTING")[-1].pid
    box = cgroup_of(leader)
    assert box.endswith(f"/supctl-{m.pid}/esc@0"), box
    wait_until(lambda: all(cgroup_of(p.pid) == box for p in procs), 10,
               f"both escapees in {box}: {[cgroup_of(p.pid) for p in procs]}")
    assert cgroup_of(m.pid) != box
