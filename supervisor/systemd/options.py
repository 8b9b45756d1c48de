"""From a loaded procfile to the settings of its systemd unit (the unit text itself is systemd.py's job)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from ..config.procfile import Procfile
from .unit import UnitOptions, default_unit_user, named_unit_user


def supctl_executable() -> str:
    """The supctl next to this interpreter (the venv's), else the one on PATH."""
    beside = Path(sys.executable).with_name("supctl")
    if beside.exists():
        return str(beside.absolute())
    found = shutil.which("supctl")
    if found is None:
        raise FileNotFoundError("cannot find the supctl executable; install supctl into this environment first")
    return str(Path(found).absolute())


def longest_stop(procfile: Procfile) -> float:
    """Bots stop in reverse dependency order, so the worst case is the longest chain of stop_timeouts, after the
    longest wait for a task run still going (tasks stop first)."""
    memo: dict[str, float] = {}

    def chain(name: str) -> float:
        if name not in memo:
            bot = procfile.bots[name]
            memo[name] = bot.stop_timeout + max((chain(d) for d in bot.depends_on), default=0.0)
        return memo[name]

    tasks = max((t.stop_timeout for t in procfile.tasks.values()), default=0.0)
    return tasks + max((chain(n) for n in procfile.bots), default=0.0)


def unit_options(procfile: Procfile, name: str, user_mode: bool, run_as: str | None = None) -> tuple[UnitOptions, str | None]:
    """The unit's settings and a warning for the person (a unit that would run the bots as root); `run_as` is
    `--run-as USER[:GROUP]`. Raises ValueError for what systemd would refuse."""
    path = Path(procfile.file)
    user = group = warning = None
    if run_as is not None:
        if user_mode:
            raise ValueError("--run-as applies to system units only; a --user unit runs as its owner")
        user, group = named_unit_user(run_as)
        if user == "nobody":
            warning = ("systemd calls User=nobody unsafe: every service running as nobody can reach the others' "
                       "files and processes; create a service account, e.g. `useradd --system --create-home bots`")
    elif not user_mode:
        user, group, warning = default_unit_user(path)
    opts = UnitOptions(executable=supctl_executable(), procfile=str(path), working_directory=str(path.parent),
                       name=name, user_mode=user_mode, user=user, group=group, stop_timeout=longest_stop(procfile),
                       delegate=procfile.supervisor.containment != "subreaper")
    return opts, warning
