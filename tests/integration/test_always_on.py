"""Always on: sd_notify against a stand-in for systemd's socket, scheduled tasks, watch restarts,
procfile reload on change, and a master that is killed and started again."""

from __future__ import annotations

import re
import signal
import socket
from pathlib import Path

import psutil
import pytest
from harness import bot


def notify_socket(tmp_path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.settimeout(15)
    return sock


def receive_until(sock: socket.socket, wanted: str) -> list[str]:
    """Every datagram up to and including the first that contains `wanted` (the socket's timeout bounds the wait)."""
    seen = []
    while True:
        msg = sock.recv(4096).decode()
        seen.append(msg)
        if wanted in msg:
            return seen


def test_sd_notify_ready_status_watchdog_stopping(master, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sock = notify_socket(tmp_path)
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify.sock"))
    monkeypatch.setenv("WATCHDOG_USEC", "200000")
    m = master(f'''
        [supervisor]
        state_dir = "state"
        [bots.app]
        cmd = {bot("sleeper")}
        start_grace = "300ms"
    ''')
    before_ready = receive_until(sock, "READY=1")
    assert m.transitions("app:0")[-1].new == "RUNNING", "READY=1 came before the bot was RUNNING"
    assert any(msg.startswith("STATUS=") for msg in before_ready) or "STATUS=" in before_ready[-1]
    receive_until(sock, "WATCHDOG=1")
    receive_until(sock, "WATCHDOG=1")
    env = psutil.Process(m.bot_pids()[0]).environ()
    assert "NOTIFY_SOCKET" not in env and "WATCHDOG_USEC" not in env
    m.signal(signal.SIGTERM)
    receive_until(sock, "STOPPING=1")
    assert m.wait_exit() == 0


def test_tasks_every_overlap_timeout_and_run_now(master) -> None:
    m = master(f'''
        [supervisor]
        state_dir = "state"
        [bots.app]
        cmd = {bot("sleeper")}
        start_grace = "100ms"
        [tasks.tick]
        cmd = ["sh", "-c", "echo tick $SUPCTL_TASK"]
        every = "200ms"
        [tasks.slow]
        cmd = ["sleep", "30"]
        every = "200ms"
        timeout = "1s"
    ''')
    m.wait_line(r"task tick: exited \(code 0\)", count=2)
    assert "tick tick" in m.text(m.logs / "tick.log")
    m.wait_line(r"task slow: run due at .* skipped, the previous run is still going")
    m.wait_line(r"task slow: timeout \(still running after 1s\)")
    ran = m.ctl("run", "tick")
    assert ran.returncode == 0 and "tick: exited, exit code 0" in ran.stdout
    table = m.ctl("status", "--tasks").stdout
    assert re.search(r"^slow\s+every 200ms\s+\S+\s+[01]\s+[1-9]\d*\s", table, re.M), table
    missing = m.ctl("run", "nope")
    assert missing.returncode == 1 and "no task named 'nope'" in missing.stderr


def test_watch_restarts_once_per_burst(master, tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    m = master(f'''
        [supervisor]
        state_dir = "state"
        [bots.app]
        cmd = {bot("sleeper")}
        start_grace = "100ms"
        watch = ["src/"]
        watch_ignore = ["*.log"]
    ''')
    m.wait_transition("app:0", "RUNNING")
    m.wait_line(r"app: watch armed on src/")
    for i in range(10):
        (tmp_path / "src" / f"m{i}.py").write_text(str(i))
    m.wait_line(r"app: restarting \(watched files changed")
    m.wait_transition("app:0", "RUNNING", count=2)
    (tmp_path / "src" / "later.py").write_text("x")
    m.wait_line(r"app: restarting \(watched files changed", count=2)
    m.wait_transition("app:0", "RUNNING", count=3)
    restarts = [line for line in m.lines() if "app: restarting (watched files changed" in line]
    assert len(restarts) == 2, restarts
    assert "later.py" in restarts[1]


def test_procfile_change_reloads(master) -> None:
    text = f'''
        [supervisor]
        state_dir = "state"
        reload_on_change = true
        [bots.app]
        cmd = {bot("sleeper")}
        start_grace = "100ms"
    '''
    m = master(text)
    m.wait_transition("app:0", "RUNNING")
    m.wait_line(r"the procfile watcher: watch armed on procfile.toml")
    m.procfile.write_text(m.procfile.read_text() + f'[bots.extra]\ncmd = {bot("sleeper")}\nstart_grace = "100ms"\n')
    m.wait_transition("extra:0", "RUNNING")
    m.wait_line(r"reload: added \['extra'\]")


def test_reload_turns_reload_on_change_on_and_off(master) -> None:
    head = '[supervisor]\nstate_dir = "state"\n'
    app = f'[bots.app]\ncmd = {bot("sleeper")}\nstart_grace = "100ms"\n'
    m = master(head + app)
    m.wait_transition("app:0", "RUNNING")
    m.procfile.write_text(head + "reload_on_change = true\n" + app)
    out = m.ctl("reload").stdout
    assert "kept:      app" in out and "restart the master" not in out
    m.wait_line(r"the procfile watcher: watch armed on procfile.toml")
    extra = f'[bots.extra]\ncmd = {bot("sleeper")}\nstart_grace = "100ms"\n'
    m.procfile.write_text(head + "reload_on_change = true\n" + app + extra)
    m.wait_transition("extra:0", "RUNNING")
    # Turned off by an edit the watcher itself reloads: that reload must finish (late starts), then the watcher ends.
    late = f'[bots.late]\ncmd = {bot("sleeper")}\nstart_grace = "100ms"\n'
    m.procfile.write_text(head + app + extra + late)
    m.wait_transition("late:0", "RUNNING")
    m.wait_line(r"reload_on_change is off: no longer watching the procfile")
    assert m.stop() == 0


def test_master_killed_and_started_again_leaves_nothing_behind(master, tmp_path: Path) -> None:
    text = f'''
        [supervisor]
        state_dir = "state"
        [bots.family]
        cmd = {bot("stubborn")}
        start_grace = "100ms"
        restart_limit = {{ count = 0, window = "1m" }}
    '''
    first = master(text)
    line = first.wait_line(r"child=(\d+) grandchild=(\d+)", path=first.logs / "family.log")[0]
    old = [psutil.Process(int(line[1])), psutil.Process(int(line[2]))]
    first.signal(signal.SIGKILL)
    first.wait_exit()
    gone, alive = psutil.wait_procs(old, timeout=10)
    assert not alive, f"left running after the master was killed: {alive}"
    assert (first.state_dir / "master.pid").exists() and (first.state_dir / "control.sock").exists()
    ran = sum(t.new == "RUNNING" for t in first.transitions("family:0"))  # the same log: the first may have got there
    second = master(text)
    second.wait_transition("family:0", "RUNNING", count=ran + 1)
    assert "removed stale master.pid, control.sock" in second.output()
    assert sum("starting procfile" in line for line in second.lines()) == 2
    assert second.stop() == 0
