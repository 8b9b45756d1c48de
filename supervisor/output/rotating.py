"""Bot output into rotating files, line by line and without losing a byte; tail for readers.

Layout: one file per instance, `logs/NAME.log` (or `NAME-k.log` when a bot has several
instances). stdout and stderr share that file in arrival order; lines are never split
between the two streams, and stderr lines carry the prefix `[stderr] `.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import stat
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

STDERR_TAG = b"[stderr] "
MAX_LINE = 1 << 20
"""A line longer than this (a bot printing without newlines) is written in pieces, so memory stays bounded."""
RETRY = 1.0
"""While a log file cannot be written, how often to try again; also how often to look whether it was deleted."""
_log = logging.getLogger("supctl")


def rotated(path: Path, n: int) -> Path:
    return path.with_name(f"{path.name}.{n}")


class RotatingLog:
    """An append-only file that rolls over to NAME.log.1 .. NAME.log.N past max_bytes.

    No I/O error ever leaves here: the bot keeps running and its pipes keep being read. While the file
    cannot be written (logs/ deleted or unwritable, a full disk) its lines are counted in `lost_bytes`;
    the file is recreated, and writing resumes, as soon as that works again (tried at most every RETRY).
    A file someone deleted under us is noticed the same way and recreated.
    """

    # slots: one per instance; its __dict__ was ~0.3 KiB of every instance's cost
    __slots__ = ("_checked", "_failing", "_fd", "_size", "_unchecked", "backups", "errors", "lost_bytes", "max_bytes", "mirror",
                 "path", "retry", "timestamps")

    def __init__(self, path: Path, max_bytes: int, backups: int, timestamps: bool = False, retry: float = RETRY) -> None:
        self.path = path
        self.retry = retry
        self.max_bytes = max_bytes
        self.backups = backups
        self.timestamps = timestamps
        self.errors = 0
        self.lost_bytes = 0
        self._fd: int | None = None
        self._size = 0
        self._checked = 0.0
        self._unchecked = 0
        """Bytes written since the last look at the file's link count: lost if it turns out to be deleted."""
        self._failing: str | None = None
        self.mirror: Callable[[tuple[bytes | memoryview, ...]], None] | None = None
        """Container mode: also hand every write to this (output/echo.py puts it on stdout)."""
        self._open()

    def _open(self) -> None:
        """Open (creating logs/ and the file if need be) without following a symlink; never raises."""
        self._checked = time.monotonic()
        try:
            try:
                fd = open_append(self.path)
            except FileNotFoundError:  # logs/ is made at start; only a deleted one costs the mkdir
                self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                fd = open_append(self.path)
        except OSError as e:
            self._failed(e)
            return
        self._fd, self._size = fd, os.fstat(fd).st_size

    def _failed(self, e: OSError) -> None:
        self.errors += 1
        if self._failing is None:  # once per outage, and never recursing when this is the master's own log
            self._failing = e.strerror or str(e)
            _log.error("cannot write %s: %s; the bot keeps running, its output is counted as lost until the file "
                       "can be written again", self.path, self._failing)

    def _usable(self) -> bool:
        """An open fd to a file that still has a name; otherwise (re)open it, at most every RETRY seconds."""
        now = time.monotonic()
        if self._fd is not None:
            if now - self._checked < self.retry:
                return True
            self._checked, unchecked, self._unchecked = now, self._unchecked, 0
            try:
                if os.fstat(self._fd).st_nlink > 0:
                    return True
            except OSError:
                pass
            self.lost_bytes += unchecked
            self._close()
            self._failed(FileNotFoundError(f"{self.path} was deleted"))
        elif now - self._checked < self.retry:
            return False
        self._open()
        return self._fd is not None

    def write_lines(self, *parts: bytes | memoryview) -> None:
        """Write whole lines (the parts joined end with a newline) in one writev, without copying them."""
        self._write(parts)

    def write_tagged(self, data: bytes, tag: bytes) -> None:
        """Whole lines with `tag` (and the time, if asked) in front of each: one copy of the chunk (each newline
        followed by the next line's prefix, the last one's cut off), written behind the first prefix in one writev."""
        prefix = tag
        if self.timestamps:
            prefix = datetime.now().astimezone().isoformat(timespec="milliseconds").encode() + b" " + tag
        if not prefix:
            self._write((data,))
            return
        body = data.replace(b"\n", b"\n" + prefix)
        self._write((prefix, memoryview(body)[:len(body) - len(prefix)]))

    def _write(self, parts: tuple[bytes | memoryview, ...]) -> None:
        if self.mirror is not None:
            self.mirror(parts)
        size = sum(len(p) for p in parts)
        if not self._usable():
            self.lost_bytes += size
            return
        if self._size + size > self.max_bytes:
            self._write_across(b"".join(parts))
            return
        self._writev(parts, size)
        if self._size >= self.max_bytes:
            self.rotate()

    def _write_across(self, data: bytes) -> None:
        """Cut at the last whole line that fits: a file outgrows max_size only by a single line longer than it."""
        view = memoryview(data)
        start = 0
        while len(data) - start > self.max_bytes - self._size:
            cut = data.rfind(b"\n", start, start + self.max_bytes - self._size) + 1
            if not cut:
                if self._size:
                    self.rotate()
                    continue
                cut = data.find(b"\n", start) + 1 or len(data)
            self._writev((view[start:cut],), cut - start)
            self.rotate()
            start = cut
        if start < len(data):
            self._writev((view[start:],), len(data) - start)
            if self._size >= self.max_bytes:
                self.rotate()

    def _writev(self, parts: tuple[bytes | memoryview, ...], size: int) -> None:
        if self._fd is None:
            self.lost_bytes += size
            return
        done = 0
        try:
            done = os.writev(self._fd, parts)
            rest = b"".join(bytes(p) for p in parts)[done:] if done < size else b""
            while rest:
                n = os.write(self._fd, rest)
                done, rest = done + n, rest[n:]
        except OSError as e:
            self.lost_bytes += size - done
            self._failed(e)
            self._close()
            self._checked = time.monotonic()
        self._size += done
        self._unchecked += done
        if done and self._failing is not None:  # said once a write succeeds, not when an open does (full disk)
            self._failing = None
            _log.warning("%s: writing again; %d bytes of output were lost while it could not be written",
                         self.path, self.lost_bytes)

    def rotate(self) -> None:
        self._close()
        try:
            if self.backups > 0:
                for n in range(self.backups - 1, 0, -1):
                    if os.path.lexists(rotated(self.path, n)):
                        os.replace(rotated(self.path, n), rotated(self.path, n + 1))
                os.replace(self.path, rotated(self.path, 1))
            else:
                self.path.unlink(missing_ok=True)
        except OSError as e:
            self._failed(e)
        self._open()

    def clear(self) -> int:
        """`supctl flush`: empty the file and drop its backups; returns the bytes freed. Called on the loop that
        does every write, between two whole-line writes, so nothing is torn and the bot never notices."""
        freed = 0
        for n in range(1, self.backups + 1):
            try:
                freed += os.stat(rotated(self.path, n), follow_symlinks=False).st_size
                os.unlink(rotated(self.path, n))
            except FileNotFoundError:
                pass
        if self._fd is not None:
            try:
                freed += os.fstat(self._fd).st_size
                os.ftruncate(self._fd, 0)
                self._size = 0
            except OSError as e:
                self._failed(e)
        return freed

    def _close(self) -> None:
        fd, self._fd, self._size = self._fd, None, 0
        if fd is not None:
            os.close(fd)

    def close(self) -> None:
        self._close()


def open_append(path: Path) -> int:
    """An owner-only append fd that never follows a symlink planted at `path` (nor chmods through one)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, f"{path} is not a regular file")
        os.fchmod(fd, 0o600)
    except OSError:
        os.close(fd)
        raise
    return fd


class RotatingLogHandler(logging.Handler):
    """The master's own records, rotated exactly like bot output (and without logging.handlers' imports)."""

    def __init__(self, log: RotatingLog) -> None:
        super().__init__()
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.log.write_lines(self.format(record).encode(), b"\n")
        except Exception:
            self.handleError(record)


class LogStream(io.TextIOBase):
    """A daemonized master's sys.stdout / sys.stderr: whole lines into its rotating log (under the handler's
    lock), so nothing Python prints, such as a traceback no logger took, bypasses the rotation."""

    def __init__(self, handler: RotatingLogHandler, tag: bytes) -> None:
        self._handler = handler
        self._lines = LineSplitter(handler.log, tag)

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        with self._handler.lock:
            self._lines.feed(s.encode(errors="replace"))
        return len(s)


class LineSplitter:
    """One pipe's bytes into whole lines for a shared RotatingLog; keeps the partial tail until its newline."""

    def __init__(self, log: RotatingLog, tag: bytes = b"") -> None:
        self.log = log
        self.tag = tag
        self._tail = b""

    def feed(self, data: bytes) -> None:
        end = data.rfind(b"\n") + 1
        if not end:
            self._tail += data
            if len(self._tail) > MAX_LINE:
                self._emit(self._tail + b"\n")
                self._tail = b""
            return
        head = memoryview(data)[:end] if end < len(data) else data
        if self.tag or self.log.timestamps:
            self._emit(self._tail + head if self._tail else bytes(head))  # bytes(data) is data itself: no copy
        else:
            self.log.write_lines(self._tail, head)
        self._tail = data[end:]

    def _emit(self, lines: bytes) -> None:
        if self.tag or self.log.timestamps:
            self.log.write_tagged(lines, self.tag)
        else:
            self.log.write_lines(lines)

    def close(self) -> None:
        """Keep a partial last line: written with a newline added."""
        if self._tail:
            self._emit(self._tail + b"\n")
            self._tail = b""


def tail_lines(path: Path, n: int, block: int = 65536) -> list[str]:
    """The last n lines of a file (reading backwards, so a 50 MB log costs one block)."""
    if n <= 0:
        return []
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return []
    with f:
        end = f.seek(0, os.SEEK_END)
        data = b""
        pos = end
        while pos > 0 and data.count(b"\n") <= n:
            step = min(block, pos)
            pos -= step
            f.seek(pos)
            data = f.read(step) + data
    lines = data.decode("utf-8", "replace").splitlines()
    return lines[-n:]
