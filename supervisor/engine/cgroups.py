"""cgroup v2 containment: one cgroup per instance under the fleet's cgroup, so no descendant can escape.

A descendant can leave its process group and session (setsid, double fork) but not its cgroup. The
fleet cgroup is `<the master's own cgroup>/supctl-<pid>`; each instance gets `<bot>@<k>` (tasks `<name>@task`).
A child is born inside its cgroup: the master moves itself in for the vfork+exec and back out (two small
writes, ~0.2 ms), so not even a child that forks at once is missed. Emptiness is learnt from `cgroup.events`
through inotify (the kernel signals every change of "populated"), stopping ends with `cgroup.kill`, and the
guardian writes the fleet's `cgroup.kill` when the master dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import struct
from collections.abc import Iterator
from pathlib import Path

IN_MODIFY = 0x2
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
_EVENT = struct.Struct("iIII")
_libc = ctypes.CDLL(None, use_errno=True)


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


def _write(path: Path, data: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, data.encode())
    finally:
        os.close(fd)


class CgroupTree:
    """The fleet's cgroup and the inotify fd that watches every instance's cgroup.events."""

    name = "cgroup"

    def __init__(self, home: Path, fleet: Path, inotify: int) -> None:
        self.home = home
        self.fleet = fleet
        self._inotify = inotify
        self._boxes: dict[int, CgroupBox] = {}
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(inotify, self._events)

    @classmethod
    def create(cls) -> CgroupTree:
        """Make the fleet cgroup once `probe` showed the master can use one; raises Unusable."""
        home = probe()
        fleet = home / f"supctl-{os.getpid()}"
        fleet.mkdir(exist_ok=True)
        fd = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            fleet.rmdir()
            raise Unusable(f"inotify_init1: {os.strerror(ctypes.get_errno())}")
        return cls(home, fleet, fd)

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

    def close(self) -> None:
        """Remove every (empty, by now) instance cgroup and the fleet cgroup."""
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

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """Around the fork: the child is born in this cgroup."""
        _write(self.path / "cgroup.procs", "0")
        try:
            yield
        finally:
            _write(self._tree.home / "cgroup.procs", "0")

    def started(self, pid: int) -> None:
        """Nothing to record: the kernel keeps the membership."""

    def members(self) -> list[int]:
        with contextlib.suppress(FileNotFoundError):
            return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        return []

    def populated(self) -> bool:
        with contextlib.suppress(FileNotFoundError):
            return "populated 1" in (self.path / "cgroup.events").read_text()
        return False

    def signal(self, sig: int) -> None:
        """Every process in the cgroup, whatever its group or session."""
        for pid in self.members():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)

    def kill(self) -> None:
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

