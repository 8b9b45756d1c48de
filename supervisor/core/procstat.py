"""/proc/PID/stat read one way for every part that needs it (status, /metrics, the health checks' process trees)."""

from __future__ import annotations

import os

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def read_proc(path: str) -> bytes | None:
    """One read of a small /proc file (os.open, no buffered file object: it runs per process per call); None when
    the process is gone."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)


def split_stat(data: bytes) -> tuple[bytes, list[bytes]]:
    """(the command name, the fields after it) of a /proc/PID/stat text: the name may hold spaces and parentheses,
    so the fields are split after the last ')'. fields[0] is the state, [1] the ppid, [11]/[12] user/system ticks,
    [13]/[14] those of reaped children, [17] threads, [19] start time, [20] virtual bytes, [21] resident pages."""
    right = data.rfind(b")")
    return data[data.find(b"(") + 1:right], data[right + 2:].split()


def stat_fields(pid: int) -> tuple[bytes, list[bytes]] | None:
    data = read_proc(f"/proc/{pid}/stat")
    return split_stat(data) if data else None


def live_stat(pid: int) -> tuple[bytes, list[bytes]] | None:
    """stat_fields of a process that runs: None once it is gone, a zombie waiting to be reaped or dead."""
    found = stat_fields(pid)
    return found if found is not None and found[1] and found[1][0] not in (b"Z", b"X") else None


class HeldStats:
    """/proc/PID/stat kept open for reads that come again and again (each /metrics scrape): a pread of a held
    descriptor costs half of an open, read and close. The descriptor belongs to the process, not to its number:
    once that process is gone the read fails even if the pid was reused, and the next read opens the new one."""

    def __init__(self) -> None:
        self._fds: dict[int, int] = {}

    def fields(self, pid: int) -> list[bytes] | None:
        fd = self._fds.get(pid)
        if fd is None:
            try:
                fd = self._fds[pid] = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
            except OSError:
                return None
        try:
            data = os.pread(fd, 4096, 0)
        except OSError:
            data = b""
        if not data:
            self.drop(pid)
            return None
        return split_stat(data)[1]

    def keep_only(self, pids: set[int]) -> None:
        for pid in self._fds.keys() - pids:
            self.drop(pid)

    def drop(self, pid: int) -> None:
        fd = self._fds.pop(pid, None)
        if fd is not None:
            os.close(fd)

    def close(self) -> None:
        self.keep_only(set())
