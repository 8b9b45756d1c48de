"""CPU and memory of each instance's whole process tree, from psutil, sampled at most once a second."""

from __future__ import annotations

import time

import psutil

MIN_INTERVAL = 1.0
"""CPU % over less than this is noise; status calls closer together share one sample (and stay cheap)."""


class Usage:
    """Keeps the psutil.Process objects seen last time, so cpu_percent measures the time since the previous sample."""

    def __init__(self) -> None:
        self._procs: dict[int, psutil.Process] = {}
        self._last: dict[int, tuple[float, int]] = {}
        self._at = 0.0

    def sample(self, pids: list[int]) -> dict[int, tuple[float, int]]:
        """(cpu %, rss bytes) of each pid's tree; pids that vanished are left out."""
        now = time.monotonic()
        if now - self._at < MIN_INTERVAL and all(p in self._last for p in pids):
            return self._last
        self._last, self._at = self._measure(pids), now
        return self._last

    def _measure(self, pids: list[int]) -> dict[int, tuple[float, int]]:
        """One /proc scan for the parent links of every tree, then one oneshot read per process."""
        children: dict[int, list[int]] = {}
        for p in psutil.process_iter(["ppid"]):
            children.setdefault(p.info["ppid"], []).append(p.pid)
        seen: dict[int, psutil.Process] = {}
        out: dict[int, tuple[float, int]] = {}
        for pid in pids:
            cpu, rss, found = 0.0, 0, False
            stack = [pid]
            while stack:
                cur = stack.pop()
                stack.extend(children.get(cur, ()))
                try:
                    proc = self._procs.get(cur) or psutil.Process(cur)
                    with proc.oneshot():
                        cpu += proc.cpu_percent(None)
                        rss += proc.memory_info().rss
                except psutil.Error:
                    continue
                seen[cur] = proc
                found = True
            if found:
                out[pid] = (cpu, rss)
        self._procs = seen
        return out
