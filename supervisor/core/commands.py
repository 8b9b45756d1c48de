"""Signal names and command lines as people write them ("TERM", "SIGHUP", 9; "python -m bot"), parsed one way."""

from __future__ import annotations

import signal


def parse_signal(value: str | int) -> signal.Signals:
    """"TERM", "sigterm", "SIGTERM" and 15 are all SIGTERM; ValueError names what was not a signal."""
    try:
        if isinstance(value, int) and not isinstance(value, bool):
            return signal.Signals(value)
        if isinstance(value, str):
            name = value.strip().upper()
            return signal.Signals[name if name.startswith("SIG") else "SIG" + name]
    except (KeyError, ValueError):
        pass
    raise ValueError(f"expected a signal name like 'TERM' or 'HUP', or a number, found {value!r}")


def split_argv(cmd: str | list[str]) -> list[str]:
    """An argv list as given, or a string split like a POSIX shell would (no shell runs it)."""
    if isinstance(cmd, str):
        import shlex  # only for a cmd written as a string: a master whose procfile lists argvs never loads it

        return shlex.split(cmd)
    return list(cmd)
