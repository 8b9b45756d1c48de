"""An instance's process tree as plain values (ProcessInfo) for CheckContext, never live psutil objects.

Finding descendants needs every process's parent, and this kernel interface has no per-process
list of children everywhere (CONFIG_PROC_CHILDREN is often off), so the parent links come from
one scan of /proc. That scan runs in a thread, off the event loop, and at most once per
`max_age` for all instances together: a fleet of checks costs one scan, not one per check.
The members' memory and CPU are then read fresh from their own stat files.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

from ..core.procstat import PAGE, TICK, live_stat
from ..plugin import ProcessInfo
from .contain import in_thread

MAX_AGE = 0.5
"""Seconds a scan of parent links is reused; a worker forked since then is seen at the next scan."""


def read_stat(pid: int) -> ProcessInfo | None:
    """/proc/PID/stat as a ProcessInfo; None for a process that is gone or a zombie."""
    found = live_stat(pid)
    if found is None or len(found[1]) < 22:
        return None
    name, fields = found
    return ProcessInfo(pid=pid, ppid=int(fields[1]), name=name.decode(errors="replace"), rss=int(fields[21]) * PAGE,
                       cpu_user=int(fields[11]) / TICK, cpu_system=int(fields[12]) / TICK)


def scan_links() -> dict[int, list[int]]:
    """Parent pid -> child pids of every process (blocking: reads all of /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (info := read_stat(int(entry))) is not None:
            children.setdefault(info.ppid, []).append(info.pid)
    return children


class ProcessTree:
    """Snapshots of process trees for every instance, sharing one scan of parent links."""

    def __init__(self, max_age: float = MAX_AGE, clock: Callable[[], float] = time.monotonic) -> None:
        self._max_age = max_age
        self._clock = clock
        self._links: dict[int, list[int]] = {}
        self._at = -max_age
        self._scan: asyncio.Future[dict[int, list[int]]] | None = None

    async def snapshot(self, pid: int | None) -> tuple[ProcessInfo, ...]:
        """`pid` first, then its descendants; a member whose parent changed since the scan is left out."""
        if pid is None:
            return ()
        root = read_stat(pid)
        if root is None:
            return ()
        links = await self._fresh_links()
        out = [root]
        stack = [(c, pid) for c in links.get(pid, ())]
        while stack:
            child, parent = stack.pop()
            info = read_stat(child)
            if info is None or info.ppid != parent:  # gone, or the pid was reused by someone else
                continue
            out.append(info)
            stack.extend((c, child) for c in links.get(child, ()))
        return tuple(out)

    async def _fresh_links(self) -> dict[int, list[int]]:
        if self._clock() - self._at < self._max_age:
            return self._links
        if self._scan is None or self._scan.done():
            self._scan = in_thread(scan_links)
            self._scan.add_done_callback(self._store)
        return await asyncio.shield(self._scan)

    def _store(self, scan: asyncio.Future[dict[int, list[int]]]) -> None:
        if not scan.cancelled() and scan.exception() is None:
            self._links, self._at = scan.result(), self._clock()
