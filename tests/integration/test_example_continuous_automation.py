"""examples/continuous-automation: the automation is restarted when it dies and when it is gone without dying (frozen:
no heartbeat), the host check's action runs auto-heal, `supctl run heal` heals now (a stale lock, old reports),
`supctl status` shows the service and the task, and `supctl systemd` prints the unit that starts it at boot.
Compressed: the scan cycle 30 s -> 0.2 s and the heartbeat 10 s -> 0.2 s; the liveness check every 60 s -> 0.5 s
with no heartbeat for 90 s -> 5 s; the host check every 5 minutes -> 3 s and its 80% memory limit -> 0.01%
(so it is over the limit on any machine; on a busy one the CPU is over 80% too)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from harness import SUPCTL, Master, wait_until

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "continuous-automation"
ANALYZE = shutil.which("systemd-analyze")


def procfile(tmp_path: Path) -> tuple[str, Path]:
    work = tmp_path / "example"
    shutil.copytree(EXAMPLE, work, ignore=shutil.ignore_patterns(".supctl", "__pycache__", "work"))
    text = (work / "procfile.toml").read_text()
    for old, new in [('state_dir = ".supctl"', 'state_dir = "state"'), ('CYCLE_EVERY = "30"', 'CYCLE_EVERY = "0.2"'),
                     ('ALIVE_EVERY = "10"', 'ALIVE_EVERY = "0.2"'), ('within = "90s"', 'within = "5s"'),
                     ('every = "60s"', 'every = "0.5s"'), ('every = "5m"', 'every = "3s"'),
                     ("max_memory_percent = 80", "max_memory_percent = 0.01")]:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return re.sub(r'^cmd = \["python3", "', f'cwd = "{work}"\ncmd = ["python3", "', text, flags=re.MULTILINE), work


def pid_of(m: Master) -> int:
    (row,) = json.loads(m.ctl("status", "--json").stdout)["instances"]
    return row["pid"]


def heartbeat_passed(m: Master, since: float) -> None:
    """The liveness check passed for the process spawned at `since`: its start period is over, failures count."""
    def passed() -> bool:
        (row,) = json.loads(m.ctl("health", "automation", "--json").stdout)
        return any(r["kind"] == "check" and r["name"] == "bus_heartbeat" and r["ok"] and r["time"] >= since for r in row["records"])
    wait_until(passed, 30, "a passing bus_heartbeat check")


@pytest.mark.slow
def test_continuous_automation(master, tmp_path: Path) -> None:
    text, work = procfile(tmp_path)
    assert text.count(f'cwd = "{work}"') == 2, "the bot and the task; the exec recovery runs in the bot's cwd"
    m = master(text)
    log = m.logs / "automation.log"
    started = m.wait_transition("automation:0", "STARTING", timeout=30)[0].at
    m.wait_transition("automation:0", "RUNNING", timeout=30)
    m.wait_line(r"^cycle 3: 2 files, \d+ TODO/FIXME, 0 with syntax errors$", path=log, timeout=30)
    heartbeat_passed(m, started)

    status = m.ctl("status")
    assert status.returncode == 0 and re.search(r"^automation\s+0\s+RUNNING\s", status.stdout, re.MULTILINE), status.stdout
    tasks = m.ctl("status", "--tasks").stdout
    assert re.search(r"^heal\s+every 1h\s", tasks, re.MULTILINE), tasks

    m.wait_line(r"auto-heal \(host: memory \d+% > max 0\.01%.*\): .*cleared cache \(\d+ files\)$",
                path=work / "work" / "heal.log", timeout=30)

    first = pid_of(m)
    os.kill(first, signal.SIGKILL)  # died: restarted at once
    again = m.wait_transition("automation:0", "STARTING", count=2, timeout=30)[-1].at
    m.wait_transition("automation:0", "RUNNING", count=2, timeout=30)
    heartbeat_passed(m, again)
    second = pid_of(m)
    os.kill(second, signal.SIGSTOP)  # gone without dying: no heartbeat, so the check restarts it
    gone = m.wait_transition("automation:0", "BACKOFF", count=2, timeout=30)[-1]
    assert "health: bus_heartbeat: last publish on automation.alive" in gone.reason, gone.reason
    m.wait_transition("automation:0", "RUNNING", count=3, timeout=30)
    assert pid_of(m) not in (first, second)

    stale = work / "work" / "locks" / f"{first}.lock"  # what a cycle killed midway leaves
    stale.write_text(str(first))
    run = m.ctl("run", "heal")
    assert run.returncode == 0 and run.stdout.startswith("heal: exited, exit code 0"), run.stdout + run.stderr
    healed = m.ctl("logs", "heal").stdout
    assert re.search(rf"auto-heal \(hourly\): removed stale lock locks/{first}\.lock\b", healed), healed
    assert not stale.exists() and len(list((work / "work" / "reports").glob("*.json"))) <= 24

    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    for scope, target in (["--user"], "default.target"), ([], "multi-user.target"):
        unit = subprocess.run([*SUPCTL, "systemd", "-c", str(m.procfile), *scope], check=False, capture_output=True, text=True,
                              timeout=60)
        assert unit.returncode == 0, unit.stderr
        assert f'"{Path(sys.executable).with_name("supctl")}" "start" "-f" "-c" "{m.procfile}"' in unit.stdout
        assert f"WorkingDirectory={m.procfile.parent}" in unit.stdout and f"WantedBy={target}" in unit.stdout
        assert "Type=notify" in unit.stdout and "Restart=always" in unit.stdout
        if ANALYZE is not None:
            (tmp_path / "automation.service").write_text(unit.stdout)
            checked = subprocess.run([ANALYZE, "verify", "--man=no", *scope, str(tmp_path / "automation.service")], check=False,
                                     capture_output=True, text=True, env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)},
                                     timeout=60)
            assert checked.returncode == 0 and checked.stderr == "", checked.stderr
    assert m.stop() == 0
