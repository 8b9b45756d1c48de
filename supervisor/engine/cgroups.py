"""cgroup v2 containment: one cgroup per instance under the fleet's cgroup, so no descendant can escape.

A descendant can leave its process group and session (setsid, double fork) but not its cgroup. The
fleet cgroup is `<the master's own cgroup>/supctl-<pid>`; each instance gets `<bot>@<k>` (tasks `<name>@task`).
A child is started in the master's cgroup (the vfork+exec of subprocess, as in subreaper mode) and moved into
its own by a worker thread while it starts: a move takes the kernel's cgroup threadgroup lock for writing, which
waits for an RCU grace period (5-9 ms) when no move happened just before, and a restart no longer waits for it.
What the child forks before it is moved (a bot that daemonizes at once) is found in the master's cgroup by its
SUPCTL_FLEET/SUPCTL_BOT/SUPCTL_INSTANCE marks and moved after it; the box's reads and signals wait for the move.
Emptiness is learnt from `cgroup.events` through inotify (the kernel signals every change of "populated"),
stopping ends with `cgroup.kill`, and the guardian writes the fleet's `cgroup.kill` when the master dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import struct
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from ..core.procstat import read_proc, stat_fields
from .reaper import UNREADABLE, box_key

IN_MODIFY = 0x2
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
_EVENT = struct.Struct("iIII")
_libc = ctypes.CDLL(None, use_errno=True)
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
    found = stat_fields(pid)
    return found is not None and pid != 2 and found[1][0] not in (b"Z", b"X") and found[1][1] != b"2"


def _procs(cgroup: Path) -> list[int]:
    with contextlib.suppress(FileNotFoundError):
        return [int(p) for p in (cgroup / "cgroup.procs").read_text().split()]
    return []


def _place(pid: int, cgroup: Path) -> None:
    """Move one process; one that is gone (or a cgroup removed at shutdown) is nothing to move."""
    with contextlib.suppress(ProcessLookupError, FileNotFoundError):
        _write(cgroup / "cgroup.procs", str(pid))


def _write(path: Path, data: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, data.encode())
    finally:
        os.close(fd)


class CgroupTree:
    """The fleet's cgroup and the inotify fd that watches every instance's cgroup.events."""

    name = "cgroup"

    def __init__(self, home: Path, fleet: Path, inotify: int, mark: str) -> None:
        self.home = home
        self.fleet = fleet
        self._mark = mark.partition("=")[2].encode()
        self._inotify = inotify
        self._boxes: dict[int, CgroupBox] = {}
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(inotify, self._events)
        self._mover = ThreadPoolExecutor(1, thread_name_prefix="supctl cgroup moves")
        """One thread: moves right after one another share a grace period (the first waits, the next take ~50 us)."""

    @classmethod
    def create(cls, mark: str) -> CgroupTree:
        """Make the fleet cgroup once `probe` showed the master can use one; raises Unusable. `mark` is the
        SUPCTL_FLEET=VALUE every bot of this master carries."""
        home = probe()
        fleet = home / f"supctl-{os.getpid()}"
        fleet.mkdir(exist_ok=True)
        fd = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            fleet.rmdir()
            raise Unusable(f"inotify_init1: {os.strerror(ctypes.get_errno())}")
        return cls(home, fleet, fd, mark)

    def describe(self) -> str:
        return f"cgroup v2: each instance in its own cgroup under {self.fleet}"

    def box(self, key: str) -> CgroupBox:
        path = self.fleet / key
        path.mkdir(exist_ok=True)
        wd = _libc.inotify_add_watch(self._inotify, str(path / "cgroup.events").encode(), IN_MODIFY)
        if wd < 0:
            raise OSError(ctypes.get_errno(), f"inotify_add_watch {path}/cgroup.events")
        box = self._boxes[wd] = CgroupBox(self, path)
        return box

    def _events(self) -> None:
        try:
            data = os.read(self._inotify, 64 * 1024)
        except BlockingIOError:
            return
        offset = 0
        while offset < len(data):
            wd, _mask, _cookie, size = _EVENT.unpack_from(data, offset)
            offset += _EVENT.size + size
            box = self._boxes.get(wd)
            if box is not None:
                box.changed.set()

    def move(self, pid: int, box: Path) -> Future[None]:
        return self._mover.submit(self._move, pid, box)

    def _move(self, pid: int, box: Path) -> None:
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
                    _place(p, self.fleet / key.decode(errors="replace"))
            if not strays:
                if not unsure:
                    return
                time.sleep(SETTLE)  # the mover thread only: a process between fork and exec shows its environment soon

    def close(self) -> None:
        """Remove every (empty, by now) instance cgroup and the fleet cgroup."""
        self._mover.shutdown(wait=True)
        self._loop.remove_reader(self._inotify)
        os.close(self._inotify)
        for box in self._boxes.values():
            with contextlib.suppress(OSError):
                box.path.rmdir()
        with contextlib.suppress(OSError):
            self.fleet.rmdir()


class CgroupBox:
    """One instance's cgroup."""

    def __init__(self, tree: CgroupTree, path: Path) -> None:
        self._tree = tree
        self.path = path
        self.changed = asyncio.Event()
        self._moving: Future[None] | None = None

    def started(self, pid: int) -> None:
        """The child runs in the master's cgroup until the mover thread has put it here."""
        self._moving = self._tree.move(pid, self.path)

    def _settled(self) -> None:
        """Before anything reads or signals the box: a stop or a crash within milliseconds of the start waits for
        the move (blocking the loop that long), so the child is inside and is found."""
        if self._moving is not None:
            self._moving.result()
            self._moving = None

    def members(self) -> list[int]:
        self._settled()
        return _procs(self.path)

    def populated(self) -> bool:
        self._settled()
        with contextlib.suppress(FileNotFoundError):
            return "populated 1" in (self.path / "cgroup.events").read_text()
        return False

    def signal(self, sig: int) -> None:
        """Every process in the cgroup, whatever its group or session."""
        for pid in self.members():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)

    def kill(self) -> None:
        self._settled()
        with contextlib.suppress(FileNotFoundError):
            _write(self.path / "cgroup.kill", "1")

    async def wait_empty(self, timeout: float | None) -> bool:
        """Until cgroup.events says "populated 0" (an inotify event, no polling); False at the timeout."""
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

