"""The master's side of the guardian: start it, keep it told, restart it if it dies."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

GUARDIAN_SCRIPT = str(Path(__file__).with_name("guardian.py"))
"""Run as a plain script with -I -S: it needs nothing from site-packages, which saves it ~1.5 MiB of RSS."""


class Guard:
    """Holds the pipe to the guardian (guardian.py); writes are tiny and never block the loop in practice."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._groups: set[int] = set()
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-I", "-S", GUARDIAN_SCRIPT], stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        self._send("".join(f"+ {g}\n" for g in self._groups))

    def __call__(self, pgid: int, alive: bool) -> None:
        (self._groups.add if alive else self._groups.discard)(pgid)
        self._send(f"{'+' if alive else '-'} {pgid}\n")

    def _send(self, text: str) -> None:
        if not text or self._proc is None:
            return
        try:
            assert self._proc.stdin is not None
            self._proc.stdin.write(text.encode())
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self._logger.warning("guardian process died; starting a new one")
            self._proc.wait()
            self.start()

    def close(self) -> None:
        """Clean exit: the guardian leaves the (already stopped) groups alone."""
        if self._proc is None:
            return
        self._send("bye\n")
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        self._proc.wait()
        self._proc = None
