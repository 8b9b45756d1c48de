"""Put a master in the background: double fork, setsid, pidfile, status.json; and tell stale files from live ones."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import msgspec

from . import __version__
from .config import paths


class MasterStatus(msgspec.Struct, kw_only=True):
    """status.json: what a person or a script can read without asking the master."""

    state: str
    pid: int
    started_at: float
    procfile: str
    version: str = __version__
    last_error: str | None = None


class PidRecord(msgspec.Struct, array_like=True):
    pid: int
    create_time: float


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dirfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dirfd)  # the rename itself reaches the disk: the kill switch must survive a power cut
    finally:
        os.close(dirfd)


def write_status(state_dir: Path, status: MasterStatus) -> None:
    write_atomic(paths.status_file(state_dir), msgspec.json.format(msgspec.json.encode(status)) + b"\n")


def write_pidfile(state_dir: Path) -> None:
    import psutil

    me = os.getpid()
    write_atomic(paths.pid_file(state_dir), msgspec.json.encode(PidRecord(me, psutil.Process(me).create_time())))


def live_master_pid(state_dir: paths.StrPath) -> int | None:
    """The pid in master.pid if that very process (same start time) still runs, else None."""
    import psutil

    try:
        rec = msgspec.json.decode(paths.pid_file(state_dir).read_bytes(), type=PidRecord)
        proc = psutil.Process(rec.pid)
        if abs(proc.create_time() - rec.create_time) < 0.01 and proc.status() != psutil.STATUS_ZOMBIE:
            return rec.pid
    except (OSError, msgspec.DecodeError, psutil.Error):
        pass
    return None


def clean_stale(state_dir: paths.StrPath) -> list[str]:
    """Remove a pidfile and sockets left by a master that no longer runs; returns what was removed."""
    removed = []
    for path in (paths.pid_file(state_dir), Path(paths.control_socket(state_dir)), Path(state_dir, "bus.sock")):
        if path.exists() or path.is_symlink():
            path.unlink()
            removed.append(path.name)
    return removed


def daemonize(run: Callable[[Callable[[str], None]], int], log_path: Path) -> int:
    """Fork a detached master; the caller gets back what the master reported through a pipe ("" = ready)."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid:
        os.close(wfd)
        os.waitpid(pid, 0)
        with os.fdopen(rfd, "rb") as r:
            msg = r.read().decode(errors="replace")
        return 0 if msg == "ready" else 1
    os.close(rfd)
    os.setsid()
    if os.fork():
        os._exit(0)
    os.umask(0o077)
    os.chdir("/")
    _redirect_stdio(log_path)
    writer = os.fdopen(wfd, "wb", buffering=0)

    def ready(msg: str = "ready") -> None:
        if not writer.closed:
            writer.write(msg.encode())
            writer.close()

    code = 1
    try:
        code = run(ready)
    finally:
        ready("exited")
        os._exit(code)


def _redirect_stdio(log_path: Path) -> None:
    devnull = os.open(os.devnull, os.O_RDONLY)
    out = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(devnull, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(devnull)
    os.close(out)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    sys.stderr = os.fdopen(2, "w", buffering=1)
