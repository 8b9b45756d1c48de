"""Put a master in the background: double fork, setsid, pidfile, status.json; and tell stale files from live ones."""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path

import msgspec

from .. import __version__
from ..config import paths
from ..core.errors import ConfigError, ConfigErrors


class MasterStatus(msgspec.Struct, kw_only=True):
    """status.json: what a person or a script can read without asking the master."""

    state: str
    pid: int
    started_at: float
    procfile: str
    version: str = __version__
    last_error: str | None = None
    died_at: float | None = None
    """Set by the guardian (state "died"), or by `read_status` when the pid it names is no longer that master."""


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` whole or not at all. The temp file has an unpredictable name and is created with O_EXCL and
    O_NOFOLLOW (nothing planted can redirect the write), and it is removed again whatever fails (ENOSPC)."""
    tmp = path.with_name(f".{path.name}.{os.urandom(8).hex()}.tmp")  # not secrets: its hmac maps libcrypto (~650 KiB)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise OSError(e.errno, f"cannot write {path}: {e.strerror or e}") from None
    dirfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dirfd)  # the rename itself reaches the disk: the kill switch must survive a power cut
    finally:
        os.close(dirfd)


def write_status(state_dir: Path, status: MasterStatus) -> None:
    """status.json, atomically; on a full disk it is rewritten in place (truncating frees its blocks first), and
    if even that fails it is removed, so it never goes on saying "running" for a master that is gone."""
    path = paths.status_file(state_dir)
    data = msgspec.json.format(msgspec.json.encode(status)) + b"\n"
    try:
        write_atomic(path, data)
        return
    except OSError as e:
        failure = e
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            if os.write(fd, data) == len(data):
                return
        finally:
            os.close(fd)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        os.unlink(path)
    raise failure


def died_record(procfile: str, started_at: float) -> bytes:
    """status.json for this master's death, less the time and the closing brace: the guardian adds them."""
    pid = os.getpid()
    died = MasterStatus(state="died", pid=pid, started_at=started_at, procfile=procfile, died_at=0.0,
                        last_error=f"master pid {pid} died without shutting down (seen by its guardian)")
    encoded = msgspec.json.encode(died)
    assert encoded.endswith(b"0.0}")
    return encoded[:-len(b"0.0}")]


LIVE_STATES = ("starting", "running", "stopping")


def read_status(state_dir: paths.StrPath) -> MasterStatus | None:
    """status.json, checked: a live state whose pid is not the live master (pidfile and start time) reads as died."""
    try:
        status = msgspec.json.decode(paths.status_file(state_dir).read_bytes(), type=MasterStatus)
    except (OSError, msgspec.DecodeError):
        return None
    if status.state in LIVE_STATES and live_master_pid(state_dir) != status.pid:
        return msgspec.structs.replace(status, state="died", last_error=status.last_error or
                                       f"master pid {status.pid} is gone; status.json still said {status.state!r}")
    return status


def write_pidfile(state_dir: Path) -> None:
    """master.pid holds the pid alone, in decimal, as every init script and `kill $(cat master.pid)` expect."""
    write_atomic(paths.pid_file(state_dir), f"{os.getpid()}\n".encode())


def make_state_dir(state_dir: Path, procfile: str) -> None:
    """Create state_dir and logs/ owner-only. Refuse (naming supervisor.state_dir) a state_dir, an ancestor of it
    or a directory in it that another user owns or may write to: whoever controls them could plant symlinks or
    swap the sockets and files the master opens there."""
    problems = [p for d in reversed(state_dir.parents) if (p := _untrusted(d, ancestor=True))]
    for d in (state_dir, paths.logs_dir(state_dir)):
        if not problems:
            try:
                d.mkdir(mode=0o700, exist_ok=True)
            except OSError as e:
                problems.append(f"cannot create {d}: {e.strerror or e}")
                break
            problems += [p for p in [_untrusted(d, ancestor=False)] if p]
            if not problems:
                fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
                try:
                    os.fchmod(fd, 0o700)  # through the fd: never a chmod that follows a symlink
                finally:
                    os.close(fd)
    if problems:
        raise ConfigErrors([ConfigError(procfile, "supervisor.state_dir", p) for p in problems])


def _untrusted(d: Path, ancestor: bool) -> str | None:
    """Why the master may not trust directory `d`, or None. An ancestor may be root's, and others may write to it
    when it is sticky (/tmp); the state_dir and what is in it must be ours alone."""
    try:
        st = os.lstat(d)
    except OSError as e:
        return f"cannot inspect {d}: {e.strerror or e}"
    me = os.geteuid()
    if stat.S_ISLNK(st.st_mode):
        return f"{d} is a symlink; the master uses only a real directory there"
    if not stat.S_ISDIR(st.st_mode):
        return f"{d} is not a directory"
    if st.st_uid not in ((0, me) if ancestor else (me,)):
        return f"{d} is owned by uid {st.st_uid}, not by this user (uid {me}); refusing a directory someone else controls"
    if st.st_mode & 0o022 and not (ancestor and st.st_mode & stat.S_ISVTX):
        return (f"{d} is writable by {'group and others' if st.st_mode & 0o002 else 'its group'} "
                f"(mode {stat.S_IMODE(st.st_mode):o}); run chmod go-w {d} once you have checked what is in it")
    return None


PID_SLACK = 2.0
"""Seconds a process's start time may seem to follow its pidfile's mtime: psutil derives start times from the boot
time, which /proc/stat gives in whole seconds."""


def live_master_pid(state_dir: paths.StrPath) -> int | None:
    """The pid in master.pid if that very process still runs, else None. A process that started after the pidfile was
    written is another one that was given a reused pid."""
    import psutil

    path = paths.pid_file(state_dir)
    try:
        text = path.read_text()
        written = path.stat().st_mtime
        pid = int(text) if text.strip().isdigit() else 0
        if pid <= 0:
            return None
        proc = psutil.Process(pid)
        if proc.create_time() <= written + PID_SLACK and proc.status() != psutil.STATUS_ZOMBIE:
            return pid
    except (OSError, ValueError, psutil.Error):
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


def daemonize(run: Callable[[Callable[[str], None]], int], log_path: Path) -> str:
    """Fork a detached master; the caller gets back what the master reported through a pipe: "ready", or why not."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid:
        os.close(wfd)
        os.waitpid(pid, 0)
        with os.fdopen(rfd, "rb") as r:
            msg = r.read().decode(errors="replace")
        return msg or "the master exited before it was ready"
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
        ready(f"the master exited with code {code} before it was ready")
        os._exit(code)


def _redirect_stdio(log_path: Path) -> None:
    devnull = os.open(os.devnull, os.O_RDONLY)
    out = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
    os.dup2(devnull, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(devnull)
    os.close(out)
    # closefd=False: the master later swaps these for its rotating-log streams, and fds 1 and 2 must stay open
    # (closed, they would be reused by the loop's own fds, and libuv aborts when it closes an fd <= 2)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
