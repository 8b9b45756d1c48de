"""CPU and memory of each instance's whole process tree, read from /proc, sampled at most once a second.

A tree is walked down from its leader through /proc/PID/task/TID/children, so a status call costs a few
reads per process of our own trees: psutil.process_iter read /proc/N/stat of every process on the machine
to find parents, then built a Process object per tree member (at 1,000 bots that was most of a status call).
Kernels built without CONFIG_PROC_CHILDREN have no children files; there the parent links come from the
health package's one scan of /proc, as before.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from ..core.procstat import PAGE, TICK, read_proc, stat_fields
from ..health.tree import scan_links

MIN_INTERVAL = 1.0
"""CPU % over less than this is noise; status calls closer together share one sample (and stay cheap)."""

HAS_CHILDREN = os.path.exists(f"/proc/self/task/{os.getpid()}/children")


def _stat(pid: int) -> tuple[int, int, int, int] | None:
    """(start time, CPU ticks used, resident pages, threads) of one process, None once it is gone."""
    found = stat_fields(pid)
    if found is None:
        return None
    fields = found[1]
    return int(fields[19]), int(fields[11]) + int(fields[12]), int(fields[21]), int(fields[17])


def _children(pid: int, threads: int) -> list[int]:
    """Every thread's children (a child belongs to the thread that forked it); one read for a single thread."""
    try:
        tids = [str(pid)] if threads == 1 else os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    kids: list[int] = []
    for tid in tids:
        kids.extend(map(int, (read_proc(f"/proc/{pid}/task/{tid}/children") or b"").split()))
    return kids


class Usage:
    """Keeps each process's CPU ticks from the last sample (keyed by pid and start time, so a reused pid starts
    afresh), so CPU % is measured over the time since the previous sample, as psutil's cpu_percent(None) did."""

    def __init__(self, min_interval: float = MIN_INTERVAL) -> None:
        self._min_interval = min_interval
        self._ticks: dict[tuple[int, int], int] = {}
        self._last: dict[int, tuple[float, int]] = {}
        self._at = 0.0

    def sample(self, pids: list[int]) -> dict[int, tuple[float, int]]:
        """(cpu %, rss bytes) of each pid's tree; pids that vanished are left out."""
        now = time.monotonic()
        if now - self._at < self._min_interval and all(p in self._last for p in pids):
            return self._last
        elapsed = now - self._at
        kids_of: Callable[[int, int], list[int]] = _children
        if not HAS_CHILDREN:
            links = scan_links()
            kids_of = lambda pid, threads: links.get(pid, [])  # noqa: E731
        ticks: dict[tuple[int, int], int] = {}
        out: dict[int, tuple[float, int]] = {}
        for pid in pids:
            used, pages, found = 0, 0, False
            stack = [pid]
            while stack:
                cur = stack.pop()
                st = _stat(cur)
                if st is None:
                    continue
                found = True
                key = (cur, st[0])
                ticks[key] = st[1]
                before = self._ticks.get(key)
                used += st[1] - before if before is not None else 0
                pages += st[2]
                stack.extend(kids_of(cur, st[3]))
            if found:
                out[pid] = (100.0 * used / TICK / elapsed if self._at else 0.0, pages * PAGE)
        self._ticks, self._last, self._at = ticks, out, now
        return out
