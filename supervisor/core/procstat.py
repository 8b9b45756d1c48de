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


def stat_fields(pid: int) -> tuple[bytes, list[bytes]] | None:
    """(the command name, the fields after it) of /proc/PID/stat: the name may hold spaces and parentheses, so the
    fields are split after the last ')'. fields[0] is the state, [1] the ppid, [11]/[12] user/system ticks,
    [13]/[14] those of reaped children, [17] threads, [19] start time, [21] resident pages."""
    data = read_proc(f"/proc/{pid}/stat")
    if not data:
        return None
    right = data.rfind(b")")
    return data[data.find(b"(") + 1:right], data[right + 2:].split()
