"""Container mode (`supctl start -f`): every bot line also on the master's stdout as `name-k | line`.

A thread does the writes, so a slow reader of stdout (a full pipe, a paused `docker logs`) never stalls the
master's loop; past `limit` bytes waiting, lines are dropped from stdout only (the log files keep them) and counted.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable

from .tail import prefix

LIMIT = 8 * 1024 * 1024

Sink = Callable[[tuple[bytes | memoryview, ...]], None]


class Echo:
    def __init__(self, fd: int = 1, colour: bool = False, limit: int = LIMIT) -> None:
        self.fd = fd
        self.colour = colour
        self.limit = limit
        self.dropped = 0
        """Bytes not copied to stdout because the reader was too slow (still in the log files)."""
        self._queue: deque[bytes] = deque()
        self._queued = 0
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="supctl stdout", daemon=True)
        self._thread.start()

    def sink(self, label: str, index: int) -> Sink:
        """What one instance's RotatingLog calls with each write of whole lines."""
        head = prefix(label, index, self.colour).encode()

        def put(parts: tuple[bytes | memoryview, ...]) -> None:
            data = b"".join(parts)
            out = head + data[:-1].replace(b"\n", b"\n" + head) + b"\n"
            with self._cond:
                if self._queued + len(out) > self.limit:
                    self.dropped += len(out)
                    return
                self._queue.append(out)
                self._queued += len(out)
                self._cond.notify()

        return put

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                batch = b"".join(self._queue)
                self._queue.clear()
            view = memoryview(batch)
            try:
                while view:
                    view = view[os.write(self.fd, view):]
            except OSError:  # stdout closed: the log files still have every line
                pass
            with self._cond:
                self._queued -= len(batch)
                self._cond.notify_all()

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (bounded by `timeout`), then end the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)
