"""cgroup v2 containment: one cgroup per instance under the fleet's cgroup, so no descendant can escape.

A descendant can leave its process group and session (setsid, double fork) but not its cgroup. The
fleet cgroup is `<the master's own cgroup>/supctl-<pid>`; each instance gets `<bot>@<k>` (tasks `<name>@task`).
A child is started in the master's cgroup (the vfork+exec of subprocess, as in subreaper mode) and moved into
its own by a worker thread while it starts: a move takes the kernel's cgroup threadgroup lock for writing, which
waits for an RCU grace period (5-9 ms) when no move happened just before, and a restart no longer waits for it.
What the child forks before it is moved (a bot that daemonizes at once) is found in the master's cgroup by its
SUPCTL_FLEET/SUPCTL_BOT/SUPCTL_INSTANCE marks and moved after it; the box's reads and signals wait for the move.
Emptiness is learnt from `cgroup.events` through epoll (the kernel signals every change of "populated"),
stopping ends with `cgroup.kill`, and the guardian writes the fleet's `cgroup.kill` when the master dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..core.procstat import live_stat, read_proc
from .flag import Flag
from .reaper import UNREADABLE, box_key

PID_MAX = int(read_proc("/proc/sys/kernel/pid_max") or 4194304)
SWEEPS = 8
"""Looks at the master's cgroup after a move: each moves what the last one found; a bot forking as fast as it can
while it is moved stops being found once its parent is in its box (its children are born there)."""
SETTLE = 0.001
"""Between two looks when the only candidates left showed no environment (between fork and exec)."""


class Unusable(Exception):
    """Why this machine or this master cannot have cgroups (the message goes to the master log)."""


def own_cgroup() -> Path:
    """The master's cgroup v2 directory: the unified line of /proc/self/cgroup under a mounted cgroup2."""
    rel = next((line[3:].strip() for line in Path("/proc/self/cgroup").read_text().splitlines() if line.startswith("0::")), None)
    if rel is None:
        raise Unusable("no cgroup v2 hierarchy in /proc/self/cgroup")
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        if right.split(" ", 1)[0] == "cgroup2":
            fields = left.split()
            root, mount = fields[3], fields[4]
            if rel == root or rel.startswith(root.rstrip("/") + "/"):
                return Path(mount, rel[len(root):].lstrip("/"))
    raise Unusable("no cgroup2 filesystem is mounted where /proc/self/cgroup says the master is")


def probe() -> Path:
    """The master's cgroup, once shown usable here: a child cgroup can be made, has cgroup.kill, and this
    process can move into it and back (nothing is assumed from the mount table). Raises Unusable saying why."""
    home = own_cgroup()
    test = home / f"supctl-probe-{os.getpid()}"
    try:
        test.mkdir()
    except OSError as e:
        raise Unusable(f"cannot create a cgroup in {home}: {e.strerror}") from None
    try:
        if not (test / "cgroup.kill").exists():
            raise Unusable("this kernel has no cgroup.kill (Linux 5.14 or later has it)")
        try:
            _write(test / "cgroup.procs", "0")
            _write(home / "cgroup.procs", "0")
        except OSError as e:
            raise Unusable(f"cannot move the master between {home} and {test}: {e.strerror}") from None
    finally:
        with contextlib.suppress(OSError):
            _write(home / "cgroup.procs", "0")
        test.rmdir()
    return home


def newer_than(pid: int) -> Callable[[int], bool]:
    """Whether a pid may have been given out after `pid` (those are in the cyclic range up to the last one given out,
    besides older ones the allocator skipped): the master's cgroup can hold a whole machine's processes, and only
    those need their environment read."""
    span = (int(read_proc("/proc/sys/kernel/ns_last_pid") or pid) - pid) % PID_MAX
    return lambda p: 0 < (p - pid) % PID_MAX <= span


def _user_process(pid: int) -> bool:
    """Alive and not a kernel thread (those have no environment, and kthreadd, pid 2, is their parent)."""
    found = live_stat(pid)
    return found is not None and pid != 2 and found[1][1] != b"2"


def _procs(cgroup: str | Path) -> list[int]:
    """Every pid of the cgroup (a machine's whole root cgroup can be listed here: no 4 KiB read_proc)."""
    try:
        with open(f"{cgroup}/cgroup.procs", "rb") as f:
            return [int(p) for p in f.read().split()]
    except FileNotFoundError:
        return []


def _place(pid: int, cgroup: str) -> None:
    """Move one process; one that is gone (or a cgroup removed at shutdown) is nothing to move."""
    with contextlib.suppress(ProcessLookupError, FileNotFoundError):
        _write(f"{cgroup}/cgroup.procs", str(pid))


def _write(path: str | Path, data: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, data.encode())
    finally:
        os.close(fd)


class CgroupTree:
    """The fleet's cgroup and one epoll that watches every instance's cgroup.events (the kernel marks it EPOLLPRI
    at each change of "populated" until it is read again). Not inotify: Python has it only through ctypes, ~0.4 MiB
    of every master."""

    name = "cgroup"

    def __init__(self, home: Path, fleet: Path, mark: str) -> None:
        self.home = home
        self.fleet = fleet
        self._mark = mark.partition("=")[2].encode()
        self._epoll = select.epoll()
        self._boxes: dict[int, CgroupBox] = {}
        """By the fd of its cgroup.events."""
        self._by_path: dict[str, CgroupBox] = {}
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._epoll.fileno(), self._events)
        self._mover = ThreadPoolExecutor(1, thread_name_prefix="supctl cgroup moves")
        """One thread: moves right after one another share a grace period (the first waits, the next take ~50 us)."""
        self._pending: dict[str, int] = {}
        """Boxes with a move the thread has not finished, under `_moved`; nothing is kept per box once it is done."""
        self._moved = threading.Condition()

    @classmethod
    def create(cls, mark: str) -> CgroupTree:
        """Make the fleet cgroup once `probe` showed the master can use one; raises Unusable. `mark` is the
        SUPCTL_FLEET=VALUE every bot of this master carries."""
        home = probe()
        fleet = home / f"supctl-{os.getpid()}"
        fleet.mkdir(exist_ok=True)
        return cls(home, fleet, mark)

    def describe(self) -> str:
        return f"cgroup v2: each instance in its own cgroup under {self.fleet}"

    def box(self, key: str) -> CgroupBox:
        """One per key for the master's life: a bot that a reload replaces gets its cgroup (and descriptor) back."""
        path = f"{self.fleet}/{key}"
        known = self._by_path.get(path)
        if known is not None:
            return known
        os.makedirs(path, exist_ok=True)
        events = os.open(f"{path}/cgroup.events", os.O_RDONLY | os.O_CLOEXEC)
        self._epoll.register(events, select.EPOLLPRI)
        box = self._boxes[events] = self._by_path[path] = CgroupBox(self, path, events)
        return box

    def _events(self) -> None:
        for fd, _ in self._epoll.poll(0):
            box = self._boxes.get(fd)
            if box is not None:
                with contextlib.suppress(OSError):
                    os.pread(fd, 256, 0)  # reading it is what ends the EPOLLPRI
                box.changed.set()

    def move(self, pid: int, box: str) -> None:
        with self._moved:
            self._pending[box] = self._pending.get(box, 0) + 1
        self._mover.submit(self._move_one, pid, box)

    def settle(self, box: str) -> None:
        """Until the moves asked for `box` are done (at once when none is pending: the usual case)."""
        if box in self._pending:
            with self._moved:
                self._moved.wait_for(lambda: box not in self._pending)

    def _move_one(self, pid: int, box: str) -> None:
        try:
            self._move(pid, box)
        except Exception:
            logging.getLogger("supctl").exception("moving pid %d into %s failed", pid, box)
        finally:
            with self._moved:
                left = self._pending.pop(box) - 1
                if left:
                    self._pending[box] = left
                self._moved.notify_all()

    def _move(self, pid: int, box: str) -> None:
        """In the mover thread: `pid` into its box, then whatever this fleet's bots forked in the master's cgroup
        before they were moved (their marks name the box) into theirs."""
        try:
            _place(pid, box)
        except OSError as e:  # not contained is not left running: its instance sees it killed and backs off
            logging.getLogger("supctl").error("cannot move pid %d into %s: %s; killing it", pid, box, e.strerror or e)
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
            return
        master = os.getpid()
        for _ in range(SWEEPS):
            if read_proc("/proc/sys/kernel/ns_last_pid") == f"{pid}\n".encode():
                return  # no pid given out since the child's (it has not forked): nothing of it can be outside
            procs = _procs(self.home)
            since = newer_than(pid)  # after the list: everything in it was given out by then
            strays, unsure = [], False
            for p in procs:
                if p == master or not since(p):
                    continue
                key = box_key(p, self._mark)
                if key:
                    strays.append((p, key))
                elif key == UNREADABLE and _user_process(p):
                    unsure = True
            for p, key in strays:
                with contextlib.suppress(OSError):  # its box is gone (a reload removed the bot): the guardian's marks still cover it
                    _place(p, f"{self.fleet}/{key.decode(errors='replace')}")
            if not strays:
                if not unsure:
                    return
                time.sleep(SETTLE)  # the mover thread only: a process between fork and exec shows its environment soon

    def close(self) -> None:
        """Remove every (empty, by now) instance cgroup and the fleet cgroup."""
        self._mover.shutdown(wait=True)
        self._loop.remove_reader(self._epoll.fileno())
        self._epoll.close()
        for box in self._boxes.values():
            os.close(box.events)
            with contextlib.suppress(OSError):
                os.rmdir(box.path)
        with contextlib.suppress(OSError):
            self.fleet.rmdir()


class CgroupBox:
    """One instance's cgroup: its directory as a str (a Path per box and per look cost ~0.4 KiB an instance)."""

    __slots__ = ("_tree", "changed", "events", "path")

    def __init__(self, tree: CgroupTree, path: str, events: int) -> None:
        self._tree = tree
        self.path = path
        self.events = events
        """Its cgroup.events, open for the epoll and re-read in place."""
        self.changed = Flag()

    def started(self, pid: int) -> None:
        """The child runs in the master's cgroup until the mover thread has put it here."""
        self._tree.move(pid, self.path)

    def members(self) -> list[int]:
        self._tree.settle(self.path)  # a stop or crash within ms of the start waits for the move, so the child is found
        return _procs(self.path)

    def populated(self) -> bool:
        self._tree.settle(self.path)
        try:
            return b"populated 1" in os.pread(self.events, 256, 0)
        except OSError:  # the cgroup is gone
            return False

    def signal(self, sig: int) -> None:
        """Every process in the cgroup, whatever its group or session."""
        for pid in self.members():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)

    def kill(self) -> None:
        self._tree.settle(self.path)
        with contextlib.suppress(FileNotFoundError):
            _write(f"{self.path}/cgroup.kill", "1")

    async def wait_empty(self, timeout: float | None) -> bool:
        """Until cgroup.events says "populated 0" (an epoll event, no polling); False at the timeout."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            self.changed.clear()
            if not self.populated():
                return True
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), left)

