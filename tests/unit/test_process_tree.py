"""ProcessTree: frozen snapshots of a process tree; the /proc scan runs off the loop, shared by concurrent callers."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading

from supervisor.health import tree as tree_module
from supervisor.health.tree import ProcessTree, read_stat


def test_concurrent_snapshots_share_one_scan_in_a_thread(monkeypatch):
    scans: list[int] = []
    real = tree_module.scan_links

    def counting() -> dict[int, list[int]]:
        scans.append(threading.get_ident())
        return real()

    monkeypatch.setattr(tree_module, "scan_links", counting)

    async def go():
        tree = ProcessTree(max_age=60)
        return await asyncio.gather(*(tree.snapshot(os.getpid()) for _ in range(20)))

    snapshots = asyncio.run(go())
    assert len(scans) == 1 and scans[0] != threading.get_ident()
    assert all(s[0].pid == os.getpid() for s in snapshots)


def test_snapshot_lists_descendants_and_drops_the_gone():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        async def go():
            tree = ProcessTree(max_age=0)
            return await tree.snapshot(os.getpid())

        snap = asyncio.run(go())
        assert snap[0].pid == os.getpid() and child.pid in [p.pid for p in snap]
        assert all(p.rss > 0 for p in snap)
    finally:
        child.kill()
        child.wait()
    assert read_stat(child.pid) is None
    assert asyncio.run(ProcessTree().snapshot(None)) == ()
