"""The 200 MB flood: every byte arrives (log + rotated backups), and another bot keeps being restarted meanwhile."""

from __future__ import annotations

import hashlib
import sys
import time

import pytest
from harness import BOTS, bot, toml_argv, wait_until

sys.path.insert(0, str(BOTS))
from flood import expected  # noqa: E402

pytestmark = pytest.mark.timeout(120)

TOTAL = 200 * 1024 * 1024


def files_in_order(logs, name: str, backups: int) -> list:
    """Oldest first: NAME.log.N .. NAME.log.1, NAME.log."""
    return [p for n in range(backups, 0, -1) if (p := logs / f"{name}.log.{n}").exists()] + [logs / f"{name}.log"]


def total_size(paths) -> int:
    try:
        return sum(p.stat().st_size for p in paths if p.exists())
    except FileNotFoundError:  # a rotation renamed one between listing and stat: count again next time
        return -1


def test_flood_loses_no_byte_while_crasher_keeps_restarting(master):
    m = master(f"""
    [supervisor]
    state_dir = "state"
    [defaults]
    start_grace = "200ms"
    [bots.flood]
    cmd = {toml_argv(bot("flood", TOTAL))}
    restart = "never"
    autostart = true
    log = {{ max_size = "64MB", backups = 5 }}
    [bots.crash]
    cmd = ["/bin/sh", "-c", "exit 1"]
    backoff = {{ initial = "50ms", factor = 1.0, max = "50ms", jitter = 0.0 }}
    restart_limit = {{ count = 100000, window = "1m" }}
    """)
    began = time.monotonic()
    (exited,) = m.wait_transition("flood", "EXITED", timeout=90)
    assert "code 0" in exited.reason
    # the kernel may still hold pipe data the master reads after the exit: follow the files to the full size
    wait_until(lambda: total_size(files_in_order(m.logs, "flood", 5)) >= TOTAL, 30, "the whole flood in the log files")
    elapsed = time.monotonic() - began
    paths = files_in_order(m.logs, "flood", 5)
    assert len(paths) == 4, paths  # 3 x 64MB rotated + the rest; nothing dropped
    digest = hashlib.sha256()
    size = 0
    for p in paths:
        with open(p, "rb") as f:
            while chunk := f.read(1 << 22):
                digest.update(chunk)
                size += len(chunk)
    want = hashlib.sha256()
    for chunk in expected(TOTAL):
        want.update(chunk)
    assert size == TOTAL
    assert digest.hexdigest() == want.hexdigest()

    # the crasher kept being restarted during the flood: BACKOFF -> STARTING continued, with no long gap
    (flood_start,) = [t for t in m.transitions("flood") if t.new == "STARTING"]
    restarts = [t.at for t in m.transitions("crash") if t.old == "BACKOFF" and t.new == "STARTING"
                and flood_start.at <= t.at <= exited.at]
    window = exited.at - flood_start.at
    print(f"flood: {TOTAL / 2**20 / elapsed:.0f} MiB/s end to end, {len(restarts)} crasher restarts in {window:.2f}s")
    assert len(restarts) >= max(2, int(window / 1.0)), (len(restarts), window)
    gaps = [b - a for a, b in zip([flood_start.at, *restarts], [*restarts, exited.at])]
    assert max(gaps) < 1.5, gaps
    assert m.stop() == 0
