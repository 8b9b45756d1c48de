"""examples/daemon: `supctl start` daemonizes (detached from the caller's session) with master.pid (the pid alone) and
status.json (state, start time, pid, last error) in the chosen state_dir; status, restart and stop of bots; SIGTERM to
the master stops the bots gracefully, removes the pidfile and leaves status.json saying stopped; `--nodaemonize` is
`-f` and SIGINT cleans up the same way; a master killed with SIGKILL leaves `died` and its last error; SUPCTL_LOGLEVEL=DEBUG adds the DEBUG lines; `supctl systemd --run-as` writes
`User=`. Compressed: the 5 s sampling (SAMPLE_EVERY) -> 0.2 s and the 30 s log check -> 200 ms."""

from __future__ import annotations

import grp
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from daemon_helpers import Daemon
from harness import SUPCTL, wait_until

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "daemon"
ANALYZE = shutil.which("systemd-analyze")


@pytest.fixture
def example(daemon: Daemon, tmp_path: Path) -> Daemon:
    """The example copied into the daemon fixture's directory, its procfile compressed; state_dir stays `run`."""
    shutil.copytree(EXAMPLE, tmp_path, ignore=shutil.ignore_patterns("run", "data", "__pycache__"), dirs_exist_ok=True)
    text = daemon.procfile.read_text()
    for old, new in [('SAMPLE_EVERY = "5"', 'SAMPLE_EVERY = "0.2"'), ('every = "30s"', 'every = "200ms"')]:
        assert old in text, old
        text = text.replace(old, new)
    daemon.procfile.write_text(text)
    daemon.state = tmp_path / "run"
    return daemon


def status_json(d: Daemon) -> dict:
    return json.loads((d.state / "status.json").read_text())


def log(d: Daemon, name: str) -> str:
    try:
        return (d.state / "logs" / f"{name}.log").read_text()
    except FileNotFoundError:
        return ""


def wait_gone(pid: int) -> None:
    def gone() -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    wait_until(gone, 60, f"master pid {pid} to exit")


def assert_cleaned_up(d: Daemon, pid: int, signame: str) -> None:
    """What SIGTERM or SIGINT to the master leaves: bots stopped gracefully in reverse dependency order, no pidfile,
    status.json saying stopped."""
    assert not (d.state / "master.pid").exists()
    st = status_json(d)
    assert (st["state"], st["pid"], st["last_error"]) == ("stopped", pid, None)
    assert re.search(r"^collector: SIGTERM: \d+ samples written and closed; bye$", log(d, "collector"), re.MULTILINE)
    assert re.search(r"^reporter: SIGTERM: last report: .*; bye$", log(d, "reporter"), re.MULTILINE)
    lines = log(d, "supervisor").splitlines()
    start = max(i for i, line in enumerate(lines) if f"received {signame}: shutting down" in line)
    order = [next(i for i in range(start, len(lines)) if want in lines[i])
             for want in ("reporter:0 STOPPING -> STOPPED", "stopping collector (master shutdown)", "shutdown complete")]
    assert order == sorted(order), "\n".join(lines[start:])


def test_daemon_start_status_restart_stop_and_sigterm(example: Daemon, monkeypatch: pytest.MonkeyPatch) -> None:
    d = example
    monkeypatch.setenv("SUPCTL_LOGLEVEL", "DEBUG")
    started = d.run("start", check=True)
    monkeypatch.delenv("SUPCTL_LOGLEVEL")
    pid = int(re.search(r"started master pid (\d+)", started.stdout).group(1))
    assert os.getsid(pid) != os.getsid(0) and psutil.Process(pid).terminal() is None, "detached from our session"
    assert (d.state / "master.pid").read_text() == f"{pid}\n"
    st = status_json(d)
    assert (st["state"], st["pid"], st["last_error"]) == ("running", pid, None) and st["started_at"] <= time.time()

    d.wait_states({"collector:0": "RUNNING", "reporter:0": "RUNNING"}, timeout=30)
    table = d.run("status", check=True).stdout
    assert re.search(r"^collector\s+0\s+RUNNING\s", table, re.MULTILINE) and re.search(r"^reporter\s+0\s+RUNNING\s", table, re.MULTILINE)
    wait_until(lambda: re.search(r" DEBUG health: bots\.collector\.health\[0\] ran on pid \d+: pass", log(d, "supervisor")),
               30, "a DEBUG line for a check run")
    wait_until(lambda: re.search(r" DEBUG bus: reporter:0 connected", log(d, "supervisor")), 30, "a DEBUG line for a bus connect")

    before = d.status("collector")[0]["pid"]
    d.run("restart", "collector", check=True)
    row = d.status("collector")[0]
    assert row["state"] == "RUNNING" and row["pid"] != before
    d.run("stop", "reporter", check=True)
    assert d.states()["reporter:0"] == "STOPPED" and "reporter: SIGTERM: last report:" in log(d, "reporter")
    d.run("start", "reporter", check=True)
    d.wait_states({"reporter:0": "RUNNING"})

    os.kill(pid, signal.SIGTERM)
    wait_gone(pid)
    assert_cleaned_up(d, pid, "SIGTERM")



def test_a_killed_master_leaves_its_last_error(example: Daemon) -> None:
    """kill -9 leaves no shutdown: the guardian kills the bots and writes `died` with the last error, status says so,
    and the next start removes the stale pidfile."""
    d = example
    pid = int(re.search(r"started master pid (\d+)", d.run("start", check=True).stdout).group(1))
    bots = [r["pid"] for r in d.status()]
    os.kill(pid, signal.SIGKILL)
    st = wait_until(lambda: (s := status_json(d))["state"] == "died" and s, 30, "status.json to say died")
    assert st["pid"] == pid and st["last_error"] == f"master pid {pid} died without shutting down (seen by its guardian)"
    wait_until(lambda: not any(psutil.pid_exists(b) for b in bots if b), 30, "the guardian to kill the bots")
    said = d.run("status")
    assert said.returncode == 1 and f"(pid {pid}) died" in said.stderr, said.stderr
    again = d.run("start", check=True)
    assert "removed stale master.pid" in again.stderr
    new = int(re.search(r"started master pid (\d+)", again.stdout).group(1))
    assert f"master pid {new} stopped" in d.run("shutdown", check=True).stdout
    assert status_json(d)["state"] == "stopped" and not (d.state / "master.pid").exists()


def test_nodaemonize_is_foreground_and_sigint_cleans_up(example: Daemon) -> None:
    d = example
    env = {**os.environ, "SUPCTL_TEST_TOKEN": d.token}
    with open(d.root / "master.out", "wb") as out:
        proc = subprocess.Popen([*SUPCTL, "start", "--nodaemonize", str(d.procfile)], cwd=d.root, env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until(lambda: (d.state / "master.pid").exists(), 30, "master.pid")
        assert (d.state / "master.pid").read_text() == f"{proc.pid}\n", "the master is the process we started"
        d.wait_states({"collector:0": "RUNNING", "reporter:0": "RUNNING"}, timeout=30)
        wait_until(lambda: "collector-0 | collector up" in (d.root / "master.out").read_text(), 15, "bot lines on stdout")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert_cleaned_up(d, proc.pid, "SIGINT")


def test_system_unit_runs_as_the_named_user(example: Daemon, tmp_path: Path) -> None:
    d = example
    done = d.run("systemd", "--run-as", "daemon", check=True)  # an account every Debian-like system has
    unit = done.stdout
    group = grp.getgrgid(pwd.getpwnam("daemon").pw_gid).gr_name
    assert "User=daemon\n" in unit and f"Group={group}\n" in unit and "warning" not in done.stderr
    assert f'"start" "-f" "-c" "{d.procfile}"' in unit and "Type=notify" in unit
    assert "calls User=nobody unsafe" in d.run("systemd", "--run-as", "nobody", check=True).stderr
    missing = d.run("systemd", "--run-as", "no-such-user-xyz")
    assert missing.returncode == 1 and "no account named 'no-such-user-xyz'" in missing.stderr
    if ANALYZE:
        path = tmp_path / "supctl-daemon.service"
        path.write_text(unit)
        checked = subprocess.run([ANALYZE, "verify", "--man=no", str(path)], capture_output=True, text=True, timeout=60, check=False)
        assert checked.returncode == 0 and checked.stderr == "", checked.stderr
