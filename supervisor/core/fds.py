"""File descriptors: the master raises its soft limit to the hard one and says when a fleet needs more than that.

Each instance costs the master about FDS_PER_INSTANCE descriptors (stdout and stderr pipes, a pidfd, its
log file, its bus connection, in cgroup mode its cgroup.events, and with [http] its /proc/PID/stat held for
/metrics), on top of BASE for the master itself (sockets, the guardian, epoll).
"""

from __future__ import annotations

import os
import resource
from collections.abc import Callable
from typing import NamedTuple

FDS_PER_INSTANCE = 7
BASE = 64


class FdReport(NamedTuple):
    open: int
    soft: int
    hard: int
    needed: int

    @property
    def short(self) -> bool:
        return self.needed > self.hard

    def describe(self) -> str:
        """The master raises its soft limit to the hard one, so the hard limit is what counts."""
        return (f"the fleet needs about {self.needed} file descriptors but the master may open at most {self.hard} "
                f"(the hard RLIMIT_NOFILE); raise it (ulimit -Hn, LimitNOFILE= in a systemd unit) or run fewer instances")


def needed(instances: int) -> int:
    return BASE + FDS_PER_INSTANCE * instances


def raise_limit() -> None:
    """Soft RLIMIT_NOFILE up to the hard limit (a privileged master could go further; it does not)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def prepare(instances: int, warn: Callable[[str], None]) -> None:
    """At master start: raise the soft limit, then warn (the master log) when the fleet needs more than it."""
    raise_limit()
    if (fds := report(instances)).short:
        warn(fds.describe())


def report(instances: int) -> FdReport:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return FdReport(open=open_count(), soft=soft, hard=hard, needed=needed(instances))


def open_count() -> int:
    """The master's open descriptors. Linux 6.2 and later give the count as the size of /proc/self/fd, one stat()
    where a listing reads ~5 entries per instance; the listing counts its own descriptor too, hence the -1."""
    return os.stat("/proc/self/fd").st_size or len(os.listdir("/proc/self/fd")) - 1
