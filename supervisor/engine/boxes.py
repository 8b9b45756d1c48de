"""Where an instance's processes live, so that none outlives it: a cgroup when the master can make one, else the subreaper.

Both give a Box per instance with the same calls: `started(pid)` after the fork, `signal`, `kill`,
`wait_empty`. `choose` tries what the procfile's `containment` allows and says why it fell back.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Literal, Protocol

from ..config.procfile import Procfile
from ..core import fds
from .cgroups import CgroupTree, Unusable
from .guardian_link import Guard
from .reaper import Reaper

Mode = Literal["auto", "cgroup", "subreaper"]


class Box(Protocol):
    def started(self, pid: int) -> None: ...
    def members(self) -> list[int]: ...
    def signal(self, sig: int) -> None: ...
    def kill(self) -> None: ...
    async def wait_empty(self, timeout: float | None) -> bool: ...


class Containment(Protocol):
    name: str

    def box(self, key: str) -> Box: ...
    def describe(self) -> str: ...
    def close(self) -> None: ...


def instance_key(bot: str, index: int) -> str:
    return f"{bot}@{index}"


def task_key(task: str) -> str:
    return f"{task}@task"


def fleet_mark() -> dict[str, str]:
    """SUPCTL_FLEET=<random>, in every bot's environment: the subreaper and the guardian know this master's processes by it."""
    return {"SUPCTL_FLEET": os.urandom(8).hex()}  # not secrets: it imports hmac and hashlib (~0.8 MiB)


def contain(procfile: Procfile, env: dict[str, str], guard: Guard, logger: logging.Logger) -> Containment:
    """The master process made ready for its fleet: RLIMIT_NOFILE raised (a warning when the fleet needs more), and
    the boxes, told to the guardian (the fleet's cgroup, the mark to sweep for); the log says which."""
    fds.prepare(sum(b.instances for b in procfile.bots.values()), logger.warning)
    mark = f"SUPCTL_FLEET={env['SUPCTL_FLEET']}"
    containment = choose(procfile.supervisor.containment, mark, guard.track, logger)
    if isinstance(containment, CgroupTree):
        guard.cgroup(str(containment.fleet))
    guard.marker(mark)
    logger.info("containment: %s", containment.describe())
    return containment


def choose(mode: Mode, fleet: str, track: Callable[[int, bool], None], logger: logging.Logger) -> Containment:
    """cgroup v2 if allowed and usable, else the subreaper; raises Unusable when `cgroup` was required and cannot be."""
    if mode != "subreaper":
        try:
            return CgroupTree.create(fleet)
        except (Unusable, OSError) as e:
            if mode == "cgroup":
                raise Unusable(f"containment = \"cgroup\" but {e}") from None
            logger.info("no cgroup for the instances: %s", e)
    return Reaper(fleet, track)

