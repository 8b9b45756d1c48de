"""A tiny watcher process: if the master dies (even by SIGKILL), it kills every process group the master still owned.

Bots are started by vfork without PR_SET_PDEATHSIG (see spawn.py), and even that would not reach
their children: this process is what ends them. The master tells the guardian each group it
starts ("+PGID") and ends ("-PGID") over a pipe; when the pipe hits EOF without a clean "bye",
the master is gone and the guardian SIGKILLs the groups.
Run as `python -I -S guardian.py` (see guard.py); it imports nothing from the rest of supctl.
"""

from __future__ import annotations

import os
import signal
import sys


def main() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    groups: set[int] = set()
    for line in sys.stdin.buffer:
        op, _, arg = line.strip().partition(b" ")
        if op == b"+":
            groups.add(int(arg))
        elif op == b"-":
            groups.discard(int(arg))
        elif op == b"bye":
            return
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


if __name__ == "__main__":
    main()
