"""Subreaper containment, where cgroups are not available: the master is a child subreaper (PR_SET_CHILD_SUBREAPER).

A descendant that leaves its group (setsid, double fork) is re-parented to the master when its parent dies,
instead of to init. The master finds those orphans among its own children (/proc/self/task/*/children),
tells which instance started them by the SUPCTL_FLEET/SUPCTL_BOT/SUPCTL_INSTANCE (or SUPCTL_TASK) marks in
their environment, tells the guardian, kills them with their instance and reaps them (a pidfd each). A stop
also walks the instance's live tree, so a descendant whose parent still lives is stopped with it.
What it cannot do: the kernel says nothing when a process is re-parented, so orphans are looked for at
every stop and restart and every SCAN_EVERY; an orphan that clears its environment is neither tied to its
instance nor known to the guardian. See docs/lifecycle.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable

from ..core.procstat import live_stat

PR_SET_CHILD_SUBREAPER = 36
SCAN_EVERY = 1.0
"""Seconds between looks for new orphans among the master's children (re-parenting has no event)."""
MARKS = (b"SUPCTL_FLEET", b"SUPCTL_BOT", b"SUPCTL_INSTANCE", b"SUPCTL_TASK")


def become_subreaper() -> None:
    """ctypes only here (prctl has no Python binding): it costs a master ~0.4 MiB, and cgroup mode needs none."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def children(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                out += map(int, f.read().split())
    return out


def tree(pid: int) -> list[int]:
    """pid's descendants (not pid itself), breadth first."""
    out, todo = [], [pid]
    while todo:
        kids = children(todo.pop())
        out += kids
        todo += kids
    return out


def alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped."""
    return live_stat(pid) is not None


UNREADABLE = b""
"""box_key's answer for a process whose environment cannot be read or is empty: gone, a zombie, a kernel thread,
or one between fork and exec for a moment."""


def marks(pid: int) -> dict[bytes, bytes] | None:
    """None when the environment cannot be read or is empty."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = f.read()
    except OSError:
        return None
    if not env:
        return None
    found = dict(e.partition(b"=")[::2] for e in env.split(b"\0"))
    return {m: found[m] for m in MARKS if m in found}


def box_key(pid: int, fleet: bytes) -> bytes | None:
    """The box key (b"bot@k", b"task@task") of a process carrying this fleet's marks; None for any other (the
    guardian and the plugins' children carry no mark); UNREADABLE when its environment does not tell."""
    m = marks(pid)
    if m is None:
        return UNREADABLE
    if m.get(b"SUPCTL_FLEET") != fleet:
        return None
    if b"SUPCTL_INSTANCE" in m:
        return m.get(b"SUPCTL_BOT", b"") + b"@" + m[b"SUPCTL_INSTANCE"]
    return m.get(b"SUPCTL_TASK", b"") + b"@task"


class Reaper:
    """The master's orphans: found, tied to their instance by their marks, told to the guardian, reaped."""

    name = "subreaper"

    def __init__(self, fleet: str, track: Callable[[int, bool], None]) -> None:
        """`fleet` is the SUPCTL_FLEET=VALUE mark this master's processes carry."""
        become_subreaper()
        self.fleet = fleet.partition("=")[2].encode()
        self._track = track
        self._own: set[int] = set()
        self.orphans: dict[int, bytes] = {}
        self._pidfds: dict[int, int] = {}
        self._zombies: set[int] = set()
        self._loop = asyncio.get_running_loop()
        self._scanner = self._loop.call_later(SCAN_EVERY, self._tick)

    def describe(self) -> str:
        return "subreaper: orphaned descendants come back to the master, which kills them with their instance"

    def box(self, key: str) -> ReaperBox:
        return ReaperBox(self, key)

    def own(self, pid: int, mine: bool) -> None:
        """The master's direct children it started itself (bots, tasks, the guardian) are never orphans."""
        (self._own.add if mine else self._own.discard)(pid)

    def _tick(self) -> None:
        self.scan()
        self._scanner = self._loop.call_later(SCAN_EVERY, self._tick)

    def scan(self) -> None:
        """Adopt new orphans; reap zombies nobody claimed since the last scan (a plugin's children are reaped by it)."""
        zombies = set()
        for pid in children(os.getpid()):
            if pid in self._own or pid in self.orphans:
                continue
            if not alive(pid):
                zombies.add(pid)
                if pid in self._zombies:
                    self._reap(pid)
                continue
            key = box_key(pid, self.fleet)
            if key:
                self._adopt(pid, key)
        self._zombies = zombies

    def _adopt(self, pid: int, key: bytes) -> None:
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            return
        self.orphans[pid] = key
        self._pidfds[pid] = fd
        self._loop.add_reader(fd, self._reap, pid)
        self._track(pid, True)

    def _reap(self, pid: int) -> None:
        fd = self._pidfds.pop(pid, None)
        if fd is not None:
            self._loop.remove_reader(fd)
            os.close(fd)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if self.orphans.pop(pid, None) is not None:
            self._track(pid, False)

    def close(self) -> None:
        """At shutdown: every orphan still here (its instance is gone) is killed and reaped."""
        self._scanner.cancel()
        self.scan()
        for pid in list(self.orphans):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            self._reap(pid)


class ReaperBox:
    """One instance: its leader's group and live tree, plus the orphans that carry its marks."""

    def __init__(self, reaper: Reaper, key: str) -> None:
        self._reaper = reaper
        self.key = key.encode()
        self.leader: int | None = None
        self._stopping: int | None = None
        """The stop signal sent, until the next start: a process that joins later (orphaned while the signal was
        on its way, so in neither its parent's tree nor the master's yet) gets it too when wait_empty sees it."""
        self._told: set[int] = set()

    def started(self, pid: int) -> None:
        if self.leader is not None:
            self._reaper.own(self.leader, False)
        self.leader = pid
        self._reaper.own(pid, True)
        self._stopping = None
        self._told.clear()

    def members(self) -> list[int]:
        """The leader's tree first, then the orphans: a child re-parented to the master while its parent's tree is
        read is found by the scan after it."""
        inside = [self.leader, *tree(self.leader)] if self.leader is not None and alive(self.leader) else []
        self._reaper.scan()
        for p, k in self._reaper.orphans.items():
            if k == self.key:
                inside += (p, *tree(p))
        return [p for p in dict.fromkeys(inside) if alive(p)]

    def signal(self, sig: int) -> None:
        if sig != signal.SIGCONT:
            self._stopping = sig
        if self.leader is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.leader, sig)
        pids = self.members()
        if sig == signal.SIGCONT and self._stopping is not None:  # one that joined since the stop signal gets it first
            self._tell([p for p in pids if p not in self._told], (self._stopping,))
        self._tell(pids, (sig,))

    def _tell(self, pids: list[int], sigs: tuple[int, ...]) -> None:
        for pid in pids:
            self._told.add(pid)
            for sig in sigs:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)

    def kill(self) -> None:
        """SIGKILL until a look finds nothing new: a parent killed hands its children to the master first."""
        for _ in range(8):
            self.signal(signal.SIGKILL)
            if not self.members():
                return

    def populated(self) -> bool:
        return bool(self.members())

    async def wait_empty(self, timeout: float | None) -> bool:
        """Until no process of the instance is left (pidfds of the live ones); False at the timeout."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while pids := self.members():
            if self._stopping is not None and (late := [p for p in pids if p not in self._told]):
                self._tell(late, (self._stopping, signal.SIGCONT))
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return False
            gone = loop.create_future()
            fds = []
            for pid in pids:
                with contextlib.suppress(OSError):
                    fds.append(fd := os.pidfd_open(pid))
                    loop.add_reader(fd, lambda: gone.done() or gone.set_result(None))
            if not fds:
                continue
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(gone, left)
            finally:
                for fd in fds:
                    loop.remove_reader(fd)
                    os.close(fd)
        return True
