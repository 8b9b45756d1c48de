"""Where a procfile's master keeps its files; cheap enough for every `supctl` call (no schema, no validation).

`state_dir_of` and `control_socket` are on the path of every `supctl status`, so they use os.path and
return strings; the rest return pathlib Paths for the master and the daemon code.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import msgspec

from ..errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

StrPath = str | os.PathLike[str]


def state_dir_of(procfile: StrPath) -> str:
    path = os.fspath(procfile)
    try:
        with open(path, "rb") as f:
            raw = msgspec.toml.decode(f.read())
    except OSError as e:
        raise ConfigError(path, "", f"cannot read: {e.strerror or e}") from None
    except msgspec.DecodeError as e:
        raise ConfigError(path, "", f"TOML syntax error: {e}") from None
    except RecursionError:
        raise ConfigError(path, "", "arrays or tables nested too deeply to parse; a procfile needs a few levels") from None
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


def log_name(bot: str, instance: int, instances: int) -> str:
    return f"{bot}-{instance}.log" if instances > 1 else f"{bot}.log"
