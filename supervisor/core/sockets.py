"""Unix sockets that are owner-only from the instant their file exists."""

from __future__ import annotations

import os
import socket


def bind_private(path: str) -> socket.socket:
    """An AF_UNIX stream socket bound at `path` with mode 0600 from the start.

    The mode is set on the unbound socket's fd: Linux gives the file bind creates the socket inode's mode
    (less the umask). So nothing is chmod-ed by path afterwards (a path someone could swap for a symlink in
    between), and the process-wide umask, which other threads' files depend on, is never changed."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        os.fchmod(sock.fileno(), 0o600)
        sock.bind(path)
    except BaseException:
        sock.close()
        raise
    return sock
