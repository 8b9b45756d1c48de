"""Status rows per instance, with CPU and memory of each instance's whole process tree from psutil."""

from __future__ import annotations

import psutil

from .control import InstanceStatus
from .process import Instance
from .states import ALIVE


class Metrics:
    """Keeps the psutil.Process objects seen last time, so cpu_percent measures the time since the previous `status`."""

    def __init__(self) -> None:
        self._procs: dict[int, psutil.Process] = {}

    def sample(self, pids: list[int]) -> dict[int, tuple[float, int]]:
        """(cpu %, rss bytes) of each pid's tree; pids that vanished are left out."""
        seen: dict[int, psutil.Process] = {}
        out: dict[int, tuple[float, int]] = {}
        for pid in pids:
            try:
                root = self._procs.get(pid) or psutil.Process(pid)
                tree = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            cpu, rss = 0.0, 0
            for p in tree:
                p = self._procs.get(p.pid, p)
                seen[p.pid] = p
                try:
                    with p.oneshot():
                        cpu += p.cpu_percent(None)
                        rss += p.memory_info().rss
                except psutil.Error:
                    continue
            out[pid] = (cpu, rss)
        self._procs = seen
        return out


def instance_rows(instances: list[Instance], metrics: Metrics) -> list[InstanceStatus]:
    alive = {i.pid: i for i in instances if i.state in ALIVE and i.pid is not None}
    usage = metrics.sample(list(alive))
    rows = []
    for inst in instances:
        pid = inst.pid if inst.pid in alive and alive[inst.pid] is inst else None
        cpu, rss = usage.get(pid, (None, None)) if pid else (None, None)
        rows.append(InstanceStatus(
            bot=inst.bot, instance=inst.index, state=inst.state.value, pid=pid, uptime=inst.uptime(),
            restarts=inst.restarts, last_exit=inst.last_exit.describe() if inst.last_exit else None, cpu=cpu, rss=rss,
        ))
    return rows
