"""Every verb against a real daemonized master: start, status, logs, stop/restart/start, signal, reload, shutdown."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil
from daemon_helpers import SLEEPER, SUPCTL, Daemon, wait_for


def two_bots(d: Daemon, extra: str = "") -> None:
    d.write(f'''
        [defaults]
        start_grace = "100ms"
        stop_timeout = "3s"
        [bots.feed]
        cmd = ["{sys.executable}", "-c", {json.dumps(SLEEPER)}]
        [bots.trader]
        cmd = ["{sys.executable}", "-c", {json.dumps(SLEEPER)}]
        instances = 2
        depends_on = ["feed"]
    ''' + extra)


def test_start_status_second_start_and_shutdown(daemon: Daemon) -> None:
    two_bots(daemon)
    out = daemon.run("start", str(daemon.procfile), check=True)
    assert "started master pid" in out.stdout
    daemon.wait_states({"feed:0": "RUNNING", "trader:0": "RUNNING", "trader:1": "RUNNING"})
    rows = daemon.status()
    assert all(r["pid"] and r["rss"] for r in rows)
    table = daemon.run("status", check=True).stdout
    assert table.splitlines()[0].split()[:4] == ["BOT", "INST", "STATE", "PID"]
    pids = {r["pid"] for r in rows}
    again = daemon.run("start", str(daemon.procfile), check=True)
    assert "already running" in again.stdout
    assert {r["pid"] for r in daemon.status()} == pids
    status = json.loads((daemon.state / "status.json").read_text())
    assert status["state"] == "running" and status["procfile"] == str(daemon.procfile)
    master = psutil.Process(status["pid"])
    assert daemon.run("shutdown", check=True).returncode == 0
    assert not master.is_running() or master.status() == psutil.STATUS_ZOMBIE
    assert json.loads((daemon.state / "status.json").read_text())["state"] == "stopped"
    assert not any(psutil.pid_exists(p) for p in pids)
    gone = daemon.run("status")
    assert gone.returncode == 1 and "supctl start" in gone.stderr


def test_state_dir_and_socket_are_owner_only(daemon: Daemon) -> None:
    two_bots(daemon)
    daemon.run("start", check=True)
    assert stat.S_IMODE(daemon.state.stat().st_mode) == 0o700
    assert stat.S_IMODE((daemon.state / "control.sock").stat().st_mode) == 0o600
    assert stat.S_IMODE((daemon.state / "status.json").stat().st_mode) == 0o600


def test_stop_start_restart_one_bot_instance_and_all(daemon: Daemon) -> None:
    two_bots(daemon)
    daemon.run("start", check=True)
    daemon.wait_states({"trader:1": "RUNNING", "feed:0": "RUNNING"})
    before = {f"{r['bot']}:{r['instance']}": r["pid"] for r in daemon.status()}
    assert daemon.run("stop", "trader:1", check=True).stdout.strip() == "trader:1 STOPPED"
    assert daemon.states() == {"feed:0": "RUNNING", "trader:0": "RUNNING", "trader:1": "STOPPED"}
    assert "trader:1 RUNNING" in daemon.run("start", "trader:1", check=True).stdout
    daemon.run("restart", "trader", check=True)
    after = {f"{r['bot']}:{r['instance']}": r["pid"] for r in daemon.status()}
    assert after["feed:0"] == before["feed:0"]
    assert after["trader:0"] != before["trader:0"]
    daemon.run("stop", "all", check=True)
    assert set(daemon.states().values()) == {"STOPPED"}
    daemon.run("start", "all", check=True)
    daemon.wait_states({"feed:0": "RUNNING", "trader:0": "RUNNING", "trader:1": "RUNNING"})
    missing = daemon.run("stop", "nosuch")
    assert missing.returncode == 1 and "no bot named 'nosuch'" in missing.stderr


def test_signal_reaches_the_bot(daemon: Daemon, tmp_path: Path) -> None:
    marker = tmp_path / "got-usr1"
    code = f"import signal, time, pathlib\nsignal.signal(signal.SIGUSR1, lambda *a: pathlib.Path({str(marker)!r}).touch())\nwhile True: time.sleep(1)"
    daemon.write(f'''
        [bots.sig]
        cmd = ["{sys.executable}", "-c", {json.dumps(code)}]
        start_grace = "300ms"
    ''')
    daemon.run("start", check=True)
    daemon.wait_states({"sig:0": "RUNNING"})
    assert "sent SIGUSR1 to 1" in daemon.run("signal", "USR1", "sig", check=True).stdout
    wait_for(marker.exists, what="the bot's SIGUSR1 handler")
    assert daemon.run("signal", "NOPE", "sig").returncode == 1


def test_reload_adds_removes_changes_and_keeps(daemon: Daemon) -> None:
    two_bots(daemon, f'''
        [bots.old]
        cmd = ["{sys.executable}", "-c", {json.dumps(SLEEPER)}]
    ''')
    daemon.run("start", check=True)
    daemon.wait_states({"feed:0": "RUNNING", "trader:1": "RUNNING", "old:0": "RUNNING"})
    before = {f"{r['bot']}:{r['instance']}": r["pid"] for r in daemon.status()}
    two_bots(daemon, f'''
        [bots.new]
        cmd = ["{sys.executable}", "-c", {json.dumps(SLEEPER)}]
    ''')
    text = daemon.procfile.read_text().replace("instances = 2\n", "instances = 2\nenv = { MODE = \"live\" }\n")
    daemon.procfile.write_text(text)
    reply = json.loads(daemon.run("reload", "--json", check=True).stdout)
    assert reply == {"added": ["new"], "removed": ["old"], "restarted": ["trader"], "kept": ["feed"],
                     "needs_restart": []}
    daemon.wait_states({"new:0": "RUNNING", "trader:0": "RUNNING", "trader:1": "RUNNING"})
    after = {f"{r['bot']}:{r['instance']}": r["pid"] for r in daemon.status()}
    assert "old:0" not in after and not psutil.pid_exists(before["old:0"])
    assert after["feed:0"] == before["feed:0"]
    assert after["trader:0"] != before["trader:0"]
    env = psutil.Process(after["trader:0"]).environ()
    assert env["MODE"] == "live"


def test_reload_names_the_supervisor_keys_that_need_a_master_restart(daemon: Daemon) -> None:
    two_bots(daemon)
    daemon.run("start", check=True)
    daemon.wait_states({"feed:0": "RUNNING", "trader:1": "RUNNING"})
    text = daemon.procfile.read_text()
    daemon.procfile.write_text(text.replace('state_dir = "state"\n', 'state_dir = "state"\ntimezone = "Europe/Berlin"\nlog = { backups = 2 }\n'))
    out = daemon.run("reload", check=True).stdout
    assert "restarted: feed, trader" in out  # the bots' logs follow [supervisor] log at once
    assert "supervisor.log, supervisor.timezone changed: restart the master" in out
    assert "supervisor.log, supervisor.timezone changed; this takes full effect when the master restarts" in (daemon.state / "logs" / "supervisor.log").read_text()


def test_reload_of_an_invalid_procfile_changes_nothing(daemon: Daemon) -> None:
    two_bots(daemon)
    daemon.run("start", check=True)
    daemon.wait_states({"feed:0": "RUNNING", "trader:1": "RUNNING"})
    before = daemon.status()
    daemon.procfile.write_text(daemon.procfile.read_text().replace("instances = 2", 'instances = "two"'))
    bad = daemon.run("reload")
    assert bad.returncode == 1 and "bots.trader.instances" in bad.stderr and "nothing changed" in bad.stderr
    assert [r["pid"] for r in daemon.status()] == [r["pid"] for r in before]


def test_sighup_reloads(daemon: Daemon) -> None:
    two_bots(daemon)
    daemon.run("start", check=True)
    daemon.wait_states({"feed:0": "RUNNING"})
    two_bots(daemon, f'''
        [bots.late]
        cmd = ["{sys.executable}", "-c", {json.dumps(SLEEPER)}]
    ''')
    os.kill(daemon.master_pid(), 1)
    daemon.wait_states({"late:0": "RUNNING"})


def test_logs_tail_and_follow_across_rotation(daemon: Daemon) -> None:
    code = ("import sys, time\nfor i in range(5): print('early', i)\n"
            "sys.stdout.flush()\nfor line in sys.stdin: pass\n"
            "time.sleep(3600)")
    daemon.write(f'''
        [bots.talker]
        cmd = ["{sys.executable}", "-c", {json.dumps(code)}]
        log = {{ max_size = "2KB", backups = 2 }}
        [bots.quiet]
        cmd = ["{sys.executable}", "-c", {json.dumps(SLEEPER)}]
    ''')
    daemon.run("start", check=True)
    log = daemon.state / "logs" / "talker.log"
    wait_for(lambda: log.exists() and "early 4" in log.read_text(), what="early lines")
    tail = daemon.run("logs", "talker", "-n", "2", check=True).stdout.splitlines()
    assert tail == ["early 3", "early 4"]
    env = {**os.environ, "SUPCTL_PROCFILE": str(daemon.procfile)}
    follower = subprocess.Popen([*SUPCTL, "logs", "talker", "-f", "-n", "1"], cwd=daemon.root, env=env,
                                stdout=subprocess.PIPE, text=True)
    try:
        assert follower.stdout.readline().strip() == "early 4"  # it follows from before its last lines were printed
        with open(log, "a") as f:
            f.write("after-1\n")
        assert follower.stdout.readline().strip() == "after-1"
        with open(log, "a") as f:
            f.write("x" * 3000 + "\n")
        os.replace(log, log.with_name("talker.log.1"))
        log.write_text("after-rotation\n")
        got = [follower.stdout.readline().strip() for _ in range(2)]
        assert got == ["x" * 3000, "after-rotation"]
    finally:
        follower.terminate()
        follower.wait(10)
    both = daemon.run("logs", "-n", "1", check=True).stdout
    assert "talker | after-rotation" in both


def test_stale_pidfile_and_socket_are_cleaned(daemon: Daemon) -> None:
    two_bots(daemon)
    daemon.state.mkdir(mode=0o700)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (daemon.state / "master.pid").write_text(json.dumps([dead.pid, time.time() - 1000]))
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(daemon.state / "control.sock"))
    stale.close()
    out = daemon.run("start", check=True)
    assert "removed stale master.pid, control.sock" in out.stderr
    daemon.wait_states({"feed:0": "RUNNING"})


def test_master_that_cannot_start_prints_why(daemon: Daemon) -> None:
    daemon.write('''
        [bots.x]
        cmd = "true"
        instances = 0
    ''')
    bad = daemon.run("start")
    assert bad.returncode == 1 and "bots.x.instances" in bad.stderr


def test_usage_errors_exit_2(daemon: Daemon) -> None:
    assert daemon.run("stop").returncode == 2
    assert daemon.run("frobnicate").returncode == 2
