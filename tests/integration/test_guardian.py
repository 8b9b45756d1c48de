"""The guardian: never blocks the master, is restarted the moment it dies, costs about a shell, and records a
dead master in status.json; the CLI checks the pid in status.json before trusting it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from harness import BOTS, PY, guardian_of, is_guardian, wait_until

pytestmark = pytest.mark.timeout(60)

FLOOD = Path(__file__).with_name("guardian_flood.py")
MIB = 1024 * 1024
ESCAPER = f"""
[supervisor]
state_dir = "state"
[defaults]
start_grace = "100ms"
[bots.esc]
cmd = ["sh", "{BOTS / 'escaper.sh'}"]
"""


def the_guardian(m) -> psutil.Process:
    return wait_until(lambda: guardian_of(m.pid), 10, "the guardian")  # type: ignore[return-value]


def stopped(p: psutil.Process) -> bool:
    return p.status() == psutil.STATUS_STOPPED


def escaped(m) -> list[psutil.Process]:
    lines = m.wait_line(r"^(?:setsid|doublefork)=(\d+)$", count=2, path=m.logs / "esc.log")
    return [psutil.Process(int(x.group(1))) for x in lines]


def test_frozen_guardian_never_blocks_the_loop(tmp_path):
    """400 KB of announcements to a SIGSTOPped guardian return at once; once it runs again it knows the last group."""
    victim = subprocess.Popen(["sleep", "1000"], start_new_session=True)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    fake = subprocess.Popen([PY, str(FLOOD), str(victim.pid)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    guardian = None
    try:
        assert fake.stdout is not None and fake.stdin is not None
        guardian = psutil.Process(int(fake.stdout.readline().strip().partition("=")[2]))
        guardian.send_signal(signal.SIGSTOP)
        wait_until(lambda: stopped(guardian), 10, "the guardian to stop")
        fake.stdin.write("go\n")
        fake.stdin.flush()
        flooded = fake.stdout.readline()  # the old blocking write never gets here (the test times out)
        assert flooded.startswith("flooded in"), flooded
        assert float(flooded.split()[2]) < 5.0, flooded
        guardian.send_signal(signal.SIGCONT)
        assert fake.stdout.readline().strip() == "told"
        fake.kill()  # the stand-in master dies: the guardian must kill the group it was told last
        fake.wait()
        assert victim.wait(timeout=10) == -signal.SIGKILL
    finally:
        for p in (fake, victim):
            if p.poll() is None:
                p.kill()
                p.wait()
        if guardian is not None and guardian.is_running():
            guardian.kill()


def test_killed_guardian_is_restarted(master):
    m = master(ESCAPER)
    m.wait_transition("esc", "RUNNING")
    procs = escaped(m)
    leader = psutil.Process(m.bot_pids()[0])
    old = the_guardian(m)
    old.kill()
    (line,) = m.wait_line(rf"guardian pid {old.pid} died \([^)]+\); started guardian pid (\d+)")
    new = psutil.Process(int(line.group(1)))
    assert is_guardian(new) and new.cmdline()[-1] == str(m.pid)
    m.signal(signal.SIGKILL)  # the new guardian must know everything the old one knew
    m.wait_exit()
    _, alive = psutil.wait_procs([leader, *procs], timeout=10)
    assert not alive, f"left running by the restarted guardian: {[p.cmdline() for p in alive]}"


def test_guardian_costs_at_most_1_5_mib(master):
    """At most 1.5 MiB of RSS (a Python guardian: ~9.5 MiB; a freshly started sh: 1.6 MiB). The guardian is a fork of
    the sh that started, so it maps only the pages it touches afterwards: about 0.8 MiB, far from the bound."""
    m = master(ESCAPER)
    m.wait_transition("esc", "RUNNING")
    mem = the_guardian(m).memory_full_info()
    assert mem.uss <= 1.5 * MIB, f"guardian USS {mem.uss / MIB:.2f} MiB"
    assert mem.rss <= 1.5 * MIB, f"guardian RSS {mem.rss / MIB:.2f} MiB"
    assert m.stop() == 0


def status_json(m) -> dict:
    try:
        return json.loads((m.state_dir / "status.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def test_dead_master_shows_as_died(master):
    m = master(ESCAPER)
    m.wait_transition("esc", "RUNNING")
    assert status_json(m)["state"] == "running"
    killed_at = time.time()
    m.signal(signal.SIGKILL)
    m.wait_exit()
    died = wait_until(lambda: status_json(m).get("state") == "died" and status_json(m), 10, "status.json to say died")
    assert died["pid"] == m.pid
    assert killed_at - 1 <= died["died_at"] <= time.time() + 1
    assert "died without shutting down" in died["last_error"]
    out = m.ctl("status")
    assert out.returncode != 0 and f"(pid {m.pid}) died at" in out.stderr, out.stderr


def test_cli_checks_the_pid_in_status_json(master):
    """With its guardian frozen, a SIGKILLed master leaves status.json saying running: the CLI must not believe it."""
    m = master(ESCAPER)
    m.wait_transition("esc", "RUNNING")
    procs = escaped(m)
    guardian = the_guardian(m)
    guardian.send_signal(signal.SIGSTOP)
    wait_until(lambda: stopped(guardian), 10, "the guardian to stop")
    m.signal(signal.SIGKILL)
    m.wait_exit()
    assert status_json(m)["state"] == "running"
    out = m.ctl("status")
    assert out.returncode != 0 and f"(pid {m.pid}) died" in out.stderr and "still said 'running'" in out.stderr, out.stderr
    guardian.send_signal(signal.SIGCONT)
    _, alive = psutil.wait_procs(procs, timeout=10)
    assert not alive
    wait_until(lambda: status_json(m).get("state") == "died", 10, "the guardian to record the death")


def test_validate_start_and_status_say_when_the_fleet_needs_more_fds(master, tmp_path):
    """hard limit 100: 10 instances need about 134 descriptors. The master raises its soft limit to the hard one."""
    import resource

    def limits() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 100))

    text = ESCAPER.replace('cmd = ["sh"', 'instances = 10\ncmd = ["sh"')
    procfile = tmp_path / "fds.toml"
    procfile.write_text(text.replace("[bots.esc]", "[bots.sl]").replace(f"\"sh\", \"{BOTS / 'escaper.sh'}\"", '"sleep", "1000"'))
    out = subprocess.run([sys.executable, "-m", "supervisor.cli.main", "validate", str(procfile)],
                         capture_output=True, text=True, preexec_fn=limits)
    assert out.returncode == 0 and "needs about 134 file descriptors but the master may open at most 100" in out.stderr, out.stderr
    m = master(procfile.read_text(), preexec=limits)
    m.wait_line(r"WARNING the fleet needs about 134 file descriptors but the master may open at most 100")
    assert "Max open files            100                  100" in Path(f"/proc/{m.pid}/limits").read_text()
    m.wait_transition("sl", "RUNNING", count=10)
    status = m.ctl("status")
    assert status.returncode == 0 and "the fleet needs about 134 file descriptors, the master's limit is 100" in status.stderr
    fds = json.loads(m.ctl("status", "--json").stdout)["fds"]
    assert (fds["soft"], fds["hard"], fds["needed"]) == (100, 100, 134) and 10 < fds["open"] <= 100, fds
    assert m.stop() == 0
