"""Disks and directories under a running master (issue 12 items 10 and 11): a deleted or unwritable logs/ and a
full disk never kill or block a bot, lost output is counted and reported, and shutdown stays graceful."""

from __future__ import annotations

import json
import shutil

import pytest
from harness import wait_until

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
