"""Races between verbs, recoveries, reload and shutdown (issue 12 items 1, 3, 4): a stop, a shutdown or a removal
wins over anything in flight, and no interleaving of verbs wedges an instance or leaves a process behind."""

from __future__ import annotations

import random
import re
import subprocess
import textwrap

import psutil
import pytest
from harness import SUPCTL, token_procs, wait_until

pytestmark = pytest.mark.timeout(90)

SLOW_STOP = """cmd = ["sh", "-c", "trap 'while [ ! -e release ]; do sleep .05; done; exit 0' TERM; while :; do sleep .1; done"]
stop_timeout = "60s"
"""
"""A bot that stops only once the test creates `release` next to the procfile: whatever is in flight stays in
flight until the next verb has provably arrived (no timing window on busy cores)."""


FAILING_CHECK = """[[bots.sick.health]]
check = "exec"
cmd = ["false"]
every = "100ms"
failures = 1
recover = "restart"
"""


def procfile(*tables: str) -> str:
    return textwrap.dedent("""
        [supervisor]
        state_dir = "state"
        [defaults]
        start_grace = "200ms"
        """) + "\n".join(tables)


def sick_bot() -> str:
    return "[bots.sick]\n" + SLOW_STOP + FAILING_CHECK


def recovery_in_flight(m) -> int:
    """Wait until the health restart of sick:0 is stopping the old process (held until release); its log index."""
    t = m.wait_transition("sick:0", "STOPPING")[0]  # the first check runs at spawn: often still STARTING
    assert t.reason == "health: exec: exit 1"
    return t.line


def verb(m, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*SUPCTL, *args], env=m.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def release(m, proc: subprocess.Popen[str]) -> str:
    """Let every held stop finish, then the verb's output."""
    (m.dir / "release").touch()
    return proc.communicate(timeout=60)[0]


def bot_cmdlines(m) -> list[list[str]]:
    """The master's children but the guardian and the exec checks (a `false` may still be ending)."""
    out = []
    for pid in m.bot_pids():
        try:
            cmd = psutil.Process(pid).cmdline()
        except psutil.NoSuchProcess:
            continue
        if cmd and cmd[0] != "false":
            out.append(cmd)
    return out


def starts_after(m, line: int, name: str = "sick:0") -> list[str]:
    return [f"{t.old} -> {t.new} ({t.reason})" for t in m.transitions(name) if t.new == "STARTING" and t.line > line]


def test_health_restart_in_flight_loses_to_stop(master) -> None:
    m = master(procfile(sick_bot()))
    line = recovery_in_flight(m)
    stop = verb(m, "stop", "sick")
    m.wait_line(r"stopping sick \(stop requested\)")
    out = release(m, stop)
    assert stop.returncode == 0 and "sick:0 STOPPED" in out, out
    m.wait_transition("sick:0", "STOPPED", old="STOPPING")  # the recovery's process ended; no restart after it
    assert starts_after(m, line) == []
    assert bot_cmdlines(m) == []
    assert m.stop() == 0


def test_health_restart_in_flight_loses_to_shutdown(master) -> None:
    m = master(procfile(sick_bot()))
    line = recovery_in_flight(m)
    shutdown = verb(m, "shutdown")
    m.wait_line(r"shutdown: stopping 1 bots")
    release(m, shutdown)
    assert shutdown.returncode == 0
    assert m.wait_exit() == 0
    assert starts_after(m, line) == []
    assert [(t.old, t.new) for t in m.transitions("sick:0") if t.line > line] == [("STOPPING", "STOPPED")]
    _, alive = psutil.wait_procs(token_procs(m.token), timeout=5)
    assert alive == []


def test_health_restart_in_flight_loses_to_removal_by_reload(master) -> None:
    m = master(procfile(sick_bot(), '[bots.keep]\ncmd = ["sleep", "60"]\n'))
    m.wait_transition("keep:0", "RUNNING")
    line = recovery_in_flight(m)
    m.procfile.write_text(procfile('[bots.keep]\ncmd = ["sleep", "60"]\n'))
    reload = verb(m, "reload")
    m.wait_line(r"stopping sick \(removed or changed by reload\)")
    out = release(m, reload)
    assert reload.returncode == 0 and re.search(r"removed: +sick", out), out
    m.wait_transition("sick:0", "STOPPED", old="STOPPING")
    assert starts_after(m, line) == []
    assert bot_cmdlines(m) == [["sleep", "60"]]
    assert m.stop() == 0


def test_shutdown_during_reload_leaves_no_orphans(master) -> None:
    m = master(procfile("[bots.a]\n" + SLOW_STOP))
    m.wait_transition("a:0", "RUNNING")
    m.procfile.write_text(procfile("[bots.a]\n" + SLOW_STOP + 'env = { CHANGED = "1" }\n',
                                   *(f'[bots.new{k}]\ncmd = ["sleep", "60"]\n' for k in range(4))))
    reload = verb(m, "reload")
    m.wait_transition("a:0", "STOPPING")  # the reload is stopping the changed bot, held until release
    shutdown = verb(m, "shutdown")
    status = m.state_dir / "status.json"
    wait_until(lambda: '"stopping"' in m.text(status), 30, "the master to begin its shutdown")
    out = release(m, reload)
    release(m, shutdown)
    assert shutdown.returncode == 0
    assert m.wait_exit() == 0
    assert "shutting down" in out, out
    assert [t for t in m.transitions() if t.bot.startswith("new")] == []
    assert "internal error" not in m.text()
    _, alive = psutil.wait_procs(token_procs(m.token), timeout=5)
    assert alive == []


def test_reload_after_shutdown_began_is_refused(master) -> None:
    m = master(procfile("[bots.a]\n" + SLOW_STOP))
    m.wait_transition("a:0", "RUNNING")
    shutdown = verb(m, "shutdown")
    m.wait_transition("a:0", "STOPPING")
    m.procfile.write_text(procfile("[bots.a]\n" + SLOW_STOP, '[bots.late]\ncmd = ["sleep", "60"]\n'))
    out = m.ctl("reload")
    assert out.returncode != 0 and "shutting down" in out.stderr + out.stdout, out.stdout + out.stderr
    release(m, shutdown)
    assert shutdown.returncode == 0 and m.wait_exit() == 0
    assert m.transitions("late") == []


@pytest.mark.parametrize("seed", [1, 2])
def test_twenty_concurrent_verbs_never_wedge_an_instance(master, seed: int) -> None:
    quick = 'cmd = ["sh", "-c", "trap \'sleep .5; exit 0\' TERM; while :; do sleep .1; done"]\nstop_timeout = "5s"\n'
    tables = [f"[bots.a]\n{quick}", f"[bots.b]\n{quick}instances = 2\n", f"[bots.c]\n{quick}depends_on = [\"a\"]\n"]
    m = master(procfile(*tables))
    for name in ("a:0", "b:0", "b:1", "c:0"):
        m.wait_transition(name, "RUNNING")
    m.procfile.write_text(procfile(*tables[:2], tables[2] + 'env = { RELOADED = "1" }\n'))
    rng = random.Random(seed)
    targets = ["a", "b", "c", "b:0", "b:1", "a:0", "all"]
    calls = [["reload"] if rng.random() < 0.2 else [rng.choice(["start", "stop", "restart"]), rng.choice(targets)]
             for _ in range(20)]
    procs = [subprocess.Popen([*SUPCTL, *c], env=m.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for c in calls]
    outputs = [" ".join(c) + ": " + p.communicate(timeout=60)[0] for c, p in zip(calls, procs)]
    everything = "\n".join(outputs) + m.text()
    assert "internal error" not in everything and "not a legal transition" not in everything, everything
    out = m.ctl("start", "all")
    assert out.returncode == 0, out.stdout + out.stderr

    last: list[str] = []

    def one_process_per_instance():
        rows = m.ctl("status", "--json").stdout
        pids = m.bot_pids()
        last[:] = [rows, str(pids)]
        return len(pids) == 4 and '"STOPPING"' not in rows and rows.count('"RUNNING"') == 4

    try:
        wait_until(one_process_per_instance, 30, "every instance RUNNING with exactly one process each")
    except BaseException:
        print("\n".join(last), "\n".join(outputs), m.text()[-5000:], sep="\n")
        raise
    assert m.stop() == 0


def test_reload_adding_reserved_bot_supctl_changes_nothing(master) -> None:
    m = master(procfile('[bots.a]\ncmd = ["sleep", "60"]\n'))
    m.wait_transition("a:0", "RUNNING")
    m.procfile.write_text(procfile('[bots.a]\ncmd = ["sleep", "60"]\nenv = { X = "1" }\n', '[bots.supctl]\ncmd = ["sleep", "60"]\n'))
    out = m.ctl("reload")
    assert out.returncode != 0 and "internal error" not in out.stderr, out.stderr
    assert "reload rejected, nothing changed" in out.stderr and "bots.supctl" in out.stderr and "reserved" in out.stderr
    assert [t.new for t in m.transitions("a")] == ["STARTING", "RUNNING"]
    m.procfile.write_text(procfile('[bots.a]\ncmd = ["sleep", "60"]\nenv = { X = "1" }\n'))
    out = m.ctl("reload")
    assert out.returncode == 0 and re.search(r"restarted: +a", out.stdout), out.stdout + out.stderr
    m.wait_transition("a:0", "RUNNING", count=2)
    assert m.stop() == 0


def test_reload_with_instances_2_pow_63_is_refused_and_the_master_lives(master) -> None:
    m = master(procfile('[bots.a]\ncmd = ["sleep", "60"]\n'))
    m.wait_transition("a:0", "RUNNING")
    m.procfile.write_text(procfile(f'[bots.a]\ncmd = ["sleep", "60"]\ninstances = {2**63 - 1}\n'))
    out = m.ctl("reload")
    assert out.returncode != 0 and "bots.a.instances: expected 1 to 1,000" in out.stderr, out.stdout + out.stderr
    assert [t.new for t in m.transitions("a")] == ["STARTING", "RUNNING"]
    assert m.ctl("status").returncode == 0
    assert m.stop() == 0
