"""Disks and directories under a running master (issue 12 items 10 and 11): a deleted or unwritable logs/ and a
full disk never kill or block a bot, lost output is counted and reported, and shutdown stays graceful."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from harness import SUPCTL, wait_until

pytestmark = pytest.mark.timeout(90)

TICKER = """
[supervisor]
state_dir = "state"
log = { max_size = "2KB", backups = 1 }
[bots.ticker]
cmd = ["sh", "-c", "i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.01; done"]
start_grace = "200ms"
"""


def status_row(m, name: str = "ticker") -> dict:
    out = m.ctl("status", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    rows = data["instances"] if isinstance(data, dict) else data
    return next(r for r in rows if r["bot"] == name)


def test_rm_rf_logs_dir_never_kills_a_bot_and_lost_bytes_are_reported(master) -> None:
    m = master(TICKER)
    m.wait_transition("ticker:0", "RUNNING")
    pid = status_row(m)["pid"]
    ticker = m.logs / "ticker.log"
    out = m.dir / "master.out"  # the master's stderr copy of its log: supervisor.log goes with logs/
    m.wait_line(r"^tick 5$", path=ticker)
    shutil.rmtree(m.logs)
    m.logs.write_text("")  # logs/ as a plain file: nothing can be created under it, even by root
    m.wait_line(r"cannot write .*ticker\.log: .*the bot keeps running", path=out)
    m.logs.unlink()
    m.wait_line(r"ticker\.log: writing again; \d+ bytes of output were lost", path=out)
    wait_until(lambda: ticker.exists() and "tick" in ticker.read_text(), 15, "ticker.log recreated with new lines")
    row = status_row(m)
    assert row["state"] == "RUNNING" and row["pid"] == pid and row["restarts"] == 0
    assert row["log_lost"] > 0
    assert "LOG LOST" in m.ctl("status").stdout
    assert "ticker:0 RUNNING -> " not in m.output()  # never left RUNNING (supervisor.log itself was deleted)
    assert m.stop() == 0


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 1 MiB tmpfs at tmp_path/disk (a real filesystem that fills up), unmounted after the test."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=700", "tmpfs", str(disk)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root to mount a small tmpfs")
    (disk / "state").mkdir(mode=0o700)
    (tmp_path / "state").symlink_to(disk / "state")  # where the harness looks; the master resolves it
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path) -> None:
    n = len(list(disk.glob("filler*")))
    with open(disk / f"filler{n}", "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError as e:
            assert e.errno == errno.ENOSPC
    with open(disk / f"filler{n + 1}", "wb", buffering=0) as f:  # the last blocks, a few bytes at a time
        with contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * 512)


def test_full_disk_shutdown_stops_bots_gracefully_and_start_says_why(master, small_disk: Path) -> None:
    m = master("""
    [supervisor]
    state_dir = "state"
    [bots.slow]
    cmd = ["sh", "-c", "trap 'sleep .3; exit 0' TERM; while :; do sleep .1; done"]
    start_grace = "200ms"
    """)
    m.wait_transition("slow:0", "RUNNING")
    fill(small_disk)
    out = m.ctl("shutdown")
    assert out.returncode == 0, out.stdout + out.stderr
    assert m.wait_exit() == 0
    said = m.output()
    assert "slow:0 RUNNING -> STOPPING (master shutdown)" in said and "slow:0 STOPPING -> STOPPED (master shutdown)" in said
    assert "SIGKILL" not in said and "shutdown complete" in said
    state = small_disk / "state"
    left = {p.name for p in state.iterdir()} - {"master.lock"}  # the lock file stays, unlocked
    assert left in ({"logs"}, {"logs", "status.json"}), left
    if (state / "status.json").exists():
        assert json.loads((state / "status.json").read_text())["state"] == "stopped"
    fill(small_disk)  # the shutdown freed the blocks of master.pid and bus.token
    started = subprocess.run([*SUPCTL, "start", str(m.procfile)], env={**os.environ, "SUPCTL_TEST_TOKEN": m.token},
                             capture_output=True, text=True, timeout=60)
    assert started.returncode == 1
    assert f"cannot write {state / 'master.pid'}: No space left on device" in started.stderr, started.stderr
    assert not [p.name for p in state.iterdir() if p.name.endswith(".tmp")]
