"""Where a procfile's master keeps its files; cheap enough for every `supctl` call (no schema, no validation).

`state_dir_of` and `control_socket` are on the path of every `supctl status`, so they use os.path and
return strings; the rest return pathlib Paths for the master and the daemon code.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import msgspec

from ..core.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

StrPath = str | os.PathLike[str]


def _raw(path: str) -> dict[str, object]:
    try:
        with open(path, "rb") as f:
            return msgspec.toml.decode(f.read())  # type: ignore[no-any-return]
    except OSError as e:
        raise ConfigError(path, "", f"cannot read: {e.strerror or e}") from None
    except msgspec.DecodeError as e:
        raise ConfigError(path, "", f"TOML syntax error: {e}") from None
    except RecursionError:
        raise ConfigError(path, "", "arrays or tables nested too deeply to parse; a procfile needs a few levels") from None


def state_dir_of(procfile: StrPath) -> str:
    path = os.fspath(procfile)
    raw = _raw(path)
    sup = raw.get("supervisor", {})
    state = sup.get("state_dir", ".supctl") if isinstance(sup, dict) else ".supctl"
    return os.path.realpath(os.path.join(os.path.dirname(path), str(state)))


def control_socket(state_dir: StrPath) -> str:
    return os.path.join(state_dir, "control.sock")


def _path(state_dir: StrPath, *parts: str) -> Path:
    from pathlib import Path

    return Path(state_dir, *parts)


def pid_file(state_dir: StrPath) -> Path:
    return _path(state_dir, "master.pid")


def status_file(state_dir: StrPath) -> Path:
    return _path(state_dir, "status.json")


def logs_dir(state_dir: StrPath) -> Path:
    return _path(state_dir, "logs")


def master_log(state_dir: StrPath) -> Path:
    return _path(state_dir, "logs", "supervisor.log")


def journal(state_dir: StrPath) -> Path:
    return _path(state_dir, "logs", "events.jsonl")


def log_name(bot: str, instance: int, instances: int) -> str:
    return f"{bot}-{instance}.log" if instances > 1 else f"{bot}.log"


def log_owners(procfile: StrPath) -> dict[str, int]:
    """Every bot and task of the procfile with its number of instances (tasks have one), read without the schema.

    `supctl logs` uses it to tell bot `web` (web.log) from bot `web-2`; a value it cannot read counts as 1.
    """
    raw = _raw(os.fspath(procfile))
    defaults, bots, tasks = (raw.get(k) for k in ("defaults", "bots", "tasks"))
    fallback = defaults.get("instances", 1) if isinstance(defaults, dict) else 1
    owners: dict[str, int] = {}
    for name, bot in bots.items() if isinstance(bots, dict) else ():
        n = bot.get("instances", fallback) if isinstance(bot, dict) else 1
        owners[name] = n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 1
    for name in tasks if isinstance(tasks, dict) else ():
        owners.setdefault(name, 1)
    return owners
